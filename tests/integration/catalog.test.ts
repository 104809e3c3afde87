// Install by name from a signed catalog served by nginx on loopback: resolve, verify,
// install onto a file target, compare the bytes with the image; a tampered catalog, a
// catalog checked against another key and a tampered image are each refused by code.

import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { makeBuildDir, type TestBuild } from '../../src/catalog/build-dir.fixture.js'
import { publish } from '../../src/catalog/publish.js'
import { spawnCli } from '../../src/cli/cli.fixture.js'
import { garbageFile } from '../../src/install/image.fixture.js'
import { makeTestKey, type TestKey, withGnupgHome } from '../../src/tools/gpg.fixture.js'

let dir: string
let build: TestBuild
let key: TestKey
let other: TestKey
let nginx: ChildProcess
let url: string
let n = 0

const digest = async (p: string) =>
  createHash('sha256')
    .update(await fsp.readFile(p))
    .digest('hex')

async function freePort(): Promise<number> {
  const s = net.createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()))
  const port = (s.address() as net.AddressInfo).port
  await new Promise((r) => s.close(r))
  return port
}

before(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hwimage-catalog-it-'))
  ;[build, key, other] = await Promise.all([
    makeBuildDir(path.join(dir, 'build')),
    makeTestKey('publisher'),
    makeTestKey('stranger'),
  ])
  // nginx's worker runs as an unprivileged user: it must be able to read the served tree.
  await fsp.chmod(dir, 0o755)
  const www = path.join(dir, 'www')
  await withGnupgHome(key, () =>
    publish({ builds: [build.dir], catalog: path.join(www, 'good'), signKey: key.fingerprint }),
  )
  // A copy whose signed products file says another digest, and one whose image has a byte changed.
  await fsp.cp(path.join(www, 'good'), path.join(www, 'tampered-catalog'), { recursive: true })
  const sjson = path.join(www, 'tampered-catalog/streams/v1/org.hwimage:images.sjson')
  const text = await fsp.readFile(sjson, 'utf8')
  const sha = await digest(build.fx.zst)
  await fsp.writeFile(
    sjson,
    text.replace(
      sha,
      sha.replace(/^./, (c) => (c === '0' ? '1' : '0')),
    ),
  )
  await fsp.cp(path.join(www, 'good'), path.join(www, 'tampered-image'), { recursive: true })
  const zst = path.join(www, 'tampered-image/images/debian/12/amd64/server/20261202', path.basename(build.fx.zst))
  const b = await fsp.readFile(zst)
  b[b.length >> 1] = b[b.length >> 1]! ^ 0xff
  await fsp.writeFile(zst, b)

  const port = await freePort()
  const conf = path.join(dir, 'nginx.conf')
  await fsp.writeFile(
    conf,
    `worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${dir}/tmp; proxy_temp_path ${dir}/tmp; fastcgi_temp_path ${dir}/tmp;
  uwsgi_temp_path ${dir}/tmp; scgi_temp_path ${dir}/tmp;
  server { listen 127.0.0.1:${port}; root ${www}; }
}
`,
  )
  await fsp.mkdir(path.join(dir, 'tmp'))
  nginx = spawn('nginx', ['-c', conf, '-p', dir, '-g', 'daemon off;'], { stdio: 'inherit' })
  url = `http://127.0.0.1:${port}`
  for (let i = 0; i < 100; i++) {
    const ok = await fetch(`${url}/good/streams/v1/index.json`).then(
      (r) => r.ok,
      () => false,
    )
    if (ok) break
    await new Promise((r) => setTimeout(r, 50))
  }
})
after(async () => {
  nginx?.kill('SIGTERM')
  await key?.close()
  await other?.close()
  await fsp.rm(dir, { recursive: true, force: true })
})

async function target(): Promise<string> {
  const file = path.join(dir, `disk-${++n}.raw`)
  await garbageFile(file, build.fx.size, n)
  return file
}

const code = (stderr: string) => /error\[([A-Z_]+)\]/.exec(stderr)?.[1]

test('install --catalog URL bookworm/server --keyring: the installed disk is the image, byte for byte', async () => {
  // A new (zeroed) disk of the image's size: with a bmap the installer leaves unmapped blocks as they were.
  const disk = path.join(dir, `disk-${++n}.raw`)
  await fsp.writeFile(disk, '')
  await fsp.truncate(disk, build.fx.size)
  const r = await spawnCli([
    'install',
    '--catalog',
    `${url}/good/`,
    'bookworm/server',
    '--keyring',
    path.join(dir, 'www/good/streams/v1/keyring.gpg'),
    '--disk',
    disk,
  ]).done
  assert.equal(r.status, 0, r.stderr)
  assert.match(r.stderr, new RegExp(`signed by ${key.fingerprint}`))
  assert.equal(await digest(disk), await digest(build.fx.img))
  const latest = await spawnCli([
    'install',
    '--catalog',
    `${url}/good/`,
    'latest@20261202',
    '--keyring',
    key.keyring,
    '--disk',
    await target(),
    '--json',
  ]).done
  assert.equal(latest.status, 0, latest.stderr)
})

test('a tampered catalog, another key, an unsigned read without --insecure: refused, the disk untouched', async () => {
  for (const [args, want] of [
    [['--catalog', `${url}/tampered-catalog/`, 'bookworm/server', '--keyring', key.keyring], 'SIGNATURE_INVALID'],
    [['--catalog', `${url}/good/`, 'bookworm/server', '--keyring', other.keyring], 'SIGNATURE_INVALID'],
    [['--catalog', `${url}/good/`, 'bookworm/server'], 'SIGNATURE_MISSING'],
    [['--catalog', `${url}/good/`, 'trixie/server', '--keyring', key.keyring], 'NOT_FOUND'],
  ] as const) {
    const disk = await target()
    const beforeDigest = await digest(disk)
    const r = await spawnCli(['install', ...args, '--disk', disk]).done
    assert.equal(r.status, 2, r.stderr)
    assert.equal(code(r.stderr), want, r.stderr)
    assert.equal(await digest(disk), beforeDigest, 'nothing written')
  }
})

test('a tampered image behind a good catalog is refused with CHECKSUM_MISMATCH and leaves no partition table', async () => {
  const disk = await target()
  const r = await spawnCli([
    'install',
    '--catalog',
    `${url}/tampered-image/`,
    'bookworm/server',
    '--keyring',
    key.keyring,
    '--disk',
    disk,
  ]).done
  assert.equal(r.status, 2, r.stderr)
  assert.ok(['CHECKSUM_MISMATCH', 'SOURCE_CORRUPT'].includes(code(r.stderr) ?? ''), r.stderr)
  const head = Buffer.alloc(1 << 20)
  const fh = await fsp.open(disk, 'r')
  await fh.read(head, 0, head.length, 0)
  await fh.close()
  assert.ok(
    head.every((x) => x === 0),
    'the first MiB (the partition table) is zeroed',
  )
})

test('catalog list over HTTP with --keyring names the product, its newest serial and that it is verified', async () => {
  const r = await spawnCli(['catalog', 'list', `${url}/good/`, '--keyring', key.keyring]).done
  assert.equal(r.status, 0, r.stderr)
  assert.match(r.stdout, /org\.hwimage:debian:12:amd64:server\s+20261202\s+1\s+bookworm\/server/)
  assert.match(r.stdout, new RegExp(`verified: signed by ${key.fingerprint}`))
})
