import { test } from 'node:test'
import assert from 'node:assert/strict'
import { InputError } from '../errors.js'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { moduleExtrasFromSpec, readModuleExtras } from './module-extras.js'

test('moduleExtrasFromSpec() reads kernel.modules and leaves the rest of the spec alone', () => {
  assert.deepEqual(
    moduleExtrasFromSpec(
      { name: 'x', kernel: { flavor: 'server', modules: { add: ['hfi1'], remove: ['cifs'] } } },
      's.yaml',
    ),
    { add: ['hfi1'], remove: ['cifs'] },
  )
  assert.deepEqual(moduleExtrasFromSpec({ name: 'x' }, 's.yaml'), { add: [], remove: [] })
  assert.deepEqual(moduleExtrasFromSpec(null, 's.yaml'), { add: [], remove: [] })
})

test('moduleExtrasFromSpec() names the field that is wrong', () => {
  for (const [spec, field] of [
    [{ kernel: { modules: { add: 'hfi1' } } }, 'kernel.modules.add'],
    [{ kernel: { modules: { drop: ['x'] } } }, 'kernel.modules'],
  ] as const) {
    assert.throws(
      () => moduleExtrasFromSpec(spec, 's.yaml'),
      (e: unknown) => {
        assert.ok(e instanceof InputError)
        assert.equal(e.code, 'SPEC_INVALID')
        assert.ok(e.message.startsWith(`Cannot read spec "s.yaml": ${field}:`), e.message)
        return true
      },
    )
  }
})

test('readModuleExtras() reads kernel.modules from a spec file, naming the file when it cannot', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hwimage-extras-'))
  try {
    const spec = path.join(dir, 'spec.yaml')
    await fs.writeFile(spec, 'name: t\nkernel:\n  modules:\n    add: [hfi1]\n')
    assert.deepEqual(await readModuleExtras(spec), { add: ['hfi1'], remove: [] })
    const bad = path.join(dir, 'bad.yaml')
    await fs.writeFile(bad, 'a: [\n')
    await assert.rejects(
      readModuleExtras(bad),
      (e: unknown) =>
        e instanceof InputError && e.code === 'SPEC_INVALID' && e.message.startsWith(`Cannot read spec "${bad}": `),
    )
    await assert.rejects(
      readModuleExtras(path.join(dir, 'none.yaml')),
      (e: unknown) => e instanceof InputError && e.code === 'NOT_FOUND' && /no such file/.test(e.message),
    )
  } finally {
    await fs.rm(dir, { recursive: true, force: true })
  }
})
