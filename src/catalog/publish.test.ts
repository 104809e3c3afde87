import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { HwimageError } from '../errors.js'
import { makeTestKey, type TestKey, withGnupgHome } from '../tools/gpg.fixture.js'
import { gpgvVerifyClearSigned, gpgvVerifyDetached } from '../tools/gpg.js'
import { makeBuildDir, type TestBuild, variantBuild } from './build-dir.fixture.js'
import { freeSerial, publish } from './publish.js'

let dir: string
let build: TestBuild
let key: TestKey
let n = 0

before(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hwimage-publish-'))
  ;[build, key] = await Promise.all([makeBuildDir(path.join(dir, 'build'), { qcow2: true }), makeTestKey()])
})
after(async () => {
  await key?.close()
  await fsp.rm(dir, { recursive: true, force: true })
})

const newCatalog = () => path.join(dir, `catalog-${++n}`)
const sha256 = async (p: string) =>
  createHash('sha256')
    .update(await fsp.readFile(p))
    .digest('hex')

/** Every file below a directory: relative path → size, mtime and digest. */
async function snapshot(top: string): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  const walk = async (d: string): Promise<void> => {
    for (const e of await fsp.readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = path.join(d, e.name)
      if (e.isDirectory()) await walk(p)
      else {
        const st = await fsp.stat(p)
        out.set(path.relative(top, p), `${st.size}:${st.mtimeMs}:${await sha256(p)}`)
      }
    }
  }
  await walk(top)
  return out
}

/**
 * The simplestreams JSON schemas' required fields (reference "Index jsonschema" and
 * "Product jsonschema"), and what doc/README says an item with a path carries, checked
 * without hwimage's own decoder.
 */
function checkAgainstSpec(index: any, products: any, productsPath: string): void {
  const rfc2822 = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}$/
  assert.equal(index.format, 'index:1.0')
  assert.match(index.updated, rfc2822)
  assert.equal(typeof index.index, 'object')
  const entries = Object.entries(index.index) as [string, any][]
  assert.equal(entries.length, 1)
  const [contentId, entry] = entries[0]!
  assert.equal(entry.path, productsPath)
  assert.equal(entry.format, 'products:1.0')
  assert.ok(['image-ids', 'image-downloads'].includes(entry.datatype))
  assert.match(entry.updated, rfc2822)
  assert.deepEqual(entry.products, Object.keys(products.products))

  assert.equal(products.format, 'products:1.0')
  assert.equal(products.content_id, contentId)
  assert.equal(products.datatype, 'image-ids')
  assert.match(products.updated, rfc2822)
  for (const [name, product] of Object.entries(products.products) as [string, any][]) {
    assert.match(name, /^org\.hwimage:debian:12:amd64:[a-z]+$/)
    for (const [serial, version] of Object.entries(product.versions) as [string, any][]) {
      assert.match(serial, /^\d{8}(\.\d+)?$/)
      for (const item of Object.values(version.items) as any[]) {
        assert.equal(typeof item.ftype, 'string')
        assert.ok(!item.path.startsWith('/') && !item.path.split('/').includes('..'), item.path)
        assert.match(item.sha256, /^[0-9a-f]{64}$/)
        assert.ok(Number.isInteger(item.size) && item.size >= 0)
      }
    }
  }
}

const readJson = async (p: string) => JSON.parse(await fsp.readFile(p, 'utf8'))

test('publish() writes index:1.0 and products:1.0 as simplestreams specifies, with the build files by serial', async () => {
  const catalog = newCatalog()
  const r = await publish({ builds: [build.dir], catalog, now: new Date('2026-12-02T12:00:00Z') })
  assert.deepEqual(r.builds, [
    { build: build.dir, product: 'org.hwimage:debian:12:amd64:server', serial: '20261202', status: 'added' },
  ])
  assert.equal(r.changed, true)
  const index = await readJson(path.join(catalog, 'streams/v1/index.json'))
  const products = await readJson(path.join(catalog, 'streams/v1/org.hwimage:images.json'))
  checkAgainstSpec(index, products, 'streams/v1/org.hwimage:images.json')
  assert.equal(index.updated, 'Wed, 02 Dec 2026 12:00:00 +0000')

  const product = products.products['org.hwimage:debian:12:amd64:server']
  assert.equal(product.aliases, 'bookworm/server,debian/12/server,12/server')
  assert.equal(product.kflavor, 'server')
  const v = product.versions['20261202']
  // The bare-metal fields, from the manifest.
  assert.equal(v.boot_modes, 'bios,uefi,uefi-secureboot')
  assert.equal(v.logical_sector_size, 512)
  assert.equal(v.kernel_version, '6.1.0-57-amd64')
  assert.equal(v.kernel_footprint_bytes, 37_934_027)
  assert.equal(v.first_boot_contract, 'hwimage-seed/1')
  assert.equal(v.packages_count, Object.keys(build.manifest.packages).length)
  assert.equal(v.image_bytes, build.fx.size)
  assert.equal(v.mapped_bytes, build.manifest.image.mappedBytes)
  assert.equal(v.compressed_bytes, (await fsp.stat(build.fx.zst)).size)
  assert.deepEqual(Object.keys(v.items).sort(), ['bmap', 'manifest', 'qcow2', 'sha256sums', 'zst'])
  for (const [name, item] of Object.entries(v.items) as [string, any][]) {
    assert.ok(item.path.startsWith('images/debian/12/amd64/server/20261202/'), item.path)
    const placed = path.join(catalog, item.path)
    assert.equal(await sha256(placed), item.sha256, name)
    assert.equal((await fsp.stat(placed)).size, item.size, name)
  }
  assert.equal(await sha256(path.join(catalog, v.items.zst.path)), await sha256(build.fx.zst))
  // No temporary or lock file is left.
  assert.deepEqual(
    [...(await snapshot(catalog)).keys()].filter((p) => path.basename(p).startsWith('.')),
    [],
  )
})

test('publishing the same build twice is a no-op: not one file of the catalog is written', async () => {
  const catalog = newCatalog()
  await publish({ builds: [build.dir], catalog })
  const before = await snapshot(catalog)
  const r = await publish({ builds: [build.dir], catalog })
  assert.equal(r.changed, false)
  assert.equal(r.builds[0]!.status, 'unchanged')
  assert.equal(r.builds[0]!.serial, '20261202')
  assert.deepEqual(await snapshot(catalog), before)
})

test('a build directory whose SHA256SUMS does not verify is refused (CHECKSUM_MISMATCH) and nothing is written', async () => {
  for (const [what, corrupt] of [
    ['a byte of the .img.zst', async (b: TestBuild) => flipByte(b.fx.zst, 100)],
    ['a byte of the .img.bmap', async (b: TestBuild) => flipByte(b.fx.bmap, 10)],
    ['a file missing from SHA256SUMS', async (b: TestBuild) => dropLine(b.fx.sums, '.qcow2')],
  ] as const) {
    const bad = await variantBuild(build, path.join(dir, `bad-${++n}`), n)
    await corrupt(bad)
    const catalog = newCatalog()
    await publish({ builds: [build.dir], catalog })
    const before = await snapshot(catalog)
    await assert.rejects(publish({ builds: [bad.dir], catalog }), (e: unknown) => {
      assert.ok(e instanceof HwimageError, String(e))
      assert.equal(e.code, 'CHECKSUM_MISMATCH', what)
      assert.equal(e.exitCode, 2)
      return true
    })
    assert.deepEqual(await snapshot(catalog), before, what)
    // Refused before the catalog directory is even made.
    const fresh = newCatalog()
    await assert.rejects(publish({ builds: [bad.dir], catalog: fresh }))
    assert.equal(await fsp.stat(fresh).catch(() => undefined), undefined, what)
  }
})

test('another build of the same day becomes YYYYMMDD.1; a published file is never changed', async () => {
  const catalog = newCatalog()
  await publish({ builds: [build.dir], catalog })
  const first = await snapshot(catalog)
  const other = await variantBuild(build, path.join(dir, `v-${++n}`), n)
  const r = await publish({ builds: [other.dir], catalog })
  assert.equal(r.builds[0]!.serial, '20261202.1')
  const now = await snapshot(catalog)
  for (const [p, stamp] of first) if (p.startsWith('images/')) assert.equal(now.get(p), stamp, p)
  const products = await readJson(path.join(catalog, 'streams/v1/org.hwimage:images.json'))
  assert.deepEqual(Object.keys(products.products['org.hwimage:debian:12:amd64:server'].versions), [
    '20261202',
    '20261202.1',
  ])
  assert.equal(freeSerial('20261202', ['20261202', '20261202.1', '20261202.3']), '20261202.2')
})

test('--keep 1 prunes the older serials and their files, never a file the index names', async () => {
  const catalog = newCatalog()
  const older = await variantBuild(build, path.join(dir, `v-${++n}`), n, '2026-11-30T08:00:00Z')
  await publish({ builds: [older.dir], catalog })
  const r = await publish({ builds: [build.dir], catalog, keep: 1 })
  assert.deepEqual(
    r.pruned.map((p) => [p.product, p.serial, p.files.length]),
    [['org.hwimage:debian:12:amd64:server', '20261130', 5]],
  )
  const files = [...(await snapshot(catalog)).keys()]
  assert.equal(files.filter((f) => f.includes('/20261130/')).length, 0)
  assert.equal(
    await fsp.stat(path.join(catalog, 'images/debian/12/amd64/server/20261130')).catch(() => undefined),
    undefined,
  )
  const products = await readJson(path.join(catalog, 'streams/v1/org.hwimage:images.json'))
  assert.deepEqual(Object.keys(products.products['org.hwimage:debian:12:amd64:server'].versions), ['20261202'])
})

test('a reader in another process during publishes with --keep 1 never finds the index naming a missing file', async () => {
  const catalog = newCatalog()
  await publish({ builds: [build.dir], catalog })
  const stop = path.join(dir, `stop-${++n}`)
  // The reader: index → products → stat every item. A missing file counts only if the
  // products file, read again after the miss, still names it (a reader that read the old
  // products file just before a prune may race the delete; the index on disk must not).
  const reader = spawn(
    process.execPath,
    [
      '-e',
      `
      const fs = require('node:fs'), path = require('node:path')
      const [top, stop] = process.argv.slice(1)
      const names = () => {
        const index = JSON.parse(fs.readFileSync(path.join(top, 'streams/v1/index.json'), 'utf8'))
        const out = []
        for (const e of Object.values(index.index)) {
          const p = JSON.parse(fs.readFileSync(path.join(top, e.path), 'utf8'))
          for (const prod of Object.values(p.products))
            for (const v of Object.values(prod.versions)) for (const i of Object.values(v.items)) out.push(i.path)
        }
        return out
      }
      let reads = 0, misses = 0, violations = []
      const nap = new Int32Array(new SharedArrayBuffer(4))
      while (!fs.existsSync(stop)) {
        for (const f of names()) {
          if (fs.existsSync(path.join(top, f))) continue
          misses++
          if (names().includes(f) && !fs.existsSync(path.join(top, f))) violations.push(f)
        }
        reads++
        Atomics.wait(nap, 0, 0, 2)
      }
      process.stdout.write(JSON.stringify({ reads, misses, violations }))
    `,
      catalog,
      stop,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  let out = ''
  reader.stdout.on('data', (b: Buffer) => (out += b))
  const done = new Promise<void>((resolve) => reader.on('close', () => resolve()))
  await new Promise((r) => setTimeout(r, 100))
  let pruned = 0
  for (let i = 1; i <= 8; i++) {
    const next = await variantBuild(build, path.join(dir, `loop-${n}-${i}`), 1000 + i)
    pruned += (await publish({ builds: [next.dir], catalog, keep: 1 })).pruned.length
  }
  await fsp.writeFile(stop, '')
  await done
  const result = JSON.parse(out) as { reads: number; misses: number; violations: string[] }
  assert.equal(pruned, 8)
  assert.ok(result.reads > 20, `the reader read the catalog ${result.reads} times`)
  assert.deepEqual(result.violations, [])
})

test('--sign-key: every .json has a .sjson and a .json.gpg that gpgv verifies against the exported keyring', async () => {
  const catalog = newCatalog()
  const r = await withGnupgHome(key, () => publish({ builds: [build.dir], catalog, signKey: key.fingerprint }))
  assert.equal(r.signedBy, key.fingerprint)
  const keyring = path.join(catalog, 'streams/v1/keyring.gpg')
  assert.deepEqual(await fsp.readFile(keyring), await fsp.readFile(key.keyring))
  assert.match(await fsp.readFile(path.join(catalog, 'streams/v1/keyring.asc'), 'utf8'), /BEGIN PGP PUBLIC KEY BLOCK/)
  for (const base of ['streams/v1/index', 'streams/v1/org.hwimage:images']) {
    const json = path.join(catalog, `${base}.json`)
    const signed = await gpgvVerifyClearSigned(
      await fsp.readFile(`${path.join(catalog, base)}.sjson`, 'utf8'),
      keyring,
      base,
    )
    assert.equal(signed.fingerprint, key.fingerprint)
    assert.equal((await gpgvVerifyDetached(`${json}.gpg`, json, keyring, base)).fingerprint, key.fingerprint)
    const plain = JSON.parse(await fsp.readFile(json, 'utf8'))
    const payload = JSON.parse(signed.text)
    if (base.endsWith('index')) {
      // The signed index names the signed products file (simplestreams' make_signed_content_paths()).
      assert.equal(payload.index['org.hwimage:images'].path, 'streams/v1/org.hwimage:images.sjson')
      assert.equal(plain.index['org.hwimage:images'].path, 'streams/v1/org.hwimage:images.json')
    } else assert.deepEqual(payload, plain)
  }
})

test('a signed catalog is not republished unsigned, and an unknown signing key is refused before any write', async () => {
  const catalog = newCatalog()
  await withGnupgHome(key, () => publish({ builds: [build.dir], catalog, signKey: key.fingerprint }))
  const before = await snapshot(catalog)
  const other = await variantBuild(build, path.join(dir, `v-${++n}`), n)
  await assert.rejects(publish({ builds: [other.dir], catalog }), (e: unknown) => {
    assert.ok(e instanceof HwimageError && e.code === 'USAGE', String(e))
    return true
  })
  await assert.rejects(
    withGnupgHome(key, () => publish({ builds: [other.dir], catalog, signKey: 'nobody@nowhere.invalid' })),
    (e: unknown) => {
      assert.ok(e instanceof HwimageError && e.code === 'NOT_FOUND', String(e))
      return true
    },
  )
  assert.deepEqual(await snapshot(catalog), before)
})

async function flipByte(file: string, at: number): Promise<void> {
  const fh = await fsp.open(file, 'r+')
  try {
    const b = Buffer.alloc(1)
    await fh.read(b, 0, 1, at)
    b[0] = b[0]! ^ 0xff
    await fh.write(b, 0, 1, at)
  } finally {
    await fh.close()
  }
}

async function dropLine(file: string, containing: string): Promise<void> {
  const lines = (await fsp.readFile(file, 'utf8')).split('\n')
  await fsp.writeFile(file, lines.filter((l) => !l.includes(containing)).join('\n'))
}
