import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { HwimageError } from '../../errors.js'
import { cycleCommand } from './cycle.js'
import { publishCommand } from './publish.js'

function ctx() {
  const out = new PassThrough()
  const err = new PassThrough()
  let stdout = ''
  out.on('data', (d) => (stdout += d))
  return { c: { stdout: out, stderr: err } as never, text: () => stdout }
}

async function code(cmd: typeof cycleCommand, argv: string[]): Promise<string> {
  try {
    await cmd.run(argv, ctx().c)
  } catch (e) {
    assert.ok(e instanceof HwimageError, String(e))
    return e.code
  }
  return 'no error'
}

test('hwimage cycle refuses a missing --catalog, two specs, a bad --keep, an unknown option, a missing or invalid spec: USAGE / NOT_FOUND / SPEC_INVALID, nothing written', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hwimage-cycle-cli-'))
  try {
    const cat = join(dir, 'cat')
    assert.equal(await code(cycleCommand, []), 'USAGE')
    assert.equal(await code(cycleCommand, ['a.yaml', 'b.yaml', '--catalog', cat]), 'USAGE')
    assert.equal(await code(cycleCommand, ['--catalog', cat, '--keep', '0']), 'USAGE')
    assert.equal(await code(cycleCommand, ['--catalog', cat, '--keep', 'two']), 'USAGE')
    assert.equal(await code(cycleCommand, ['--catalog', cat, '--frobnicate']), 'USAGE')
    assert.equal(await code(cycleCommand, [join(dir, 'missing.yaml'), '--catalog', cat]), 'NOT_FOUND')
    assert.equal(await code(cycleCommand, [dir, '--catalog', cat]), 'USAGE')
    await writeFile(join(dir, 'bad.yaml'), 'kernel: { flavor: desktop }\n')
    assert.equal(await code(cycleCommand, [join(dir, 'bad.yaml'), '--catalog', cat]), 'SPEC_INVALID')
    assert.deepEqual(await readdir(dir), ['bad.yaml'], 'no catalog made')
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('hwimage cycle --help and publish --help show an example', async () => {
  for (const cmd of [cycleCommand, publishCommand]) {
    const x = ctx()
    assert.equal(await cmd.run(['--help'], x.c), 0)
    assert.match(x.text(), /Example:\n {2}hwimage /)
  }
  const x = ctx()
  await cycleCommand.run(['--help'], x.c)
  assert.match(x.text(), /0 published.*3 nothing changed/s)
})

test('hwimage publish refuses no build directory, no --catalog and a bad --keep with USAGE', async () => {
  assert.equal(await code(publishCommand, ['--catalog', '/nonexistent/cat']), 'USAGE')
  assert.equal(await code(publishCommand, ['some-dir']), 'USAGE')
  assert.equal(await code(publishCommand, ['some-dir', '--catalog', '/nonexistent/cat', '--keep', '-1']), 'USAGE')
})
