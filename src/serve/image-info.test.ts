import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import type { Manifest } from '../build/manifest.js'
import { GUID_BIOS_BOOT, GUID_ESP } from '../disk/guid.js'
import { makeFixtureImage } from '../install/image.fixture.js'
import { loadServeConfig } from './config.js'
import { imageInfo, MAX_MANIFEST_BYTES, summarizeManifest } from './image-info.js'
import { json, rawRequest, writeConfig } from './serve.fixture.js'
import { startServe, type RunningServe } from './server.js'

let dir: string
let imageDir: string
let serve: RunningServe

/** A manifest as src/build/manifest.ts writes one, small. */
function manifest(over: Partial<Manifest> = {}): Manifest {
  const part = (number: number, name: string, typeGuid: string) => ({
    number,
    name,
    typeGuid,
    uniqueGuid: '00000000-0000-0000-0000-00000000000' + number.toString(16),
    firstLba: '2048',
    lastLba: '4095',
    filesystem: 'none',
    uuid: '',
    label: '',
  })
  return {
    hwimage: { manifestVersion: 1, version: '0.1.0' },
    name: 'debian-12-server-amd64',
    spec: { release: 'bookworm', architecture: 'amd64', packages: ['htop'] } as unknown as Manifest['spec'],
    packages: { 'base-files': '12.4', 'shim-signed': '1.44', htop: '3.2.2-2' },
    kernel: {
      flavor: 'server',
      version: '6.1.0-57-amd64',
      footprintBytes: 37e6,
      initrdBytes: 23e6,
      modules: ['ahci', 'nvme'],
    },
    partitions: [part(14, 'bios', GUID_BIOS_BOOT), part(15, 'esp', GUID_ESP.toLowerCase())],
    image: { file: 'fixture.img', sizeBytes: 2 ** 31, mappedBytes: 591e6, sectorSize: 512, diskGuid: 'X' },
    files: [],
    build: { seconds: 346.4, date: '2026-12-02T13:39:13.522Z', host: 'vm' },
    ...over,
  }
}

before(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hwimage-image-info-'))
  imageDir = path.join(dir, 'out')
  await fsp.mkdir(imageDir)
  await makeFixtureImage(imageDir, { formats: ['zst'] })
  await fsp.writeFile(path.join(imageDir, 'manifest.json'), JSON.stringify(manifest()))
  const file = await writeConfig(dir, imageDir)
  serve = await startServe(await loadServeConfig(file), { port: 0, host: '127.0.0.1' })
})
after(async () => {
  await serve?.close()
  await fsp.rm(dir, { recursive: true, force: true })
})

test("summarizeManifest(): boot modes from the partitions and shim-signed, the kernel, sizes, the spec's packages; the package list only when asked", () => {
  const s = summarizeManifest(manifest())
  assert.deepEqual(s.bootModes, ['bios', 'uefi', 'uefi-secureboot'])
  assert.deepEqual(s.kernel, {
    flavor: 'server',
    version: '6.1.0-57-amd64',
    footprintBytes: 37e6,
    initrdBytes: 23e6,
    modules: 2,
  })
  assert.deepEqual(s.image, { sizeBytes: 2 ** 31, mappedBytes: 591e6, sectorSize: 512 })
  assert.deepEqual(s.specPackages, ['htop'])
  assert.equal(s.packageCount, 3)
  assert.equal(s.packages, undefined)
  assert.equal(summarizeManifest(manifest(), { packages: true }).packages?.htop, '3.2.2-2')
  const noShim = manifest({ packages: { 'base-files': '12.4' } })
  assert.deepEqual(summarizeManifest(noShim).bootModes, ['bios', 'uefi'])
})

test('imageInfo(): no manifest, a corrupt one, one over the size limit and one of another kind are said, not thrown; the files are still listed', async () => {
  const other = path.join(dir, 'other')
  await fsp.mkdir(other)
  await fsp.writeFile(path.join(other, 'x.img.zst'), 'zst')
  const info = () => imageInfo({ name: 'other', dir: other, file: 'x.img.zst' }, 'http://h')
  const none = await info()
  assert.equal(none.manifest, null)
  assert.match(none.manifestError!, /has none/)
  assert.deepEqual(none.files, [{ name: 'x.img.zst', sizeBytes: 3, url: 'http://h/images/other/x.img.zst' }])
  const m = JSON.stringify(manifest())
  await fsp.writeFile(path.join(other, 'manifest.json'), m.slice(0, 40) + '\0' + m.slice(41))
  assert.match((await info()).manifestError!, /^Cannot read manifest\.json: .*JSON/)
  await fsp.writeFile(path.join(other, 'manifest.json'), JSON.stringify({ name: 'not a build' }))
  assert.match((await info()).manifestError!, /not an hwimage build manifest/)
  const fh = await fsp.open(path.join(other, 'manifest.json'), 'w')
  await fh.truncate(MAX_MANIFEST_BYTES + 1)
  await fh.close()
  assert.match(
    (await info()).manifestError!,
    new RegExp(`${MAX_MANIFEST_BYTES + 1} bytes, the limit is ${MAX_MANIFEST_BYTES}`),
  )
})

test('GET /api/v1/images carries each manifest summary; GET /api/v1/images/NAME the packages; an unknown or bad name is 404/400', async () => {
  const list = json<{ images: Array<{ name: string; manifest: { bootModes: string[]; packages?: unknown } }> }>(
    await rawRequest(serve.url, '/api/v1/images'),
  )
  assert.deepEqual(list.images[0]!.manifest.bootModes, ['bios', 'uefi', 'uefi-secureboot'])
  assert.equal(list.images[0]!.manifest.packages, undefined, 'the listing stays small')
  const one = json<{ image: { manifest: { packages: Record<string, string> } } }>(
    await rawRequest(serve.url, '/api/v1/images/default'),
  )
  assert.equal(one.image.manifest.packages['shim-signed'], '1.44')
  assert.equal((await rawRequest(serve.url, '/api/v1/images/nope')).status, 404)
  for (const p of ['/api/v1/images/%2e%2e', '/api/v1/images/..', '/api/v1/images/a%2fb'])
    assert.equal((await rawRequest(serve.url, p)).status, 400, p)
})

test('GET /api/v1/images/NAME/lab: null without a report, the grid of IMAGE_DIR/lab-report/report.json, 404 for an unknown image', async () => {
  assert.deepEqual(json(await rawRequest(serve.url, '/api/v1/images/default/lab')), { lab: null })
  await fsp.mkdir(path.join(imageDir, 'lab-report'))
  await fsp.copyFile(
    new URL('../../docs/lab/cloud/report.json', import.meta.url),
    path.join(imageDir, 'lab-report', 'report.json'),
  )
  const { lab } = json<{ lab: { nics: string[]; cells: Array<{ status: string }> } }>(
    await rawRequest(serve.url, '/api/v1/images/default/lab'),
  )
  assert.ok(lab.nics.includes('e1000'))
  assert.ok(lab.cells.some((c) => c.status === 'fail'))
  assert.equal((await rawRequest(serve.url, '/api/v1/images/nope/lab')).status, 404)
})
