import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { test } from 'node:test'
import { releaseHungUpTerminals, stdioTerminals } from './hung-up-terminal.js'

const MODULE = fileURLToPath(new URL('./hung-up-terminal.ts', import.meta.url))

// Python's pty.fork() makes the child a session leader whose stdio is a new terminal;
// closing the terminal's other end hangs it up (SIGHUP, then EIO on every use).
const HANG_UP = String.raw`
import os, pty, sys
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
os.read(fd, 100)
os.close(fd)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
`

/** Runs a Node script on a terminal that hangs up once it printed something; returns its exit code (negative: killed by that signal). */
function onHungUpTerminal(release: boolean): number {
  const script = `import { releaseHungUpTerminals, stdioTerminals } from ${JSON.stringify(MODULE)}
const was = stdioTerminals()
process.stderr.on('error', () => {})
const keep = setTimeout(() => {}, 30000)
process.on('SIGHUP', () => setTimeout(() => {
  process.stderr.write('nobody reads this\\n')
  if (${release}) releaseHungUpTerminals(was)
  process.exitCode = 7
  clearTimeout(keep)
}, 100))
process.stderr.write('ready\\n')`
  const r = spawnSync(
    'python3',
    ['-c', HANG_UP, process.execPath, '--import', 'tsx', '--input-type=module', '-e', script],
    { encoding: 'utf8', timeout: 60_000 },
  )
  return Number(r.stdout.trim())
}

test('releaseHungUpTerminals() lets Node exit with its code after its terminal hung up (Node 20 aborts otherwise)', () => {
  assert.equal(onHungUpTerminal(true), 7)
  if (process.versions.node.startsWith('20.'))
    assert.equal(onHungUpTerminal(false), -6, 'Node 20 aborts (SIGABRT) in its exit')
})

test('releaseHungUpTerminals() leaves descriptors that are still terminals, or never were, alone', () => {
  const was = stdioTerminals()
  assert.deepEqual(releaseHungUpTerminals(was), [])
  assert.deepEqual(releaseHungUpTerminals([false, false, false]), [])
})
