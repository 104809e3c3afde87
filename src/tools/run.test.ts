import { test } from 'node:test'
import assert from 'node:assert/strict'
import { run, quoteArgv } from './run.js'
import { ToolError } from '../errors.js'

test('run() returns stdout of a successful program', async () => {
  const r = await run(['printf', '%s-%s', 'a', 'b c'])
  assert.equal(r.stdout, 'a-b c')
  assert.equal(r.status, 0)
})

test('run() passes arguments without a shell', async () => {
  const r = await run(['printf', '%s', '$(echo no); `true` *'])
  assert.equal(r.stdout, '$(echo no); `true` *')
})

test('run() reports a failing program with its argv, status and stderr tail', async () => {
  await assert.rejects(run(['sh', '-c', 'echo boom >&2; exit 3']), (e: unknown) => {
    assert.ok(e instanceof ToolError)
    assert.equal(e.code, 'TOOL_FAILED')
    assert.equal(e.status, 3)
    assert.match(e.stderrTail, /boom/)
    assert.match(e.message, /exit status 3/)
    return true
  })
})

test('run() names the Debian package of a missing known program', async () => {
  const saved = process.env.PATH
  process.env.PATH = '/nonexistent'
  try {
    await assert.rejects(run(['sgdisk', '-v']), (e: unknown) => {
      assert.ok(e instanceof ToolError)
      assert.equal(e.code, 'TOOL_MISSING')
      assert.match(e.hint ?? '', /apt-get install gdisk/)
      return true
    })
  } finally {
    process.env.PATH = saved
  }
})

test('run() feeds input to stdin', async () => {
  const r = await run(['cat'], { input: 'hello' })
  assert.equal(r.stdout, 'hello')
})

test('quoteArgv() quotes what a shell would split', () => {
  assert.equal(quoteArgv(['mkfs.ext4', '-L', 'my root', "it's"]), `mkfs.ext4 -L 'my root' 'it'\\''s'`)
})
