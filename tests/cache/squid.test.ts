// squid (Debian's squid 5) as a caching reverse proxy in front of a real `hwimage serve`,
// configured by lab/squid/squid.conf: one cache per rack is how a fleet scales image
// downloads (docs/deploy.md, "At fleet scale"). The installer (the CLI) installs the built
// test image through it onto a file, three times:
//   1. cold cache: the installer's Range requests (first bytes, the zstd seek table) are
//      passed to serve, its whole-file GET fills the cache; the image lands verified;
//   2. the same image again: squid's access log shows the download as a hit, serve's log
//      shows no second download (squid revalidates with If-None-Match: serve answers 304);
//   3. a resumed download's request (`Range: bytes=N-`, If-Range) gets exactly the rest of
//      the file (squid passes If-Range requests to serve, which sends only that rest); an
//      install whose download a TCP proxy cuts after 40 MiB resumes through squid and completes.
// make test-cache runs it (not make test: three installs of a 2 GiB image, ~1 min).

import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { chownSync, promises as fsp } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { cuttingProxy } from '../../src/serve/serve.fixture.js'
import { freePort, Serve } from '../integration/deploy-fixture.js'
import { CLI, type TestImage, testImage } from '../integration/fixture.js'

const SQUID_CONF = new URL('../../lab/squid/squid.conf', import.meta.url)
const MiB = 2 ** 20

let image: TestImage
let dir: string
let serve: Serve
let squid: ChildProcess | undefined
let squidDir: string
let squidUrl: string
let zstName: string
let serveUrl: string

/** The .img.zst's SHA-256 as the build's SHA256SUMS lists it. */
async function zstDigest(): Promise<string> {
  const sums = await fsp.readFile(path.join(image.dir, 'SHA256SUMS'), 'utf8')
  const line = sums.split('\n').find((l) => l.endsWith(`  ${zstName}`))
  assert.ok(line, `SHA256SUMS lists no ${zstName}`)
  return line.split(' ')[0]!
}

/** Runs a program to its end. */
function run(argv: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (b: Buffer) => (stdout += b))
    child.stderr.on('data', (b: Buffer) => (stderr += b))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

async function waitForPort(port: number, what: () => string): Promise<void> {
  for (const deadline = Date.now() + 30_000; ; ) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => (s.destroy(), resolve(true)))
      s.on('error', () => resolve(false))
    })
    if (ok) return
    if (Date.now() > deadline) throw new Error(`nothing listens on ${port} after 30 s: ${what()}`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

/** squid's access log, the image's lines: [code/status, bytes, method, url]. */
async function squidLines(): Promise<{ code: string; bytes: number; method: string; url: string }[]> {
  const text = await fsp.readFile(path.join(squidDir, 'access.log'), 'utf8').catch(() => '')
  return text
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 7 && f[6]!.endsWith(zstName))
    .map((f) => ({ code: f[3]!, bytes: Number(f[4]), method: f[5]!, url: f[6]! }))
}

/** serve's request log, the image's lines. */
function serveLines(): { method: string; status: number; bytes: number }[] {
  return serve.log
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { event?: string; method: string; path: string; status: number; bytes: number })
    .filter((r) => r.event === 'request' && r.path.split('?')[0]!.endsWith(zstName))
}

/** `hwimage install URL --disk FILE --yes --json` onto a new blank 4 GiB file: the report. */
async function install(url: string, name: string): Promise<Record<string, unknown>> {
  const disk = path.join(dir, name)
  await fsp.writeFile(disk, '')
  await fsp.truncate(disk, 4 * 2 ** 30)
  const r = await run([CLI, 'install', url, '--disk', disk, '--yes', '--json'])
  assert.equal(r.code, 0, `install through squid failed: ${r.stderr.slice(-3000)}`)
  const report = JSON.parse(r.stdout) as Record<string, unknown>
  await fsp.rm(disk)
  return report
}

/** Waits until squid has logged `n` lines for the image (it logs a request when it ends). */
async function squidLogged(n: number): Promise<void> {
  for (const deadline = Date.now() + 10_000; (await squidLines()).length < n; ) {
    if (Date.now() > deadline) throw new Error(`squid logged ${(await squidLines()).length} lines, expected ${n}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

before(async () => {
  image = testImage()
  zstName = path.basename(image.zst)
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hwimage-cache-'))
  const servePort = await freePort()
  const config = path.join(dir, 'serve.yaml')
  await fsp.writeFile(
    config,
    `listen: { host: 127.0.0.1, port: ${servePort} }\npublic_url: http://127.0.0.1:${servePort}\nstate_dir: ${path.join(dir, 'state')}\nimages:\n  default: ${image.dir}\n`,
  )
  serve = await Serve.start(config)
  serveUrl = `http://127.0.0.1:${servePort}`

  // squid drops to its own user (proxy) when started as root: its directory must be that user's.
  squidDir = path.join(dir, 'squid')
  await fsp.mkdir(squidDir)
  await fsp.chmod(dir, 0o755)
  const { stdout: ids } = await run(['id', '-u', 'proxy'])
  const { stdout: gid } = await run(['id', '-g', 'proxy'])
  chownSync(squidDir, Number(ids), Number(gid))
  const squidPort = await freePort()
  squidUrl = `http://127.0.0.1:${squidPort}`
  const conf = path.join(dir, 'squid.conf')
  await fsp.writeFile(
    conf,
    (await fsp.readFile(SQUID_CONF, 'utf8'))
      .replaceAll('@PORT@', `127.0.0.1:${squidPort}`)
      .replaceAll('@ORIGIN_HOST@', '127.0.0.1')
      .replaceAll('@ORIGIN_PORT@', String(servePort))
      .replaceAll('@DIR@', squidDir),
  )
  const made = await run(['squid', '-z', '-N', '-f', conf])
  assert.equal(made.code, 0, `squid -z: ${made.stderr}`)
  squid = spawn('squid', ['-N', '-f', conf], { stdio: ['ignore', 'ignore', 'pipe'] })
  let err = ''
  squid.stderr!.on('data', (b: Buffer) => (err += b))
  await waitForPort(squidPort, () => err)
})

after(async () => {
  if (squid && squid.exitCode === null) {
    const gone = new Promise((r) => squid!.once('exit', r))
    squid.kill('SIGTERM')
    await gone
  }
  await serve?.kill('SIGTERM')
  if (dir) await fsp.rm(dir, { recursive: true, force: true })
})

test('an install through squid with a cold cache: Range requests passed to serve, the image written and verified', async () => {
  const report = await install(`${squidUrl}/images/default/${zstName}`, 'disk-1.raw')
  assert.equal((report.digests as { source: string }).source, await zstDigest())
  await squidLogged(1)
  const lines = await squidLines()
  // The installer's Range requests on a miss: answered 206 by serve through squid.
  assert.ok(
    lines.some((l) => l.method === 'GET' && /^TCP_MISS\/206$/.test(l.code)),
    `no Range request (206) in squid's log: ${JSON.stringify(lines)}`,
  )
  const size = (await fsp.stat(image.zst)).size
  const full = serveLines().filter((r) => r.method === 'GET' && r.status === 200)
  assert.equal(full.length, 1, `serve's whole-file downloads: ${JSON.stringify(serveLines())}`)
  assert.equal(full[0]!.bytes, size)
})

test('the second install of the same image is served from the cache: a HIT in squid, no second download from serve', async () => {
  const before = serveLines().length
  const logged = (await squidLines()).length
  const report = await install(`${squidUrl}/images/default/${zstName}`, 'disk-2.raw')
  assert.equal((report.digests as { source: string }).source, await zstDigest())
  await squidLogged(logged + 1)
  const lines = (await squidLines()).slice(logged)
  const size = (await fsp.stat(image.zst)).size
  const whole = lines.filter((l) => l.method === 'GET' && l.bytes >= size)
  assert.equal(whole.length, 1, `the whole-file GET in squid's log: ${JSON.stringify(lines)}`)
  assert.match(whole[0]!.code, /HIT|REFRESH_UNMODIFIED/, `squid's code for the download: ${whole[0]!.code}`)
  const again = serveLines().slice(before)
  assert.deepEqual(
    again.filter((r) => r.status === 200 && r.method === 'GET'),
    [],
    `serve sent the image again: ${JSON.stringify(again)}`,
  )
  assert.ok(
    again.reduce((n, r) => n + r.bytes, 0) < MiB,
    `serve sent ${again.reduce((n, r) => n + r.bytes, 0)} bytes of the image`,
  )
  console.log(`# squid: ${lines.map((l) => `${l.method} ${l.code} ${l.bytes}`).join('; ')}`)
  console.log(`# serve: ${again.map((r) => `${r.method} ${r.status} ${r.bytes}`).join('; ') || 'nothing'}`)
})

// squid 5 does not evaluate If-Range itself: a Range request that carries one goes to serve
// (TCP_MISS/206), which sends only the rest of the file; without If-Range squid answers a range
// from the cache. The installer sends If-Range (src/io/http-source.ts), so its resumes through
// squid are short requests to serve, never a second whole download.
test('a resumed request (Range: bytes=N- with If-Range) through squid gets exactly the rest of the file; serve sends only that rest', async () => {
  const before = serveLines().length
  const at = 40 * MiB - 123
  const etag = (await fetch(`${squidUrl}/images/default/${zstName}`, { method: 'HEAD' })).headers.get('etag')
  assert.ok(etag, 'no ETag through squid')
  const res = await fetch(`${squidUrl}/images/default/${zstName}`, {
    headers: { range: `bytes=${at}-`, 'if-range': etag },
  })
  assert.equal(res.status, 206)
  const size = (await fsp.stat(image.zst)).size
  assert.equal(res.headers.get('content-range'), `bytes ${at}-${size - 1}/${size}`)
  const got = Buffer.from(await res.arrayBuffer())
  assert.ok(got.equals((await fsp.readFile(image.zst)).subarray(at)), `squid's bytes from ${at} differ from the file`)
  const again = serveLines().slice(before)
  assert.deepEqual(
    again.filter((r) => r.method === 'GET' && r.status === 200),
    [],
    `serve sent the whole image again: ${JSON.stringify(again)}`,
  )
  assert.ok(
    again.every((r) => r.bytes <= size - at),
    `serve sent more than the rest of the file: ${JSON.stringify(again)}`,
  )
  console.log(`# serve: ${again.map((r) => `${r.method} ${r.status} ${r.bytes}`).join('; ')}`)
})

// The cut is the proxy's (src/serve/serve.fixture.ts): it once passed on chunks that arrived
// after the cut, a gap in the body that the installer rightly refused (SOURCE_CORRUPT).
// CUT_TARGET=serve puts the proxy in front of serve alone.
test('an install whose download is cut after 40 MiB through squid resumes and completes', async () => {
  const proxy = await cuttingProxy(process.env.CUT_TARGET === 'serve' ? serveUrl : squidUrl, zstName, 40 * MiB)
  try {
    const report = await install(`${proxy.url}/images/default/${zstName}`, 'disk-3.raw')
    assert.equal(proxy.cuts, 1)
    assert.equal((report.digests as { source: string }).source, await zstDigest())
    const resumes = report.resumes as { count: number } | undefined
    assert.ok(resumes && resumes.count >= 1, `the install did not resume: ${JSON.stringify(report.resumes)}`)
  } finally {
    await proxy.close()
  }
})
