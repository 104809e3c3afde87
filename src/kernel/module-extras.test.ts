import { test } from 'node:test'
import assert from 'node:assert/strict'
import { InputError } from '../errors.js'
import { moduleExtrasFromSpec } from './module-extras.js'

test('moduleExtrasFromSpec() reads kernel.modules and leaves the rest of the spec alone', () => {
  assert.deepEqual(moduleExtrasFromSpec({ name: 'x', kernel: { flavor: 'server', modules: { add: ['hfi1'], remove: ['cifs'] } } }, 's.yaml'), { add: ['hfi1'], remove: ['cifs'] })
  assert.deepEqual(moduleExtrasFromSpec({ name: 'x' }, 's.yaml'), { add: [], remove: [] })
  assert.deepEqual(moduleExtrasFromSpec(null, 's.yaml'), { add: [], remove: [] })
})

test('moduleExtrasFromSpec() names the field that is wrong', () => {
  for (const [spec, field] of [
    [{ kernel: { modules: { add: 'hfi1' } } }, 'kernel.modules.add'],
    [{ kernel: { modules: { drop: ['x'] } } }, 'kernel.modules'],
  ] as const) {
    assert.throws(() => moduleExtrasFromSpec(spec, 's.yaml'), (e: unknown) => {
      assert.ok(e instanceof InputError)
      assert.equal(e.code, 'SPEC_INVALID')
      assert.ok(e.message.startsWith(`Cannot read spec "s.yaml": ${field}:`), e.message)
      return true
    })
  }
})
