// Reading a simplestreams catalog from a directory or an http(s):// URL. With a keyring,
// only signed files are read: streams/v1/index.sjson, verified with gpgv, then each
// products file its (signed) index names, verified the same way; what is used is the text
// gpgv vouched for, never the unsigned copies. Without a keyring the .json files are read
// and the catalog is marked unverified: an install refuses that unless --insecure.

import { promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { InputError } from '../errors.js'
import { gpgDearmor, gpgvVerifyClearSigned } from '../tools/gpg.js'
import {
  decodeIndex,
  decodeProducts,
  INDEX_PATH,
  type IndexDoc,
  type ProductsDoc,
  SIGNED_INDEX_PATH,
  signedPath,
} from './simplestreams.js'

/** Where a catalog is: a directory, or a URL ending in "/". */
export interface CatalogLocation {
  kind: 'dir' | 'url'
  base: string
}

/** A catalog read (and, with a keyring, verified). */
export interface Catalog {
  location: CatalogLocation
  index: IndexDoc
  /** The products lists the index names, by content_id. */
  products: Map<string, ProductsDoc>
  /** The signing key's fingerprint when verified; undefined when read unsigned. */
  signedBy?: string
}

/** Options for reading a catalog. */
export interface ReadCatalogOptions {
  /** A keyring file (binary, or armored .asc) that the catalog must be signed by. */
  keyring?: string
  signal?: AbortSignal
}

/**
 * The catalog's top from what a user typed: a directory or URL, with or without a
 * trailing "streams/v1/index.json" or ".sjson" (simplestreams' path_from_mirror_url()).
 */
export function catalogLocation(spec: string): CatalogLocation {
  const top = spec.replace(/streams\/v1\/[^/]*\.s?json$/, '')
  if (/^https?:\/\//i.test(top)) return { kind: 'url', base: top.endsWith('/') ? top : `${top}/` }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(top))
    throw new InputError(
      'USAGE',
      `Cannot read the catalog "${spec}": only directories and http(s):// URLs are supported`,
    )
  return { kind: 'dir', base: path.resolve(top === '' ? '.' : top) }
}

/** Where a mirror-relative path is: a file path or a URL. */
export function resolveCatalogPath(loc: CatalogLocation, rel: string): string {
  return loc.kind === 'dir' ? path.join(loc.base, ...rel.split('/')) : new URL(rel, loc.base).href
}

/** Reads a catalog file's text; undefined when it does not exist. */
export async function readCatalogText(
  loc: CatalogLocation,
  rel: string,
  opts: { signal?: AbortSignal } = {},
): Promise<string | undefined> {
  const where = resolveCatalogPath(loc, rel)
  if (loc.kind === 'dir') {
    try {
      return await fsp.readFile(where, 'utf8')
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw new InputError('NOT_FOUND', `Cannot read ${where}: ${(e as Error).message}`, { cause: e })
    }
  }
  const { fetchText } = await import('../io/http-source.js')
  return await fetchText(where, { optional: true, maxBytes: 64 << 20, ...(opts.signal ? { signal: opts.signal } : {}) })
}

/** Reads the catalog; verified against `keyring` when one is given. */
export async function readCatalog(spec: string, opts: ReadCatalogOptions = {}): Promise<Catalog> {
  const location = catalogLocation(spec)
  const read = async (rel: string): Promise<string> => {
    const text = await readCatalogText(location, rel, opts)
    if (text === undefined)
      throw new InputError(
        'NOT_FOUND',
        `Cannot read the catalog ${spec}: ${resolveCatalogPath(location, rel)} does not exist`,
        {
          hint: opts.keyring
            ? 'a signed catalog has streams/v1/index.sjson: publish it with --sign-key, or pass --insecure to read it unsigned'
            : 'give the directory `hwimage publish --catalog` wrote, or its URL',
        },
      )
    return text
  }
  if (!opts.keyring) {
    const index = decodeIndex(await read(INDEX_PATH), resolveCatalogPath(location, INDEX_PATH))
    const products = new Map<string, ProductsDoc>()
    for (const [id, e] of Object.entries(index.index))
      products.set(id, checkContentId(decodeProducts(await read(e.path), resolveCatalogPath(location, e.path)), id))
    return { location, index, products }
  }

  const keyring = await usableKeyring(opts.keyring)
  try {
    const sIndex = await readCatalogText(location, SIGNED_INDEX_PATH, opts)
    if (sIndex === undefined)
      throw new InputError(
        'SIGNATURE_MISSING',
        `Cannot verify the catalog ${spec}: it is not signed (no ${SIGNED_INDEX_PATH})`,
        {
          hint: 'publish it with --sign-key KEY; to use it unverified, install with --insecure instead of --keyring (catalog list/show: leave out --keyring)',
        },
      )
    const where = resolveCatalogPath(location, SIGNED_INDEX_PATH)
    const v = await gpgvVerifyClearSigned(sIndex, keyring.path, where)
    const index = decodeIndex(v.text, where)
    const products = new Map<string, ProductsDoc>()
    for (const [id, e] of Object.entries(index.index)) {
      const rel = signedPath(e.path)
      const pWhere = resolveCatalogPath(location, rel)
      const pv = await gpgvVerifyClearSigned(await read(rel), keyring.path, pWhere)
      if (pv.fingerprint !== v.fingerprint)
        throw new InputError(
          'SIGNATURE_INVALID',
          `Cannot verify ${pWhere}: it is signed by ${pv.fingerprint}, the index by ${v.fingerprint}`,
          { hint: 'a catalog is signed by one key: republish it' },
        )
      products.set(id, checkContentId(decodeProducts(pv.text, pWhere), id))
    }
    return { location, index, products, signedBy: v.fingerprint }
  } finally {
    await keyring.close()
  }
}

/** A products list must be the one its index entry names (a swapped file is refused). */
function checkContentId(doc: ProductsDoc, id: string): ProductsDoc {
  if (doc.content_id !== id)
    throw new InputError(
      'FORMAT_CATALOG',
      `Cannot read the products list "${id}": it says content_id "${doc.content_id}"`,
      {
        hint: 'the index and its products file do not belong together: republish the catalog',
      },
    )
  return doc
}

/** gpgv 2.2 reads binary keyrings only: an armored key is converted into a private temporary file. */
async function usableKeyring(file: string): Promise<{ path: string; close(): Promise<void> }> {
  let bytes: Uint8Array
  try {
    bytes = await fsp.readFile(file)
  } catch (e) {
    throw new InputError('NOT_FOUND', `Cannot read the keyring ${file}: ${(e as NodeJS.ErrnoException).code ?? e}`, {
      cause: e,
      hint: "give the catalog's streams/v1/keyring.gpg (or keyring.asc), copied once and kept",
    })
  }
  const binary = await gpgDearmor(bytes)
  if (binary === bytes) return { path: path.resolve(file), close: async () => {} }
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hwimage-keyring-'))
  const p = path.join(dir, 'keyring.gpg')
  await fsp.writeFile(p, binary, { mode: 0o600 })
  return { path: p, close: () => fsp.rm(dir, { recursive: true, force: true }) }
}
