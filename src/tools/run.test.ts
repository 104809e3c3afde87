import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
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

test('run() starts a program under its own name (argv[0] as given, setpriv gone by exec)', async () => {
  const r = await run(['sh', '-c', 'tr "\\0" " " < /proc/$$/cmdline'])
  assert.equal(r.stdout, 'sh -c tr "\\0" " " < /proc/$$/cmdline ')
})

test('run() without setpriv on PATH names util-linux', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hwimage-run-'))
  const saved = process.env.PATH
  try {
    await symlink('/bin/true', join(dir, 'true'))
    process.env.PATH = dir
    await assert.rejects(run(['true']), (e: unknown) => {
      assert.ok(e instanceof ToolError)
      assert.equal(e.code, 'TOOL_MISSING')
      assert.match(e.message, /Cannot run setpriv/)
      assert.match(e.hint ?? '', /apt-get install util-linux/)
      return true
    })
  } finally {
    process.env.PATH = saved
    await rm(dir, { recursive: true, force: true })
  }
})

/** Whether a process exists (a zombie counts as gone). */
function alive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'))
  } catch {
    return false
  }
}

test('a program started by spawnTool() dies when its parent is killed with SIGKILL', async (t) => {
  // A parent that starts `sleep` and prints its pid.
  const runTs = fileURLToPath(new URL('./run.ts', import.meta.url))
  const script = `import { spawnTool } from ${JSON.stringify(runTs)}
const c = spawnTool(['sleep', '1000'], { stdio: 'ignore' })
process.stdout.write(c.pid + '\\n')
setInterval(() => {}, 1000)`
  const parent = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const closed = new Promise((r) => parent.once('close', r))
  let pid = 0
  t.after(async () => {
    parent.kill('SIGKILL')
    if (pid && alive(pid)) process.kill(pid, 'SIGKILL')
    await closed
  })
  pid = await new Promise<number>((resolve) =>
    parent.stdout!.once('data', (b: Buffer) => resolve(Number(String(b).trim()))),
  )
  // setpriv execs sleep in the same process.
  const cmdline = () => readFileSync(`/proc/${pid}/cmdline`, 'utf8')
  for (let i = 0; i < 200 && !cmdline().startsWith('sleep\0'); i++) await new Promise((r) => setTimeout(r, 10))
  assert.equal(cmdline(), 'sleep\x001000\0')
  // Stopped, as the spool's decompressor can be: SIGKILL ends a stopped process too.
  process.kill(pid, 'SIGSTOP')
  parent.kill('SIGKILL')
  await closed
  for (let i = 0; i < 50 && alive(pid); i++) await new Promise((r) => setTimeout(r, 10))
  assert.ok(!alive(pid), `sleep (pid ${pid}) outlived its parent`)
})
