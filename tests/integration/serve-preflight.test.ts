// serve's pre-flight check with the real cloud test image (`make test` builds it): a
// machine with an AHCI disk (which Debian's cloud kernel cannot drive) is refused before
// anything is installed — when its inventory arrives with an image assigned, and when an
// operator assigns the image to an enlisted machine — and the reason is on the API.

import assert from 'node:assert/strict'
import { existsSync, promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { machine, pci } from '../../src/deploy/inventory.fixture.js'
import { loadServeConfig } from '../../src/serve/config.js'
import { json, rawRequest } from '../../src/serve/serve.fixture.js'
import { type RunningServe, startServe } from '../../src/serve/server.js'

const CLOUD_IMAGE = process.env.HWIMAGE_TEST_CLOUD_IMAGE_DIR ?? ''
const AHCI = pci('0000:00:1f.2', '8086', '2922', '010601')
const VIRTIO_BLK = pci('0000:00:05.0', '1af4', '1042', '010000', ['1af4', '1100'])
const VIRTIO_NET = pci('0000:00:03.0', '1af4', '1000', '020000', ['1af4', '0001'])
const ASSIGNED = '52:54:00:00:01:01'
const VIRTIO = '52:54:00:00:01:02'
const ENLISTING = '52:54:00:00:01:03'

let dir: string
let serve: RunningServe

before(async () => {
  assert.ok(
    existsSync(path.join(CLOUD_IMAGE, 'manifest.json')),
    'HWIMAGE_TEST_CLOUD_IMAGE_DIR names the cloud test image (make test)',
  )
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hwimage-serve-preflight-'))
  const file = path.join(dir, 'serve.yaml')
  await fsp.writeFile(
    file,
    `listen: { host: 127.0.0.1, port: 0 }
public_url: http://10.0.2.2:8080
state_dir: ${path.join(dir, 'state')}
unknown_macs: enlist
images:
  cloud: ${CLOUD_IMAGE}
machines:
  ${ASSIGNED}: { name: ahci-node, image: cloud }
  ${VIRTIO}: { name: virtio-node, image: cloud }
`,
  )
  serve = await startServe(await loadServeConfig(file), { port: 0, host: '127.0.0.1' })
})
after(async () => {
  await serve?.close()
  if (dir) await fsp.rm(dir, { recursive: true, force: true })
})

const bearer = (t: string) => ({ authorization: `Bearer ${t}` })
const post = (p: string, body: unknown, headers: Record<string, string> = {}) =>
  rawRequest(serve.url, p, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  })
async function bootToken(mac: string): Promise<string> {
  const r = await rawRequest(serve.url, `/boot/ipxe?mac=${mac}`)
  return /hwimage\.token=(\S+)/.exec(r.body.toString())![1]!
}
const show = async (mac: string) =>
  json<{ machine: { state: string; error: { code: string; message: string } | null } }>(
    await rawRequest(serve.url, `/api/v1/machines/${mac}`),
  ).machine

test('an AHCI disk under the cloud image: the inventory is answered "stop", the machine failed with the device and flavor named', async () => {
  const token = await bootToken(ASSIGNED)
  const r = await post(
    `/api/v1/machines/${ASSIGNED}/inventory`,
    machine([AHCI], [{ dev: VIRTIO_NET, link: true }]),
    bearer(token),
  )
  assert.equal(r.status, 200, r.body.toString())
  const task = json<{ action: string; state: string }>(r)
  assert.deepEqual([task.action, task.state], ['stop', 'failed'])
  const m = await show(ASSIGNED)
  assert.equal(m.state, 'failed')
  assert.equal(m.error?.code, 'PREFLIGHT_REFUSED')
  assert.match(
    m.error!.message,
    /^Cannot install \/dev\/sda: the image's kernel \(cloud 6\.1\.\S+\) has no driver for 8086:2922/,
  )
  assert.match(m.error!.message, /at 0000:00:1f\.2: the disk controller has no driver/)
  const task2 = json<{ action: string }>(
    await rawRequest(serve.url, `/api/v1/machines/${ASSIGNED}/task`, { headers: bearer(token) }),
  )
  assert.equal(task2.action, 'stop')
})

test('a virtio disk under the same image passes: the task is install, the check an event', async () => {
  const token = await bootToken(VIRTIO)
  const r = await post(
    `/api/v1/machines/${VIRTIO}/inventory`,
    machine([VIRTIO_BLK], [{ dev: VIRTIO_NET, link: true }]),
    bearer(token),
  )
  assert.equal(json<{ action: string }>(r).action, 'install')
  const { events } = json<{ events: Array<{ kind: string; fields: Record<string, unknown> }> }>(
    await rawRequest(serve.url, `/api/v1/machines/${VIRTIO}`),
  )
  const check = events.find((e) => e.kind === 'preflight')
  assert.equal(check?.fields.ok, true)
  assert.equal(check?.fields.disk, '/dev/sda')
})

test('assigning the cloud image to an enlisted AHCI machine fails it at once; its task is "stop"', async () => {
  const { token } = json<{ token: string }>(await post('/api/v1/enlist', { mac: ENLISTING }))
  const inv = await post(
    `/api/v1/machines/${ENLISTING}/inventory`,
    machine([AHCI], [{ dev: VIRTIO_NET, link: true }]),
    bearer(token),
  )
  assert.equal(json<{ action: string }>(inv).action, 'wait')
  const a = await post(`/api/v1/machines/${ENLISTING}/assign`, { image: 'cloud' })
  assert.equal(a.status, 200, a.body.toString())
  assert.equal(json<{ machine: { state: string } }>(a).machine.state, 'failed')
  const m = await show(ENLISTING)
  assert.equal(m.error?.code, 'PREFLIGHT_REFUSED')
  assert.match(m.error!.message, /8086:2922/)
  const task = json<{ action: string }>(
    await rawRequest(serve.url, `/api/v1/machines/${ENLISTING}/task`, { headers: bearer(token) }),
  )
  assert.equal(task.action, 'stop')
})
