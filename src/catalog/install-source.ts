// `hwimage install --catalog URL|DIR NAME[@SERIAL]`: what install() is given for a name.
// The catalog is read signed (read-catalog.ts) unless --insecure, the version resolved
// (resolve.ts), and its .img.zst item becomes the source with the SHA-256 the signed
// catalog gives. Before install() runs, so that a refusal writes nothing on the disk: the
// source's size is checked against the catalog's, and the bmap is fetched, checked against
// its catalog digest and handed to install() as a private file. install() then checks the
// source's digest as it streams (a mismatch fails with CHECKSUM_MISMATCH before the
// partition table is written; docs/install.md).

import { createHash } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { InputError, UsageError } from '../errors.js'
import { type Catalog, readCatalog, resolveCatalogPath } from './read-catalog.js'
import { type ResolvedVersion, resolveVersion } from './resolve.js'
import type { Item } from './simplestreams.js'

/** How to find and trust the image. */
export interface CatalogInstallOptions {
  catalog: string
  ref: string
  keyring?: string
  /** Use an unsigned catalog (or ignore its signatures): said on stderr by the caller. */
  insecure?: boolean
  signal?: AbortSignal
}

/** What install() needs, and what the catalog said. */
export interface CatalogInstallSource {
  source: string
  sha256: string
  size: number
  bmap?: string
  version: ResolvedVersion
  /** The signing key's fingerprint; undefined for an unverified (--insecure) catalog. */
  signedBy?: string
  /** Removes the private bmap copy. */
  close(): Promise<void>
}

/** Resolves a name in a catalog into an install source; refuses what does not verify. */
export async function catalogInstallSource(opts: CatalogInstallOptions): Promise<CatalogInstallSource> {
  if (!opts.keyring && !opts.insecure)
    throw new InputError('SIGNATURE_MISSING', `Cannot trust the catalog ${opts.catalog}: no --keyring given`, {
      hint: "pass --keyring FILE (the catalog's streams/v1/keyring.gpg, copied once and pinned), or --insecure to install from it unverified",
    })
  if (opts.keyring && opts.insecure) throw new UsageError('Cannot use both --keyring and --insecure')
  const cat: Catalog = await readCatalog(opts.catalog, {
    ...(opts.keyring ? { keyring: opts.keyring } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
  })
  const version = resolveVersion(cat, opts.ref)
  const image = version.items.zst
  if (!image)
    throw new InputError('NOT_FOUND', `Cannot install ${version.product}@${version.serial}: it has no img.zst item`, {
      hint: 'republish the build with `hwimage publish`',
    })
  const source = resolveCatalogPath(cat.location, image.path)
  await checkSize(source, image, cat.location.kind, opts.signal)

  let tmp: string | undefined
  let bmap: string | undefined
  const bmapItem = version.items.bmap
  if (bmapItem) {
    const bytes = await fetchBytes(resolveCatalogPath(cat.location, bmapItem.path), bmapItem.size, opts.signal)
    checkDigest(bytes, bmapItem, resolveCatalogPath(cat.location, bmapItem.path))
    tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'hwimage-catalog-'))
    bmap = path.join(tmp, path.posix.basename(bmapItem.path))
    await fsp.writeFile(bmap, bytes, { mode: 0o600 })
  }
  return {
    source,
    sha256: image.sha256,
    size: image.size,
    ...(bmap ? { bmap } : {}),
    version,
    ...(cat.signedBy ? { signedBy: cat.signedBy } : {}),
    close: async () => {
      if (tmp) await fsp.rm(tmp, { recursive: true, force: true })
    },
  }
}

async function checkSize(source: string, item: Item, kind: 'dir' | 'url', signal?: AbortSignal): Promise<void> {
  let size: number | undefined
  if (kind === 'dir')
    size = await fsp.stat(source).then(
      (s) => s.size,
      () => undefined,
    )
  else {
    const res = await fetch(source, { method: 'HEAD', ...(signal ? { signal } : {}) }).catch((e: unknown) => {
      throw new InputError('NOT_FOUND', `Cannot reach ${source}: ${(e as Error).message}`, { cause: e })
    })
    if (res.status === 404) size = undefined
    else {
      const len = res.headers.get('content-length')
      // A server that gives no length leaves the check to install(), which knows the digest.
      if (len === null) return
      size = Number(len)
    }
  }
  if (size === undefined)
    throw new InputError('NOT_FOUND', `Cannot install from the catalog: ${source} does not exist`, {
      hint: 'the catalog names a file the mirror does not have: mirror it again',
    })
  if (size !== item.size)
    throw new InputError(
      'CHECKSUM_MISMATCH',
      `Cannot install ${source}: it is ${size} bytes, the signed catalog says ${item.size}`,
      { hint: 'the file on the mirror is not the one published: mirror it again' },
    )
}

async function fetchBytes(where: string, max: number, signal?: AbortSignal): Promise<Buffer> {
  if (!/^https?:\/\//.test(where))
    return await fsp.readFile(where).catch((e: unknown) => {
      throw new InputError('NOT_FOUND', `Cannot read ${where}: ${(e as Error).message}`, { cause: e })
    })
  const res = await fetch(where, signal ? { signal } : {})
  if (res.status !== 200)
    throw new InputError('NOT_FOUND', `Cannot fetch ${where}: HTTP ${res.status}`, {
      hint: 'the catalog names a file the mirror does not have: mirror it again',
    })
  const bytes = Buffer.from(await res.arrayBuffer())
  if (bytes.length > max + 1)
    throw new InputError('CHECKSUM_MISMATCH', `Cannot use ${where}: larger than the catalog says (${max} bytes)`)
  return bytes
}

function checkDigest(bytes: Uint8Array, item: Item, where: string): void {
  const got = createHash('sha256').update(bytes).digest('hex')
  if (bytes.length !== item.size || got !== item.sha256)
    throw new InputError(
      'CHECKSUM_MISMATCH',
      `Cannot use ${where}: its SHA-256 is ${got} (${bytes.length} bytes), the signed catalog says ${item.sha256} (${item.size} bytes)`,
      { hint: 'the file on the mirror is not the one published: mirror it again' },
    )
}
