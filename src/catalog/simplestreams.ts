// simplestreams v1 documents: the index (format "index:1.0", streams/v1/index.json) and a
// products list (format "products:1.0"), as canonical/simplestreams specifies them
// (doc/README; the reference pages "Index" and "Product" and their JSON schemas).
//
//  index:     { format, updated, index: { CONTENT_ID: { path, format, datatype, updated, products[] } } }
//  products:  { format, content_id, datatype, updated,
//               products: { PRODUCT: { …fields, versions: { SERIAL: { …fields, items: { NAME: item } } } } } }
//  item:      { ftype, path, sha256, size, … } — path relative to the mirror's top, size the download size
//
// Fields set on a product or version apply to everything below it (simplestreams "expands"
// a tree by copying string and number fields down). Version keys sort with LANG=C
// sort() to find the newest; Ubuntu's serials are YYYYMMDD[.N]. `updated` is RFC 2822 in
// UTC ("Wed, 02 Dec 2026 10:27:20 +0000", util.timestamp()). The JSON is written with
// one-space indentation, as simplestreams' dump_data() writes it.
//
// Signed forms: FILE.sjson is FILE.json clear-signed (RFC 4880 §7); FILE.json.gpg is an
// armored detached signature of FILE.json. In a signed index the products paths name the
// .sjson files (make_signed_content_paths()), so a client that starts from index.sjson
// stays on signed files.

import { FormatError } from '../errors.js'

export const INDEX_FORMAT = 'index:1.0'
export const PRODUCTS_FORMAT = 'products:1.0'
/** The index's place below the mirror's top, unsigned and signed. */
export const INDEX_PATH = 'streams/v1/index.json'
export const SIGNED_INDEX_PATH = 'streams/v1/index.sjson'

/** A field value simplestreams carries down the tree (strings and numbers). */
export type Field = string | number

/** A downloadable file of a version. */
export interface Item {
  ftype: string
  path: string
  sha256: string
  size: number
  [field: string]: Field
}

/** One build of a product: its items and the fields that describe it. */
export interface Version {
  items: Record<string, Item>
  [field: string]: Field | Record<string, Item>
}

/** A product: its versions, keyed by serial, and the fields every version shares. */
export interface Product {
  versions: Record<string, Version>
  [field: string]: Field | Record<string, Version>
}

/** A products:1.0 document. */
export interface ProductsDoc {
  format: typeof PRODUCTS_FORMAT
  content_id: string
  datatype: string
  updated: string
  products: Record<string, Product>
}

/** An index entry: where one products list is, and what it holds. */
export interface IndexEntry {
  path: string
  format: typeof PRODUCTS_FORMAT
  datatype: string
  updated: string
  products: string[]
}

/** An index:1.0 document. */
export interface IndexDoc {
  format: typeof INDEX_FORMAT
  updated: string
  index: Record<string, IndexEntry>
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'] as const
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'] as const
const RFC2822 =
  /^(Sun|Mon|Tue|Wed|Thu|Fri|Sat), (\d{2}) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (\d{4}) (\d{2}):(\d{2}):(\d{2}) ([+-]\d{4})$/

/** A time as RFC 2822 in UTC, the way simplestreams writes `updated`. */
export function rfc2822(date: Date): string {
  const p = (n: number) => String(n).padStart(2, '0')
  return `${DAYS[date.getUTCDay()]}, ${p(date.getUTCDate())} ${MONTHS[date.getUTCMonth()]} ${date.getUTCFullYear()} ${p(date.getUTCHours())}:${p(date.getUTCMinutes())}:${p(date.getUTCSeconds())} +0000`
}

/** Whether a text is an RFC 2822 date in simplestreams' form (weekday, two-digit day, numeric zone). */
export function isRfc2822(text: string): boolean {
  const m = RFC2822.exec(text)
  if (!m) return false
  const [, day, dd, mon, yyyy, hh, mi, ss, zone] = m
  const sign = zone!.startsWith('-') ? -1 : 1
  const offsetMin = sign * (Number(zone!.slice(1, 3)) * 60 + Number(zone!.slice(3)))
  const utc = Date.UTC(
    Number(yyyy),
    MONTHS.indexOf(mon as (typeof MONTHS)[number]),
    Number(dd),
    Number(hh),
    Number(mi) - offsetMin,
    Number(ss),
  )
  const local = new Date(utc + offsetMin * 60_000)
  return local.getUTCDate() === Number(dd) && DAYS[local.getUTCDay()] === day && Number(hh) < 24
}

/** The signed (clear-signed) name of a .json path: FILE.sjson. */
export function signedPath(jsonPath: string): string {
  return jsonPath.endsWith('.json') ? `${jsonPath.slice(0, -'.json'.length)}.sjson` : jsonPath
}

/** The JSON text of a document: one-space indentation and a final newline. */
export function encodeDoc(doc: IndexDoc | ProductsDoc): string {
  return `${JSON.stringify(doc, null, 1)}\n`
}

/** The index as its signed copy carries it: every products path pointing at the .sjson. */
export function signedIndex(doc: IndexDoc): IndexDoc {
  const index: Record<string, IndexEntry> = {}
  for (const [id, e] of Object.entries(doc.index)) index[id] = { ...e, path: signedPath(e.path) }
  return { ...doc, index }
}

/**
 * Checks a mirror-relative path: not empty, not absolute, no "." or ".." segment, no
 * backslash or NUL (simplestreams' assert_safe_path(), made strict: a catalog path is
 * joined to a local directory or a URL).
 */
export function isSafePath(p: string): boolean {
  if (p === '' || p.startsWith('/') || /[\\\0]/.test(p) || /^[a-z][a-z0-9+.-]*:/i.test(p)) return false
  return p.split('/').every((seg) => seg !== '' && seg !== '.' && seg !== '..')
}

/** Decodes and checks an index:1.0 document; `where` names it in errors. */
export function decodeIndex(text: string, where: string): IndexDoc {
  const doc = parseObject(text, where)
  expectConst(doc, 'format', INDEX_FORMAT, where)
  const index = expectObject(doc, 'index', where)
  for (const [id, raw] of Object.entries(index)) {
    const at = `${where}: index["${id}"]`
    const e = asObject(raw, at)
    const p = expectString(e, 'path', at)
    if (!isSafePath(p)) bad(at, `"path" ${JSON.stringify(p)} is not a relative path inside the mirror`)
    if (e.format !== undefined) expectConst(e, 'format', PRODUCTS_FORMAT, at)
    if (e.updated !== undefined) expectUpdated(e, at)
    if (e.products !== undefined && (!Array.isArray(e.products) || e.products.some((x) => typeof x !== 'string')))
      bad(at, '"products" is not a list of product names')
  }
  if (doc.updated !== undefined) expectUpdated(doc, where)
  return doc as unknown as IndexDoc
}

/** Decodes and checks a products:1.0 document: every item with a path has a safe path, a sha256 and a size. */
export function decodeProducts(text: string, where: string): ProductsDoc {
  const doc = parseObject(text, where)
  expectConst(doc, 'format', PRODUCTS_FORMAT, where)
  expectString(doc, 'content_id', where)
  if (doc.updated !== undefined) expectUpdated(doc, where)
  const products = expectObject(doc, 'products', where)
  for (const [name, rawProduct] of Object.entries(products)) {
    const pAt = `${where}: product "${name}"`
    const versions = expectObject(asObject(rawProduct, pAt), 'versions', pAt)
    for (const [serial, rawVersion] of Object.entries(versions)) {
      const vAt = `${pAt} version "${serial}"`
      const items = expectObject(asObject(rawVersion, vAt), 'items', vAt)
      for (const [itemName, rawItem] of Object.entries(items)) {
        const iAt = `${vAt} item "${itemName}"`
        const item = asObject(rawItem, iAt)
        if (item.path === undefined) continue
        const p = expectString(item, 'path', iAt)
        if (!isSafePath(p)) bad(iAt, `"path" ${JSON.stringify(p)} is not a relative path inside the mirror`)
        if (typeof item.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(item.sha256))
          bad(iAt, '"sha256" is not 64 lowercase hexadecimal digits')
        if (typeof item.size !== 'number' || !Number.isSafeInteger(item.size) || item.size < 0)
          bad(iAt, '"size" is not a byte count')
      }
    }
  }
  return doc as unknown as ProductsDoc
}

/** Compares serials YYYYMMDD[.N] (N numerically); other keys by LANG=C order. */
export function compareSerials(a: string, b: string): number {
  const ma = /^(\d{8})(?:\.(\d+))?$/.exec(a)
  const mb = /^(\d{8})(?:\.(\d+))?$/.exec(b)
  if (ma && mb) {
    if (ma[1] !== mb[1]) return ma[1]! < mb[1]! ? -1 : 1
    return Number(ma[2] ?? -1) - Number(mb[2] ?? -1)
  }
  return a < b ? -1 : a > b ? 1 : 0
}

/** A version's fields with its product's carried down (simplestreams' expansion), items left out. */
export function expandedFields(product: Product, version: Version): Record<string, Field> {
  const out: Record<string, Field> = {}
  for (const src of [product, version])
    for (const [k, v] of Object.entries(src)) if (typeof v === 'string' || typeof v === 'number') out[k] = v
  return out
}

type Json = Record<string, unknown>

function parseObject(text: string, where: string): Json {
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch (e) {
    throw new FormatError('FORMAT_CATALOG', `Cannot parse ${where}: ${(e as Error).message}`, {
      cause: e,
      hint: 'the catalog file is not JSON: republish it with `hwimage publish`',
    })
  }
  return asObject(data, where)
}

function asObject(v: unknown, where: string): Json {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) bad(where, 'expected an object')
  return v as Json
}

function expectObject(o: Json, key: string, where: string): Json {
  if (o[key] === undefined) bad(where, `the required field "${key}" is missing`)
  return asObject(o[key], `${where}: "${key}"`)
}

function expectString(o: Json, key: string, where: string): string {
  const v = o[key]
  if (typeof v !== 'string' || v === '') bad(where, `the required field "${key}" is missing or not a string`)
  return v
}

function expectConst(o: Json, key: string, want: string, where: string): void {
  if (o[key] !== want) bad(where, `"${key}" is ${JSON.stringify(o[key])}, expected "${want}"`)
}

function expectUpdated(o: Json, where: string): void {
  if (typeof o.updated !== 'string' || !isRfc2822(o.updated))
    bad(where, `"updated" ${JSON.stringify(o.updated)} is not an RFC 2822 date`)
}

function bad(where: string, why: string): never {
  throw new FormatError('FORMAT_CATALOG', `Cannot read ${where}: ${why}`, {
    hint: 'the catalog is not simplestreams v1 as hwimage writes it: republish it with `hwimage publish`',
  })
}
