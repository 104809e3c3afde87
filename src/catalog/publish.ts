// `hwimage publish`: build directories into a simplestreams v1 catalog (simplestreams.ts)
// that stock simplestreams tools, MAAS and hwimage's own installer read.
//
// Order of work:
//  1. verify: every build directory against its SHA256SUMS (build-dir.ts); the signing key
//     is in GNUPGHOME. Nothing is written before both hold;
//  2. plan: each build is a version of its product (product.ts). A build whose image is
//     already a version is unchanged; a new one gets the serial YYYYMMDD of its build date,
//     or YYYYMMDD.N when that serial is taken. --keep N marks all but the newest N versions
//     of each product for pruning. A plan with nothing to add or prune writes nothing;
//  3. place the new versions' files under images/…/SERIAL/ (each copied to a temporary
//     name, its digest checked, then renamed). A published file is never changed: a
//     different file where one is to go stops the publish;
//  4. write the products file, then the index, each as .json, .json.gpg and .sjson under
//     temporary names, renamed into place (rename(2) is atomic): at every moment the
//     files on disk name only files that exist;
//  5. delete the pruned versions' files, only now that no index names them.
//
// One publish at a time: a lock file at the catalog's top (.hwimage-publish.lock).

import { randomBytes } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { sha256OfFile } from '../build/outputs.js'
import { DeviceError, InputError, UsageError } from '../errors.js'
import { gpgClearSign, gpgDetachSign, gpgExportKey, gpgSecretKeyFingerprint } from '../tools/gpg.js'
import { type BuildDir, readBuildDir } from './build-dir.js'
import {
  CONTENT_ID,
  DATATYPE,
  PRODUCTS_PATH,
  productFields,
  productName,
  serialDay,
  versionDir,
  versionFields,
} from './product.js'
import {
  compareSerials,
  decodeProducts,
  encodeDoc,
  INDEX_FORMAT,
  INDEX_PATH,
  type IndexDoc,
  type Item,
  PRODUCTS_FORMAT,
  type ProductsDoc,
  rfc2822,
  SIGNED_INDEX_PATH,
  signedIndex,
  signedPath,
  type Version,
} from './simplestreams.js'

/** The public key beside the index: binary (gpgv --keyring, MAAS's keyring_filename) and armored. */
export const KEYRING_PATH = 'streams/v1/keyring.gpg'
export const ARMORED_KEY_PATH = 'streams/v1/keyring.asc'
const LOCK = '.hwimage-publish.lock'

/** What to publish where. */
export interface PublishOptions {
  builds: string[]
  catalog: string
  /** A GnuPG key id, fingerprint or user id with its secret key in GNUPGHOME. */
  signKey?: string
  /** Keep only the newest N versions of each product. */
  keep?: number
  /** The time written as `updated` (default: now). */
  now?: Date
  onEvent?: (name: string, fields: Record<string, unknown>) => void
}

/** One build's outcome. */
export interface PublishedBuild {
  build: string
  product: string
  serial: string
  status: 'added' | 'unchanged'
}

/** What a publish did. */
export interface PublishReport {
  catalog: string
  builds: PublishedBuild[]
  pruned: { product: string; serial: string; files: string[] }[]
  /** False when the catalog already held everything: nothing was written. */
  changed: boolean
  /** The signing key's fingerprint, when signed. */
  signedBy?: string
}

/** Publishes build directories into a catalog directory; see the order of work above. */
export async function publish(opts: PublishOptions): Promise<PublishReport> {
  if (opts.builds.length === 0) throw new UsageError('Cannot publish: no build directory given')
  if (opts.keep !== undefined && (!Number.isInteger(opts.keep) || opts.keep < 1))
    throw new UsageError(`Cannot publish: --keep ${opts.keep} is not a positive whole number`)
  const catalog = path.resolve(opts.catalog)
  const emit = opts.onEvent ?? (() => {})

  // 1. verify
  const builds: BuildDir[] = []
  for (const dir of opts.builds) {
    builds.push(await readBuildDir(dir))
    emit('verified', { build: dir })
  }
  const signedBy = opts.signKey ? await signingKey(opts.signKey) : undefined

  await fsp.mkdir(catalog, { recursive: true })
  const lock = await takeLock(catalog)
  try {
    const current = await loadProducts(catalog)
    if (!opts.signKey && (await exists(path.join(catalog, SIGNED_INDEX_PATH))))
      throw new UsageError(`Cannot publish into ${catalog} unsigned: the catalog is signed`, {
        hint: 'pass --sign-key KEY: an unsigned publish would leave its .sjson files describing the old catalog',
      })

    // 2. plan
    const doc: ProductsDoc = structuredClone(current) ?? emptyProducts()
    const added: { build: BuildDir; product: string; serial: string; version: Version }[] = []
    const outcome: PublishedBuild[] = []
    for (const b of builds) {
      const name = productName(b.manifest)
      const product = (doc.products[name] ??= { ...productFields(b.manifest), versions: {} })
      const zst = b.files.find((f) => f.item === 'zst')!
      const same = Object.entries(product.versions).find(([, v]) => v.items.zst?.sha256 === zst.sha256)
      if (same) {
        outcome.push({ build: b.dir, product: name, serial: same[0], status: 'unchanged' })
        continue
      }
      const serial = freeSerial(serialDay(b.manifest), Object.keys(product.versions))
      const dir = versionDir(b.manifest, serial)
      const items: Record<string, Item> = {}
      for (const f of b.files)
        items[f.item] = { ftype: f.ftype, path: `${dir}/${f.name}`, sha256: f.sha256, size: f.size }
      const version: Version = { ...versionFields(b), items }
      product.versions[serial] = version
      added.push({ build: b, product: name, serial, version })
      outcome.push({ build: b.dir, product: name, serial, status: 'added' })
    }
    const pruned: PublishReport['pruned'] = []
    if (opts.keep !== undefined) {
      for (const [name, product] of Object.entries(doc.products)) {
        const serials = Object.keys(product.versions).sort(compareSerials)
        for (const serial of serials.slice(0, Math.max(0, serials.length - opts.keep))) {
          const files = Object.values(product.versions[serial]!.items).map((i) => i.path)
          delete product.versions[serial]
          pruned.push({ product: name, serial, files })
        }
      }
    }
    const signingMissing = opts.signKey !== undefined && !(await exists(path.join(catalog, SIGNED_INDEX_PATH)))
    const report: PublishReport = {
      catalog,
      builds: outcome,
      pruned,
      changed: added.length > 0 || pruned.length > 0 || signingMissing,
      ...(signedBy ? { signedBy } : {}),
    }
    if (!report.changed) return report

    // 3. place the new files
    for (const a of added) {
      for (const f of a.build.files) {
        const item = a.version.items[f.item]!
        await placeFile(f.path, path.join(catalog, item.path), item.sha256)
      }
      emit('placed', { product: a.product, serial: a.serial })
    }

    // 4. products, then the index
    const updated = rfc2822(opts.now ?? new Date())
    const products = sortedProducts({ ...doc, updated })
    const index: IndexDoc = {
      format: INDEX_FORMAT,
      updated,
      index: {
        [CONTENT_ID]: {
          path: PRODUCTS_PATH,
          format: PRODUCTS_FORMAT,
          datatype: DATATYPE,
          updated,
          products: Object.keys(products.products),
        },
      },
    }
    const first: Staged[] = []
    const last: Staged[] = []
    try {
      await stage(first, catalog, PRODUCTS_PATH, encodeDoc(products), opts.signKey)
      if (opts.signKey) {
        first.push(await stageBytes(catalog, KEYRING_PATH, await gpgExportKey(opts.signKey)))
        first.push(await stageBytes(catalog, ARMORED_KEY_PATH, await gpgExportKey(opts.signKey, { armor: true })))
      }
      await stage(last, catalog, INDEX_PATH, encodeDoc(index), opts.signKey, encodeDoc(signedIndex(index)))
      for (const w of [...first, ...last]) await fsp.rename(w.temp, w.final)
    } finally {
      for (const w of [...first, ...last]) await fsp.rm(w.temp, { force: true })
    }
    emit('indexed', { products: Object.keys(products.products).length, updated })

    // 5. prune
    for (const p of pruned) {
      for (const f of p.files) await fsp.rm(path.join(catalog, f), { force: true })
      for (const f of p.files) await removeEmptyDirs(catalog, path.dirname(path.join(catalog, f)))
      emit('pruned', { product: p.product, serial: p.serial })
    }
    return report
  } finally {
    await lock.release()
  }
}

/** The first serial of a day not yet used: YYYYMMDD, then YYYYMMDD.1, .2 … */
export function freeSerial(day: string, taken: readonly string[]): string {
  if (!taken.includes(day)) return day
  for (let n = 1; ; n++) if (!taken.includes(`${day}.${n}`)) return `${day}.${n}`
}

function emptyProducts(): ProductsDoc {
  return { format: PRODUCTS_FORMAT, content_id: CONTENT_ID, datatype: DATATYPE, updated: '', products: {} }
}

/** Products by name and versions by serial, so that the file reads (and diffs) in order. */
function sortedProducts(doc: ProductsDoc): ProductsDoc {
  const products: ProductsDoc['products'] = {}
  for (const name of Object.keys(doc.products).sort()) {
    const p = doc.products[name]!
    const versions: Record<string, Version> = {}
    for (const s of Object.keys(p.versions).sort(compareSerials)) versions[s] = p.versions[s]!
    if (Object.keys(versions).length) products[name] = { ...p, versions }
  }
  return {
    format: PRODUCTS_FORMAT,
    content_id: doc.content_id,
    datatype: doc.datatype,
    updated: doc.updated,
    products,
  }
}

async function loadProducts(catalog: string): Promise<ProductsDoc | undefined> {
  const p = path.join(catalog, PRODUCTS_PATH)
  const text = await fsp.readFile(p, 'utf8').catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined
    throw e
  })
  if (text === undefined) {
    if (await exists(path.join(catalog, INDEX_PATH)))
      throw new InputError('FORMAT_CATALOG', `Cannot publish into ${catalog}: its index names no ${PRODUCTS_PATH}`, {
        hint: 'publish into an empty directory or a catalog hwimage wrote',
      })
    return undefined
  }
  const doc = decodeProducts(text, p)
  if (doc.content_id !== CONTENT_ID)
    throw new InputError('FORMAT_CATALOG', `Cannot publish into ${catalog}: content_id is "${doc.content_id}"`, {
      hint: `hwimage's catalogs hold "${CONTENT_ID}"`,
    })
  return doc
}

async function signingKey(key: string): Promise<string> {
  const fpr = await gpgSecretKeyFingerprint(key)
  if (!fpr)
    throw new InputError('NOT_FOUND', `Cannot sign with key "${key}": no secret key of that name in GnuPG's keyring`, {
      hint: 'list the keys with `gpg --list-secret-keys` (GNUPGHOME selects the keyring); docs/catalog.md shows how to make one',
    })
  return fpr
}

/** Copies a build file into the catalog under a temporary name, checks its digest, renames it. */
async function placeFile(from: string, to: string, sha256: string): Promise<void> {
  if (await exists(to)) {
    if ((await sha256OfFile(to)) === sha256) return
    throw new InputError(
      'CHECKSUM_MISMATCH',
      `Cannot publish ${from}: a different file is already published as ${to}`,
      {
        hint: 'a published file is never changed: remove the stray file if no index names it',
      },
    )
  }
  await fsp.mkdir(path.dirname(to), { recursive: true })
  const temp = tempName(to)
  try {
    await fsp.copyFile(from, temp)
    const got = await sha256OfFile(temp)
    if (got !== sha256)
      throw new InputError('CHECKSUM_MISMATCH', `Cannot publish ${from}: it changed while being copied (now ${got})`, {
        hint: 'do not change a build directory while it is published',
      })
    await fsp.rename(temp, to)
  } finally {
    await fsp.rm(temp, { force: true })
  }
}

interface Staged {
  temp: string
  final: string
}

/** FILE.json (and, signed, FILE.json.gpg and FILE.sjson) under temporary names beside their final ones. */
async function stage(
  into: Staged[],
  catalog: string,
  rel: string,
  json: string,
  signKey: string | undefined,
  signedJson = json,
): Promise<void> {
  const plainJson = await stageBytes(catalog, rel, Buffer.from(json))
  into.push(plainJson)
  if (!signKey) return
  // The detached signature is of FILE.json's bytes; the clear-signed copy carries signedJson
  // (for the index: its products paths naming the .sjson files).
  const gpg = { temp: tempName(`${plainJson.final}.gpg`), final: `${plainJson.final}.gpg` }
  into.push(gpg)
  await gpgDetachSign({ key: signKey, input: plainJson.temp, output: gpg.temp })
  const sjsonFinal = path.join(catalog, signedPath(rel))
  const sjson = { temp: tempName(sjsonFinal), final: sjsonFinal }
  into.push(sjson)
  const plain = tempName(`${sjsonFinal}.in`)
  try {
    await fsp.writeFile(plain, signedJson)
    await gpgClearSign({ key: signKey, input: plain, output: sjson.temp })
  } finally {
    await fsp.rm(plain, { force: true })
  }
}

async function stageBytes(catalog: string, rel: string, bytes: Uint8Array): Promise<Staged> {
  const final = path.join(catalog, rel)
  await fsp.mkdir(path.dirname(final), { recursive: true })
  const temp = tempName(final)
  await fsp.writeFile(temp, bytes)
  return { temp, final }
}

const tempName = (p: string): string =>
  path.join(path.dirname(p), `.${path.basename(p)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`)

async function removeEmptyDirs(catalog: string, dir: string): Promise<void> {
  for (let d = dir; d.startsWith(catalog + path.sep); d = path.dirname(d)) {
    try {
      await fsp.rmdir(d)
    } catch {
      return // not empty (or gone): stop climbing
    }
  }
}

async function takeLock(catalog: string): Promise<{ release(): Promise<void> }> {
  const p = path.join(catalog, LOCK)
  try {
    const fh = await fsp.open(p, 'wx')
    await fh.writeFile(`${process.pid}\n`)
    await fh.close()
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e
    throw new DeviceError('DEVICE_BUSY', `Cannot publish into ${catalog}: another publish holds ${p}`, {
      hint: 'wait for it; if no publish is running (one was killed), remove the lock file',
    })
  }
  return { release: () => fsp.rm(p, { force: true }) }
}

async function exists(p: string): Promise<boolean> {
  return fsp.stat(p).then(
    () => true,
    () => false,
  )
}
