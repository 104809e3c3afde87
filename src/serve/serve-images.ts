// The images serve offers: the config's build directories, and — with `catalog:` in the
// config — every version of every product of a simplestreams catalog that `hwimage publish`
// or `hwimage cycle` keeps (docs/catalog.md). A catalog version is an image named
// PRODUCT@SERIAL whose directory is the version's in the catalog: its files are a build's
// (manifest.json, SHA256SUMS, NAME.img.zst, .img.bmap, .qcow2, CHANGELOG), so the file
// routes, the deploy task, the pre-flight check and the dashboard treat it like a build.
//
// Trust: with `catalog.keyring` the catalog is read signed (read-catalog.ts: gpgv on
// index.sjson and the products .sjson, the text gpgv vouched for), and a version is offered
// only when its SHA256SUMS and manifest.json have the digests the verified catalog gives,
// so the checksum the installer is told to check (SHA256SUMS, named by the deploy task) is
// as trusted as the signature. `catalog.insecure: true` reads an unsigned catalog, as
// `hwimage install --insecure` does, and every API answer says it is unverified.
//
// The catalog is read at start (a catalog that does not read or verify stops serve) and
// read again when its index changes (stat per operator request), so a cycle's new serial
// is offered without a restart; a later failure keeps the last good catalog and is shown.
// An operator names a catalog image by product, alias or "latest", with or without
// @SERIAL (catalog/resolve.ts); an assignment stores the resolved PRODUCT@SERIAL, so a
// machine installs the serial it was given even after a newer one is published.

import { createHash } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { HwimageError, InputError } from '../errors.js'
import { type Catalog, readCatalog } from '../catalog/read-catalog.js'
import { catalogProducts, resolveVersion, serialsNewestFirst } from '../catalog/resolve.js'
import { INDEX_PATH, SIGNED_INDEX_PATH, type Item } from '../catalog/simplestreams.js'
import type { ServeImage } from './config.js'

/** The config's `catalog:`. */
export interface ServeCatalogConfig {
  /** The catalog's top directory (the one `hwimage publish --catalog` writes). */
  dir: string
  /** The pinned public key the catalog must be signed with. */
  keyring?: string
  /** Read it unsigned (no keyring). */
  insecure?: boolean
}

/** Where a catalog image comes from. */
export interface CatalogOrigin {
  product: string
  serial: string
  aliases: string[]
  /** The newest serial of its product. */
  latest: boolean
}

/** An image with, for a catalog version, its product and serial. */
export type OfferedImage = ServeImage & { catalog?: CatalogOrigin }

/** What the API says about the catalog. */
export interface CatalogSummary {
  dir: string
  /** The signing key's fingerprint, or null when read unsigned (insecure). */
  signedBy: string | null
  updated: string
  products: { name: string; aliases: string[]; serials: string[] }[]
  /** Versions not offered, and why (e.g. a digest that does not match the catalog). */
  refused: { image: string; reason: string }[]
  /** The last re-read failed: what is offered is the catalog as read before. */
  error?: string
}

interface Snapshot {
  stamp: string
  catalog: Catalog
  images: Map<string, OfferedImage>
  refused: CatalogSummary['refused']
}

/** The config's images, and the catalog's when there is one. */
export class ServeImages {
  #snapshot: Snapshot | undefined
  #error: string | undefined
  #reading: Promise<void> | undefined

  constructor(
    private readonly configured: ReadonlyMap<string, ServeImage>,
    private readonly catalogConfig?: ServeCatalogConfig,
    private readonly log: (record: Record<string, unknown>) => void = () => {},
  ) {}

  /** An image by its exact name (a config name, or PRODUCT@SERIAL). */
  get(name: string): OfferedImage | undefined {
    return this.configured.get(name) ?? this.#snapshot?.images.get(name)
  }

  /** Every image: the config's in its order, then the catalog's by product, newest serial first. */
  list(): OfferedImage[] {
    return [...this.configured.values(), ...(this.#snapshot?.images.values() ?? [])]
  }

  /** The names an operator can give, for messages. */
  names(): string[] {
    const s = this.#snapshot
    const aliases = s ? catalogProducts(s.catalog).flatMap((p) => [p.name, ...aliasesOf(p.product.aliases)]) : []
    return [...this.configured.keys(), ...new Set(aliases)]
  }

  /**
   * What an operator's name stands for: a config image, a catalog PRODUCT@SERIAL, or a
   * product, alias or "latest" (with or without @SERIAL) resolved to the version it names.
   * Undefined when nothing matches; a version the catalog has but serve refused is an error.
   */
  resolve(ref: string): OfferedImage | undefined {
    const exact = this.get(ref)
    if (exact) return exact
    const s = this.#snapshot
    if (!s) return undefined
    let name: string
    try {
      const v = resolveVersion(s.catalog, ref)
      name = `${v.product}@${v.serial}`
    } catch (e) {
      if (e instanceof HwimageError && e.code === 'NOT_FOUND') return undefined
      throw e
    }
    const image = s.images.get(name)
    if (image) return image
    const why = s.refused.find((r) => r.image === name)?.reason ?? 'it has no img.zst item'
    throw new InputError('CHECKSUM_MISMATCH', `Cannot offer ${name} from the catalog: ${why}`, {
      hint: 'republish the build (hwimage publish), or name another serial',
    })
  }

  /** The catalog as the API shows it; null without one. */
  catalogSummary(): CatalogSummary | null {
    const s = this.#snapshot
    if (!this.catalogConfig || !s) return null
    return {
      dir: this.catalogConfig.dir,
      signedBy: s.catalog.signedBy ?? null,
      updated: s.catalog.index.updated,
      products: catalogProducts(s.catalog).map((p) => ({
        name: p.name,
        aliases: aliasesOf(p.product.aliases),
        serials: serialsNewestFirst(p.product),
      })),
      refused: s.refused,
      ...(this.#error ? { error: this.#error } : {}),
    }
  }

  /**
   * Reads the catalog when its index changed since the last read (the first call always
   * reads). The first read's failure is thrown; a later one is kept in the summary and the
   * last good catalog stays offered.
   */
  async refresh(): Promise<void> {
    if (!this.catalogConfig) return
    this.#reading ??= this.#refresh().finally(() => (this.#reading = undefined))
    return this.#reading
  }

  async #refresh(): Promise<void> {
    const cfg = this.catalogConfig!
    const stamp = await indexStamp(cfg)
    if (this.#snapshot && stamp === this.#snapshot.stamp) return
    try {
      this.#snapshot = await readSnapshot(cfg, stamp)
      this.#error = undefined
      this.log({
        event: 'catalog',
        dir: cfg.dir,
        signedBy: this.#snapshot.catalog.signedBy ?? null,
        images: this.#snapshot.images.size,
        refused: this.#snapshot.refused.length,
      })
    } catch (e) {
      if (!this.#snapshot) throw e
      this.#error = (e as Error).message
      // Not read again until the index changes once more.
      this.#snapshot.stamp = stamp
      this.log({ event: 'catalog-error', dir: cfg.dir, message: this.#error })
    }
  }
}

function aliasesOf(field: unknown): string[] {
  return String(field ?? '')
    .split(',')
    .filter(Boolean)
}

/** The index files' sizes and mtimes: a publish renames new ones into place. */
async function indexStamp(cfg: ServeCatalogConfig): Promise<string> {
  const parts: string[] = []
  for (const rel of [INDEX_PATH, SIGNED_INDEX_PATH]) {
    const st = await fsp.stat(path.join(cfg.dir, ...rel.split('/'))).catch(() => undefined)
    parts.push(st ? `${st.size}:${st.mtimeMs}:${st.ino}` : '-')
  }
  return parts.join(' ')
}

async function readSnapshot(cfg: ServeCatalogConfig, stamp: string): Promise<Snapshot> {
  const catalog = await readCatalog(cfg.dir, cfg.keyring ? { keyring: cfg.keyring } : {})
  const images = new Map<string, OfferedImage>()
  const refused: Snapshot['refused'] = []
  for (const p of catalogProducts(catalog)) {
    const serials = serialsNewestFirst(p.product)
    for (const serial of serials) {
      const name = `${p.name}@${serial}`
      const items = p.product.versions[serial]!.items
      const zst = items.zst
      if (!zst) {
        refused.push({ image: name, reason: 'it has no img.zst item' })
        continue
      }
      const dir = path.join(cfg.dir, ...path.posix.dirname(zst.path).split('/'))
      const problem = await checkVersionFiles(cfg.dir, zst, items.sha256sums, items.manifest)
      if (problem) {
        refused.push({ image: name, reason: problem })
        continue
      }
      images.set(name, {
        name,
        dir,
        file: path.posix.basename(zst.path),
        catalog: { product: p.name, serial, aliases: aliasesOf(p.product.aliases), latest: serial === serials[0] },
      })
    }
  }
  return { stamp, catalog, images, refused }
}

/**
 * Why a version cannot be offered, or undefined: its files must sit together, and its
 * SHA256SUMS and manifest.json must be the ones the catalog lists (the image's own digest is
 * checked by the installer against SHA256SUMS while it streams).
 */
async function checkVersionFiles(
  top: string,
  zst: Item,
  sums: Item | undefined,
  manifest: Item | undefined,
): Promise<string | undefined> {
  if (!sums || !manifest) return 'it lists no SHA256SUMS or manifest.json item'
  const dir = path.posix.dirname(zst.path)
  for (const item of [sums, manifest]) {
    if (path.posix.dirname(item.path) !== dir) return `${item.path} is not beside ${zst.path}`
    const file = path.join(top, ...item.path.split('/'))
    let bytes: Buffer
    try {
      bytes = await fsp.readFile(file)
    } catch (e) {
      return `${item.path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`
    }
    const got = createHash('sha256').update(bytes).digest('hex')
    if (got !== item.sha256) return `${item.path} has SHA-256 ${got}, the catalog says ${item.sha256}`
  }
  const sumsText = await fsp.readFile(path.join(top, ...sums.path.split('/')), 'utf8')
  const listed = new RegExp(`^${zst.sha256}\\s+\\*?${escapeRe(path.posix.basename(zst.path))}$`, 'm')
  if (!listed.test(sumsText))
    return `its SHA256SUMS does not give ${path.posix.basename(zst.path)} the catalog's digest`
  return undefined
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}
