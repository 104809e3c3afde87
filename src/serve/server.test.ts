import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { parse as parseYaml } from 'yaml'
import { garbageFile, makeFixtureImage, type FixtureImage } from '../install/image.fixture.js'
import { assertInstalled } from '../install/install.fixture.js'
import { install } from '../install/install.js'
import { loadServeConfig } from './config.js'
import { isLoopback, MAX_BODY_BYTES } from './http-util.js'
import { cuttingProxy, json, rawRequest, writeConfig } from './serve.fixture.js'
import { startServe, type RunningServe } from './server.js'
import { grubConfigName } from './tftp-tree.js'

const MiB = 1 << 20
const DISK = 64 * MiB
const MAC = '52:54:00:00:00:01'
const OTHER = '52:54:00:00:00:02'
const SEED =
  'hostname: node-1\nusers:\n  - name: ops\n    ssh_authorized_keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBSECRETKEYMATERIAL ops@x"]\n'
const OUTSIDE = 'OUTSIDE-THE-ROOT-4f1c2b'

let dir: string
let fx: FixtureImage
let serve: RunningServe
const logs: Array<Record<string, unknown>> = []
let n = 0

before(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hwimage-serve-'))
  const out = path.join(dir, 'out')
  await fsp.mkdir(out)
  fx = await makeFixtureImage(out, { formats: ['zst'] })
  // Things outside the served roots that traversal would reach, and a symlink out.
  await fsp.writeFile(path.join(dir, 'secret.txt'), OUTSIDE)
  await fsp.symlink(path.join(dir, 'secret.txt'), path.join(out, 'link.img'))
  await fsp.mkdir(path.join(dir, 'deploy'))
  await fsp.writeFile(path.join(dir, 'deploy', 'vmlinuz'), 'kernel bytes')
  await fsp.writeFile(path.join(dir, 'deploy', 'initrd'), 'initrd bytes')
  await fsp.writeFile(path.join(dir, 'seed.yaml'), SEED)
  const file = await writeConfig(
    dir,
    out,
    `deploy_dir: ${path.join(dir, 'deploy')}
tftp_root: ${path.join(dir, 'tftp')}
unknown_macs: ignore
kernel_args: console=ttyS0,115200n8
machines:
  ${MAC}: { name: node-1, image: default, seed: ${path.join(dir, 'seed.yaml')}, disk_hints: "size=>=10M" }
  ${OTHER}: { name: node-2, image: default }
`,
  )
  serve = await startServe(await loadServeConfig(file), { log: (r) => logs.push(r), port: 0, host: '127.0.0.1' })
})
after(async () => {
  await serve.close()
  await fsp.rm(dir, { recursive: true, force: true })
})

/** Boots a machine by iPXE and returns the token on its kernel command line. */
async function bootToken(mac: string): Promise<string> {
  const r = await rawRequest(serve.url, `/boot/ipxe?mac=${mac}`)
  assert.equal(r.status, 200)
  const token = /hwimage\.token=(\S+)/.exec(r.body.toString())?.[1]
  assert.ok(token, r.body.toString())
  return token
}
const bearer = (t: string) => ({ authorization: `Bearer ${t}` })
const post = (p: string, body: unknown, headers: Record<string, string> = {}) =>
  rawRequest(serve.url, p, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  })

async function target(): Promise<string> {
  const file = path.join(dir, `disk-${++n}.raw`)
  await garbageFile(file, DISK, n)
  return file
}

test('GET /boot/ipxe: the deploy environment with a fresh token for a machine that must deploy; 404 for an unknown MAC when ignoring; 400 for a bad MAC', async () => {
  const r = await rawRequest(serve.url, `/boot/ipxe?mac=${MAC.replace(/:/g, '-').toUpperCase()}`)
  assert.equal(r.status, 200)
  const s = r.body.toString()
  assert.match(s, /^#!ipxe\n/)
  assert.match(
    s,
    /^kernel http:\/\/10\.0\.2\.2:8080\/deploy\/vmlinuz initrd=initrd hwimage\.url=http:\/\/10\.0\.2\.2:8080 hwimage\.mac=52:54:00:00:00:01 hwimage\.token=\S+ console=ttyS0,115200n8$/m,
  )
  assert.equal((await rawRequest(serve.url, '/boot/ipxe?mac=52:54:00:ff:ff:ff')).status, 404)
  assert.equal(serve.store.get('52:54:00:ff:ff:ff'), undefined, 'an ignored MAC leaves no trace in the state')
  assert.equal((await rawRequest(serve.url, '/boot/ipxe?mac=nope')).status, 400)
})

test('the deploy flow over the API: inventory → task (install, with the image URLs) → progress → installed → first-boot report → deployed; then iPXE says exit', async () => {
  const token = await bootToken(MAC)
  const inventory = {
    version: 1,
    firmware: 'bios',
    cpus: 2,
    memoryBytes: 2 ** 31,
    pci: [{ address: '0000:00:03.0', vendor: '1af4', device: '1000', class: '020000', driver: 'virtio-pci' }],
    disks: [
      {
        path: '/dev/vda',
        name: 'vda',
        sizeBytes: 20 * 2 ** 30,
        logicalSectorSize: 512,
        physicalSectorSize: 512,
        rotational: true,
        removable: false,
      },
    ],
    nics: [{ name: 'ens3', mac: MAC, link: true }],
  }
  const inv = await post(`/api/v1/machines/${MAC}/inventory`, inventory, bearer(token))
  assert.equal(inv.status, 200, inv.body.toString())
  const task = json<{
    action: string
    image: { url: string; sha256Url: string; bmapUrl: string }
    diskHints: string[]
    seedUrl: string
  }>(inv)
  assert.equal(task.action, 'install')
  assert.equal(task.image.url, 'http://10.0.2.2:8080/images/default/fixture.img.zst')
  assert.equal(task.image.sha256Url, 'http://10.0.2.2:8080/images/default/SHA256SUMS')
  assert.equal(task.image.bmapUrl, 'http://10.0.2.2:8080/images/default/fixture.img.bmap')
  assert.deepEqual(task.diskHints, ['size=>=10M'])
  assert.equal(task.seedUrl, `http://10.0.2.2:8080/api/v1/machines/${MAC}/seed`)
  assert.deepEqual(json(await rawRequest(serve.url, `/api/v1/machines/${MAC}/task`, { headers: bearer(token) })), task)
  assert.equal(
    (await post(`/api/v1/machines/${MAC}/progress`, { stage: 'write', done: 10, total: 100, rate: 5 }, bearer(token)))
      .status,
    200,
  )
  assert.equal(
    (await post(`/api/v1/machines/${MAC}/progress`, { stage: 'write', done: 'ten' }, bearer(token))).status,
    400,
  )
  assert.equal(
    (
      await post(
        `/api/v1/machines/${MAC}/events`,
        { kind: 'installed', fields: { report: { mode: 'bmap' } } },
        bearer(token),
      )
    ).status,
    200,
  )
  assert.equal(serve.store.get(MAC)!.state, 'installed')
  assert.match((await rawRequest(serve.url, `/boot/ipxe?mac=${MAC}`)).body.toString(), /^exit$/m)
  assert.equal(
    (await post(`/api/v1/machines/${MAC}/report`, { hostname: 'node-1', seed: 'ok' }, bearer(token))).status,
    200,
  )
  const show = json<{
    machine: { state: string; stateTimes: Record<string, string>; installReport: unknown; inventory: { cpus: number } }
    events: Array<{ kind: string }>
  }>(await rawRequest(serve.url, `/api/v1/machines/${MAC}`))
  assert.equal(show.machine.state, 'deployed')
  assert.deepEqual(Object.keys(show.machine.stateTimes).sort(), ['deployed', 'deploying', 'installed', 'new'])
  assert.deepEqual(show.machine.installReport, { mode: 'bmap' })
  assert.equal(show.machine.inventory.cpus, 2)
  assert.ok(show.events.some((e) => e.kind === 'first-boot'))
  // The TFTP tree followed: the per-MAC GRUB config now boots the disk.
  await serve.tftpSettled()
  assert.match(await fsp.readFile(path.join(dir, 'tftp', grubConfigName(MAC)), 'utf8'), /^exit$/m)
  // And redeploy sends it back, with the old token revoked.
  assert.equal((await post(`/api/v1/machines/${MAC}/redeploy`, {})).status, 200)
  assert.equal((await rawRequest(serve.url, `/api/v1/machines/${MAC}/task`, { headers: bearer(token) })).status, 403)
})

test('the TFTP tree: signed shim and GRUB, the fallback config, boot.ipxe, the deploy environment, and a GRUB config per MAC whose token works', async () => {
  await serve.tftpSettled()
  const root = path.join(dir, 'tftp')
  assert.deepEqual(
    await fsp.readFile(path.join(root, 'shimx64.efi')),
    await fsp.readFile('/usr/lib/shim/shimx64.efi.signed'),
  )
  assert.deepEqual(
    await fsp.readFile(path.join(root, 'grubx64.efi')),
    await fsp.readFile('/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed'),
  )
  assert.match(await fsp.readFile(path.join(root, 'grub', 'grub.cfg'), 'utf8'), /grub\.cfg-\$\{m1\}/)
  assert.match(
    await fsp.readFile(path.join(root, 'boot.ipxe'), 'utf8'),
    /chain http:\/\/10\.0\.2\.2:8080\/boot\/ipxe\?mac=\$\{net0\/mac\}/,
  )
  assert.equal(await fsp.readFile(path.join(root, 'deploy', 'vmlinuz'), 'utf8'), 'kernel bytes')
  const cfg = await fsp.readFile(path.join(root, 'grub', 'grub.cfg-52-54-00-00-00-02'), 'utf8')
  assert.match(cfg, /^linux \(tftp\)\/deploy\/vmlinuz .*hwimage\.mac=52:54:00:00:00:02/m)
  const token = /hwimage\.token=(\S+)/.exec(cfg)![1]!
  assert.equal((await rawRequest(serve.url, `/api/v1/machines/${OTHER}/task`, { headers: bearer(token) })).status, 200)
})

test("install() from serve's image URL onto a file target, with the digest from SHA256SUMS", async () => {
  const disk = await target()
  const r = await install({
    source: `${serve.url}/images/default/fixture.img.zst`,
    disk,
    sha256Url: `${serve.url}/images/default/SHA256SUMS`,
  })
  await assertInstalled(disk, fx, DISK, dir)
  assert.equal(r.digests.sourceVerified, true)
  assert.equal(r.bmap!.location, `${serve.url}/images/default/fixture.img.bmap`)
  assert.equal(r.resumes?.count ?? 0, 0, 'streamed whole, without a resume')
})

test('install() from serve resumes with Range + If-Range when the connection drops mid-stream', async () => {
  const proxy = await cuttingProxy(serve.url, '.img.zst', 300_000)
  try {
    const disk = await target()
    const resumes: Array<Record<string, unknown>> = []
    const r = await install({
      source: `${proxy.url}/images/default/fixture.img.zst`,
      disk,
      sha256Url: `${proxy.url}/images/default/SHA256SUMS`,
      http: { retryDelayMs: 5 },
      onEvent: (name, f) => name === 'resume' && resumes.push(f),
    })
    await assertInstalled(disk, fx, DISK, dir)
    assert.equal(proxy.cuts, 1, 'the download was cut once')
    assert.equal(r.resumes!.count, 1)
    assert.equal(resumes.length, 1)
    const ranged = logs.filter(
      (l) => l.event === 'request' && l.path === '/images/default/fixture.img.zst' && l.status === 206,
    )
    assert.ok(ranged.length >= 1, 'serve answered the resume with 206')
  } finally {
    await proxy.close()
  }
})

test('GET /images: HEAD, a range (206, Content-Range), a suffix range, If-Range with a stale validator (200, whole), an unsatisfiable range (416)', async () => {
  const p = '/images/default/fixture.img.zst'
  const size = (await fsp.stat(fx.zst)).size
  const whole = await fsp.readFile(fx.zst)
  const head = await rawRequest(serve.url, p, { method: 'HEAD' })
  assert.equal(head.status, 200)
  assert.equal(Number(head.headers['content-length']), size)
  assert.equal(head.headers['accept-ranges'], 'bytes')
  assert.match(head.headers.etag!, /^"[0-9a-f-]+"$/)
  assert.equal(head.body.length, 0)
  const part = await rawRequest(serve.url, p, { headers: { range: 'bytes=100-199', 'if-range': head.headers.etag! } })
  assert.equal(part.status, 206)
  assert.equal(part.headers['content-range'], `bytes 100-199/${size}`)
  assert.deepEqual(part.body, whole.subarray(100, 200))
  const tail = await rawRequest(serve.url, p, { headers: { range: 'bytes=-10' } })
  assert.deepEqual(tail.body, whole.subarray(size - 10))
  const open = await rawRequest(serve.url, p, { headers: { range: `bytes=${size - 5}-` } })
  assert.equal(open.headers['content-range'], `bytes ${size - 5}-${size - 1}/${size}`)
  const stale = await rawRequest(serve.url, p, { headers: { range: 'bytes=100-199', 'if-range': '"0-0-0"' } })
  assert.equal(stale.status, 200, 'a changed file is sent whole')
  assert.equal(stale.body.length, size)
  const bad = await rawRequest(serve.url, p, { headers: { range: `bytes=${size}-` } })
  assert.equal(bad.status, 416)
  assert.equal(bad.headers['content-range'], `bytes */${size}`)
  assert.equal((await rawRequest(serve.url, '/deploy/initrd')).body.toString(), 'initrd bytes')
  assert.equal((await rawRequest(serve.url, '/images/none/fixture.img.zst')).status, 404)
})

test('path traversal is refused on every file route (raw, encoded, double-encoded, backslash, NUL, absolute, symlink out): 400/404 and nothing from outside the root', async () => {
  for (const p of [
    '/images/default/../secret.txt',
    '/images/default/../../secret.txt',
    '/images/default/%2e%2e/secret.txt',
    '/images/default/%2E%2E%2Fsecret.txt',
    '/images/default/..%2f..%2fsecret.txt',
    '/images/default/%252e%252e%252fsecret.txt',
    '/images/default/..%5csecret.txt',
    '/images/default/fixture.img.zst%00',
    '/images/default//etc/passwd',
    '/images/default/%2fetc%2fpasswd',
    '/images/%2e%2e/secret.txt',
    '/images/default/link.img',
    '/images/default/.hidden',
    '/deploy/..%2f..%2fsecret.txt',
    '/deploy/%2e%2e',
    '/boot/../images/default/../../secret.txt',
  ]) {
    const r = await rawRequest(serve.url, p)
    assert.ok(r.status === 400 || r.status === 404, `${p}: ${r.status}`)
    assert.ok(!r.body.toString('latin1').includes(OUTSIDE), `${p} leaked the file outside the root`)
  }
})

test('a body over the 1 MiB limit is refused with 413 before it is stored', async () => {
  const token = await bootToken(OTHER)
  const big = JSON.stringify({ kind: 'note', fields: { pad: 'x'.repeat(MAX_BODY_BYTES) } })
  const r = await post(`/api/v1/machines/${OTHER}/events`, big, bearer(token))
  assert.equal(r.status, 413)
  assert.ok(!serve.store.events(OTHER).some((e) => e.kind === 'note'))
  assert.equal((await post(`/api/v1/machines/${OTHER}/events`, '{not json', bearer(token))).status, 400)
})

test("the seed: 401 without a token, 403 with a wrong one or another machine's, nothing of it leaked; with the token it comes with a report URL", async () => {
  await rawRequest(serve.url, `/api/v1/machines/${MAC}/redeploy`, { method: 'POST' })
  const token = await bootToken(MAC)
  const other = await bootToken(OTHER)
  const p = `/api/v1/machines/${MAC}/seed`
  for (const [headers, status] of [
    [{}, 401],
    [bearer('wrong-token'), 403],
    [bearer(other), 403],
    [{ authorization: token }, 401],
  ] as const) {
    const r = await rawRequest(serve.url, p, { headers })
    assert.equal(r.status, status, JSON.stringify(headers))
    assert.ok(!r.body.toString().includes('SECRETKEYMATERIAL'), 'the refusal holds none of the seed')
  }
  const r = await rawRequest(serve.url, p, { headers: bearer(token) })
  assert.equal(r.status, 200)
  const seed = parseYaml(r.body.toString()) as { hostname: string; report: { url: string; token: string } }
  assert.equal(seed.hostname, 'node-1')
  assert.deepEqual(seed.report, { url: `http://10.0.2.2:8080/api/v1/machines/${MAC}/report`, token })
  assert.equal(
    (await rawRequest(serve.url, `/api/v1/machines/${OTHER}/seed`, { headers: bearer(other) })).status,
    404,
    'no seed assigned',
  )
})

test('tokens appear in no log record and in no listing', async () => {
  const token = await bootToken(OTHER)
  await rawRequest(serve.url, `/api/v1/machines/${OTHER}/task?token=${token}`, { headers: bearer(token) })
  const listing = (await rawRequest(serve.url, '/api/v1/machines')).body.toString()
  const one = (await rawRequest(serve.url, `/api/v1/machines/${OTHER}`)).body.toString()
  assert.ok(logs.length > 10)
  const logText = JSON.stringify(logs)
  assert.ok(!logText.includes(token), 'no token in the log')
  assert.ok(logText.includes('token=[redacted]'), 'the query token was redacted')
  for (const text of [listing, one]) {
    assert.ok(!text.includes(token))
    assert.doesNotMatch(text, /"token"|hash|SECRETKEYMATERIAL/)
  }
})

test('the operator API: machines, images; assign validates the image and the seed; DELETE; localhost is allowed without an operator token', async () => {
  const images = json<{ images: Array<{ name: string; url: string; files: Array<{ name: string }> }> }>(
    await rawRequest(serve.url, '/api/v1/images'),
  ).images
  assert.equal(images[0]!.name, 'default')
  assert.ok(images[0]!.files.some((f) => f.name === 'SHA256SUMS'))
  const mac = '52:54:00:00:00:09'
  assert.equal((await post(`/api/v1/machines/${mac}/assign`, { image: 'nope' })).status, 400)
  assert.equal(
    (await post(`/api/v1/machines/${mac}/assign`, { image: 'default', seed_yaml: 'hostname: [1]\n' })).status,
    400,
  )
  assert.equal((await post(`/api/v1/machines/${mac}/assign`, { image: 'default', extra: 1 })).status, 400)
  const a = await post(`/api/v1/machines/${mac}/assign`, {
    image: 'default',
    seed_yaml: 'hostname: node-9\n',
    disk_hints: ['serial=ABC'],
  })
  assert.equal(a.status, 200, a.body.toString())
  assert.equal(json<{ machine: { state: string; hasSeed: boolean } }>(a).machine.hasSeed, true)
  assert.equal((await rawRequest(serve.url, `/api/v1/machines/${mac}`, { method: 'DELETE' })).status, 200)
  assert.equal((await rawRequest(serve.url, `/api/v1/machines/${mac}`)).status, 404)
  assert.equal((await rawRequest(serve.url, '/api/v1/machines', { method: 'PUT' })).status, 405)
  assert.ok(isLoopback('127.0.0.1') && isLoopback('::1') && isLoopback('::ffff:127.0.0.2'))
  assert.ok(!isLoopback('10.0.2.15') && !isLoopback('::ffff:10.0.2.2') && !isLoopback(undefined))
})

test('with operator_token set, the operator API needs it: 401 without, 403 wrong, 200 right', async () => {
  const sub = path.join(dir, 'op')
  await fsp.mkdir(sub)
  const file = await writeConfig(sub, path.join(dir, 'out'), 'operator_token: s3cr3t-operator-token-0123\n')
  const s = await startServe(await loadServeConfig(file), { port: 0, host: '127.0.0.1' })
  try {
    assert.equal((await rawRequest(s.url, '/api/v1/machines')).status, 401)
    assert.equal(
      (await rawRequest(s.url, '/api/v1/machines', { headers: bearer('wrong-operator-token-xx') })).status,
      403,
    )
    assert.equal(
      (await rawRequest(s.url, '/api/v1/machines', { headers: bearer('s3cr3t-operator-token-0123') })).status,
      200,
    )
  } finally {
    await s.close()
  }
})

test("an API request whose body stalls is answered 503 at the route's timeout and its connection closed", async () => {
  const sub = path.join(dir, 'slow')
  await fsp.mkdir(sub)
  const file = await writeConfig(sub, path.join(dir, 'out'), `machines:\n  ${MAC}: { image: default }\n`)
  const s = await startServe(await loadServeConfig(file), { port: 0, host: '127.0.0.1', timeouts: { apiMs: 300 } })
  try {
    const t = await rawRequest(s.url, `/boot/ipxe?mac=${MAC}`)
    const token = /hwimage\.token=(\S+)/.exec(t.body.toString())![1]!
    const { connect } = await import('node:net')
    const started = Date.now()
    const answer = await new Promise<string>((resolve, reject) => {
      const sock = connect(s.port, '127.0.0.1', () => {
        sock.write(
          `POST /api/v1/machines/${MAC}/events HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${token}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"kind":`,
        )
      })
      let got = ''
      sock.on('data', (b: Buffer) => (got += b.toString()))
      sock.on('close', () => resolve(got))
      sock.on('error', reject)
      setTimeout(() => reject(new Error('the connection was not closed')), 5000).unref()
    })
    const took = Date.now() - started
    assert.match(answer, /^HTTP\/1\.1 503 /)
    assert.ok(took >= 250 && took < 3000, `closed after ${took} ms`)
  } finally {
    await s.close()
  }
})

test('enlisting: an unknown MAC gets the deploy environment by iPXE, or a token from POST /api/v1/enlist after the fallback GRUB config; a known MAC is refused', async () => {
  const sub = path.join(dir, 'enlist')
  await fsp.mkdir(sub)
  const file = await writeConfig(
    sub,
    path.join(dir, 'out'),
    `unknown_macs: enlist\ntftp_root: ${path.join(sub, 'tftp')}\n`,
  )
  const s = await startServe(await loadServeConfig(file), { port: 0, host: '127.0.0.1' })
  try {
    assert.match(await fsp.readFile(path.join(sub, 'tftp', 'grub', 'grub.cfg'), 'utf8'), /hwimage\.enlist=1/)
    assert.match((await rawRequest(s.url, '/boot/ipxe?mac=52:54:00:0e:0e:01')).body.toString(), /hwimage\.token=\S+/)
    const mac = '52:54:00:0e:0e:02'
    const r = await rawRequest(s.url, '/api/v1/enlist', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ mac }),
    })
    assert.equal(r.status, 200)
    const { token } = json<{ token: string }>(r)
    const inv = { version: 1, firmware: 'uefi-secureboot', cpus: 1, memoryBytes: 1, pci: [], disks: [], nics: [] }
    const a = await rawRequest(s.url, `/api/v1/machines/${mac}/inventory`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
      body: JSON.stringify(inv),
    })
    assert.equal(json<{ action: string; state: string }>(a).action, 'wait')
    assert.equal(s.store.get(mac)!.state, 'enlisted')
    const again = await rawRequest(s.url, '/api/v1/enlist', { method: 'POST', body: JSON.stringify({ mac }) })
    assert.equal(again.status, 409, 'a known MAC gets no second token')
    assert.ok(!again.body.toString().includes(token))
  } finally {
    await s.close()
  }
  assert.equal(
    (
      await rawRequest(serve.url, '/api/v1/enlist', {
        method: 'POST',
        body: JSON.stringify({ mac: '52:54:00:0e:0e:03' }),
      })
    ).status,
    404,
    'not without unknown_macs: enlist',
  )
})
