import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { selfSignedCert } from '../io/tls.fixture.js'
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

test('bin/hwimage hands NODE_EXTRA_CA_CERTS to the https requests (Node no longer parses it at start-up)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hwimage-cli-'))
  const { key, cert, file } = selfSignedCert(dir)
  const image = Buffer.alloc(1 << 20) // a blank disk image with a boot sector: enough for a plan
  image[510] = 0x55
  image[511] = 0xaa
  const server = https.createServer({ key, cert }, (req, res) => {
    if (req.url !== '/blank.img') return void res.writeHead(404).end()
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '')
    const [start, end] = m ? [Number(m[1]), Math.min(Number(m[2]), image.length - 1)] : [0, image.length - 1]
    res.writeHead(m ? 206 : 200, {
      'content-length': end - start + 1,
      'accept-ranges': 'bytes',
      ...(m ? { 'content-range': `bytes ${start}-${end}/${image.length}` } : {}),
    })
    res.end(req.method === 'HEAD' ? undefined : image.subarray(start, end + 1))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.after(() => {
    server.closeAllConnections()
    server.close()
    rmSync(dir, { recursive: true, force: true })
  })
  const target = join(dir, 'disk.img')
  writeFileSync(target, Buffer.alloc(4 << 20))
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/blank.img`
  const install = async (env: NodeJS.ProcessEnv) => {
    const child = spawn(BIN, ['install', url, '--disk', target, '--no-bmap', '--dry-run', '--json'], {
      env: { ...env, HWIMAGE_EXTRA_CA_CERTS: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const status = await new Promise<number | null>((r) => child.on('close', r))
    return { status, stdout, stderr }
  }
  const { NODE_EXTRA_CA_CERTS: _, ...base } = process.env
  const trusted = await install({ ...base, NODE_EXTRA_CA_CERTS: file })
  assert.equal(trusted.status, 0, trusted.stderr)
  assert.equal(JSON.parse(trusted.stdout).source.name, url)
  const untrusted = await install(base)
  assert.equal(untrusted.status, 1)
  const error = JSON.parse(untrusted.stderr.trim().split('\n').pop()!)
  assert.equal(error.code, 'NETWORK')
  assert.match(error.message, /certificate is not trusted \(self[- ]signed/)
  assert.match(error.hint, /NODE_EXTRA_CA_CERTS/)
})
