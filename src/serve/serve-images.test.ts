// serve with `catalog:` — a signed catalog published by `hwimage publish` from fixture builds
// (two serials of one product), real gpg keys, a real serve on loopback.

import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { makeBuildDir, type TestBuild, variantBuild } from '../catalog/build-dir.fixture.js'
import { publish } from '../catalog/publish.js'
import { HwimageError } from '../errors.js'
import { makeTestKey, type TestKey, withGnupgHome } from '../tools/gpg.fixture.js'
import { loadServeConfig, parseServeConfig } from './config.js'
import { deployTask } from './deploy-task.js'
import { json, rawRequest, writeConfig } from './serve.fixture.js'
import { type RunningServe, startServe } from './server.js'

let dir: string
let key: TestKey
let build: TestBuild
let catalog: string
let serve: RunningServe
const PRODUCT = 'org.hwimage:debian:12:amd64:server'
const MAC = '52:54:00:aa:bb:01'

before(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hwimage-serve-catalog-'))
  ;[build, key] = await Promise.all([
    makeBuildDir(path.join(dir, 'b1'), { date: '2026-12-01T10:00:00.000Z' }),
    makeTestKey(),
  ])
  catalog = path.join(dir, 'catalog')
  await withGnupgHome(key, () => publish({ builds: [build.dir], catalog, signKey: key.fingerprint }))
  const file = await writeConfig(
    dir,
    build.dir,
    `catalog:\n  dir: ${catalog}\n  keyring: ${key.keyring}\nmachines:\n  "${MAC}":\n    image: bookworm/server\n`,
  )
  serve = await startServe(await loadServeConfig(file), { port: 0, host: '127.0.0.1' })
})
after(async () => {
  await serve?.close()
  await key?.close()
  await fsp.rm(dir, { recursive: true, force: true })
})

test('the config names the catalog with a keyring or insecure: true; neither, both, or a missing directory is CONFIG_INVALID', () => {
  const base = `public_url: http://10.0.2.2:8080\nstate_dir: ${dir}/s\n`
  const bad = (extra: string, re: RegExp) =>
    assert.throws(
      () => parseServeConfig(base + extra, 'c.yaml', dir),
      (e) => e instanceof HwimageError && e.code === 'CONFIG_INVALID' && re.test(e.message),
    )
  bad(`catalog:\n  dir: ${catalog}\n`, /field "catalog.keyring": missing/)
  bad(`catalog:\n  dir: ${catalog}\n  keyring: ${key.keyring}\n  insecure: true\n`, /not both/)
  bad(`catalog:\n  dir: ${dir}/nope\n  insecure: true\n`, /field "catalog.dir": .* is not a directory/)
  bad(`catalog:\n  dir: ${catalog}\n  keyring: ${dir}/nokey.gpg\n`, /field "catalog.keyring": .* is not a file/)
  const ok = parseServeConfig(`${base}catalog:\n  dir: ${catalog}\n  insecure: true\n`, 'c.yaml', dir)
  assert.deepEqual(ok.catalog, { dir: catalog, insecure: true })
})

test('GET /api/v1/images lists the catalog version beside the config image, with its product, serial and the signer', async () => {
  const doc = json(await rawRequest(serve.url, '/api/v1/images')) as {
    images: {
      name: string
      file: string
      url: string
      catalog?: { product: string; serial: string; latest: boolean }
    }[]
    catalog: { signedBy: string | null; products: { name: string; aliases: string[]; serials: string[] }[] }
  }
  assert.deepEqual(
    doc.images.map((i) => i.name),
    ['default', `${PRODUCT}@20261201`],
  )
  const v = doc.images[1]!
  assert.deepEqual(v.catalog, {
    product: PRODUCT,
    serial: '20261201',
    aliases: ['bookworm/server', 'debian/12/server', '12/server'],
    latest: true,
  })
  assert.equal(doc.catalog.signedBy, key.fingerprint)
  assert.deepEqual(doc.catalog.products, [
    { name: PRODUCT, aliases: ['bookworm/server', 'debian/12/server', '12/server'], serials: ['20261201'] },
  ])
  // Its files come from the catalog's version directory through the file route.
  const r = await rawRequest(serve.url, new URL(v.url).pathname)
  assert.equal(r.status, 200)
  assert.deepEqual(r.body, await fsp.readFile(build.fx.zst))
})

test('a configured machine named by alias is pinned to the serial; a new serial published later is offered without a restart, and an assignment by alias pins the newest', async () => {
  const m = serve.store.get(MAC)!
  assert.equal(m.image, `${PRODUCT}@20261201`)
  const b2 = await variantBuild(build, path.join(dir, 'b2'), 2, '2026-12-02T10:00:00.000Z')
  await withGnupgHome(key, () => publish({ builds: [b2.dir], catalog, signKey: key.fingerprint }))
  const doc = json(await rawRequest(serve.url, '/api/v1/images')) as { images: { name: string }[] }
  assert.deepEqual(
    doc.images.map((i) => i.name),
    ['default', `${PRODUCT}@20261202`, `${PRODUCT}@20261201`],
  )
  assert.equal(serve.store.get(MAC)!.image, `${PRODUCT}@20261201`, 'the configured machine keeps its serial')

  const assign = (image: string) =>
    rawRequest(serve.url, '/api/v1/machines/52:54:00:aa:bb:02/assign', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ image }),
    })
  const a = json(await assign('bookworm/server')) as { machine: { image: string } }
  assert.equal(a.machine.image, `${PRODUCT}@20261202`)
  const b = json(await assign('12/server@20261201')) as { machine: { image: string } }
  assert.equal(b.machine.image, `${PRODUCT}@20261201`)
  const none = await assign('trixie/server')
  assert.equal(none.status, 400)
  assert.match(
    (json(none) as { error: { message: string } }).error.message,
    /no image "trixie\/server" \(known: default, org\.hwimage/,
  )

  // The deploy task names the version's files in serve's URL space.
  const task = deployTask(
    { ...serve.store.get('52:54:00:aa:bb:02')!, state: 'deploying' },
    {
      config: { publicUrl: 'http://10.0.2.2:8080' },
      images: {
        get: (n: string) => (n === `${PRODUCT}@20261201` ? { name: n, dir: '/x', file: 'f.img.zst' } : undefined),
      },
    },
  )
  assert.equal(task.action, 'install')
  if (task.action === 'install')
    assert.equal(task.image.url, `http://10.0.2.2:8080/images/${encodeURIComponent(`${PRODUCT}@20261201`)}/f.img.zst`)
})

test('a version whose SHA256SUMS is not the one the signed catalog lists is not offered, and naming it says why', async () => {
  const dir2 = await fsp.mkdtemp(path.join(os.tmpdir(), 'hwimage-serve-catalog-bad-'))
  let s2: RunningServe | undefined
  try {
    const cat2 = path.join(dir2, 'catalog')
    await withGnupgHome(key, () => publish({ builds: [build.dir], catalog: cat2, signKey: key.fingerprint }))
    const sums = path.join(cat2, 'images/debian/12/amd64/server/20261201/SHA256SUMS')
    await fsp.appendFile(sums, `${'0'.repeat(64)}  extra\n`)
    const file = await writeConfig(dir2, build.dir, `catalog:\n  dir: ${cat2}\n  keyring: ${key.keyring}\n`)
    s2 = await startServe(await loadServeConfig(file), { port: 0, host: '127.0.0.1' })
    const doc = json(await rawRequest(s2.url, '/api/v1/images')) as {
      images: { name: string }[]
      catalog: { refused: { image: string; reason: string }[] }
    }
    assert.deepEqual(
      doc.images.map((i) => i.name),
      ['default'],
    )
    assert.equal(doc.catalog.refused[0]?.image, `${PRODUCT}@20261201`)
    assert.match(doc.catalog.refused[0]!.reason, /SHA256SUMS has SHA-256 \w+, the catalog says/)
    const r = await rawRequest(s2.url, '/api/v1/machines/52:54:00:aa:bb:03/assign', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ image: 'bookworm/server' }),
    })
    assert.equal(r.status, 400)
    assert.match(
      (json(r) as { error: { message: string } }).error.message,
      /Cannot offer .*@20261201 from the catalog: .*SHA-256/,
    )
  } finally {
    await s2?.close()
    await fsp.rm(dir2, { recursive: true, force: true })
  }
})

test('a catalog signed by another key stops serve at start with SIGNATURE_INVALID', async () => {
  const other = await makeTestKey('other signer')
  const dir3 = await fsp.mkdtemp(path.join(os.tmpdir(), 'hwimage-serve-catalog-key-'))
  try {
    const file = await writeConfig(dir3, build.dir, `catalog:\n  dir: ${catalog}\n  keyring: ${other.keyring}\n`)
    await assert.rejects(
      startServe(await loadServeConfig(file), { port: 0, host: '127.0.0.1' }),
      (e) => e instanceof HwimageError && e.code === 'SIGNATURE_INVALID',
    )
  } finally {
    await other.close()
    await fsp.rm(dir3, { recursive: true, force: true })
  }
})
