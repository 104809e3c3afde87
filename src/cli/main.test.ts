import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { verbs as commands } from './commands/index.js'

// The CLI as users run it: bin/hwimage over dist/ (made by `make setup`).
const BIN = new URL('../../bin/hwimage', import.meta.url).pathname

function cli(...args: string[]) {
  const r = spawnSync(BIN, args, { encoding: 'utf8', timeout: 60_000 })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

test('every verb answers --help with its usage on stdout and exit 0', () => {
  assert.ok(commands.length >= 8, 'all verbs are registered')
  for (const c of commands) {
    const r = cli(c.name, '--help')
    assert.equal(r.status, 0, `${c.name} --help exits 0 (stderr: ${r.stderr})`)
    assert.match(r.stdout, /Usage: hwimage /, `${c.name} --help prints its usage`)
  }
})

test('hwimage --help lists every verb', () => {
  const r = cli('--help')
  assert.equal(r.status, 0)
  for (const c of commands) assert.match(r.stdout, new RegExp(`^  ${c.name} `, 'm'))
})

test('an unknown verb exits 2 and names it', () => {
  const r = cli('frobnicate')
  assert.equal(r.status, 2)
  assert.match(r.stderr, /unknown verb "frobnicate"/)
})

test('an unknown option exits 2 with a USAGE error and a hint', () => {
  const r = cli('build', '--no-such-option')
  assert.equal(r.status, 2)
  assert.match(r.stderr, /error\[USAGE\]/)
  assert.match(r.stderr, /hint: see `hwimage build --help`/)
})

test('a bad spec exits 2 naming the field, as text and as a JSON error event', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hwimage-cli-'))
  try {
    const spec = join(dir, 'bad.yaml')
    writeFileSync(spec, 'kernel: { flavor: realtime }\n')
    const r = cli('build', spec, '-o', join(dir, 'out'))
    assert.equal(r.status, 2)
    assert.match(r.stderr, /error\[SPEC_INVALID\].*field "kernel.flavor"/)
    const j = cli('build', spec, '-o', join(dir, 'out'), '--json')
    assert.equal(j.status, 2)
    const event = JSON.parse(j.stderr.trim().split('\n').pop()!)
    assert.equal(event.event, 'error')
    assert.equal(event.code, 'SPEC_INVALID')
    assert.equal(j.stdout, '', 'nothing on stdout when it fails')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('inspect of a missing file exits 2', () => {
  const r = cli('inspect', '/nonexistent/disk.img')
  assert.equal(r.status, 2)
  assert.match(r.stderr, /error\[NOT_FOUND\]/)
})
