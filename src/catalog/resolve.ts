// Names an install can give: a product (org.hwimage:debian:12:amd64:server), one of its
// aliases (bookworm/server, debian/12/server, 12/server), or "latest" (the newest version
// of any product), each optionally followed by @SERIAL. Without a serial the newest
// version is taken (serials compared as YYYYMMDD[.N]).

import { InputError } from '../errors.js'
import type { Catalog } from './read-catalog.js'
import { compareSerials, expandedFields, type Field, type Item, type Product, type Version } from './simplestreams.js'

/** A version picked from a catalog. */
export interface ResolvedVersion {
  contentId: string
  product: string
  serial: string
  /** The version's fields with its product's carried down. */
  fields: Record<string, Field>
  items: Record<string, Item>
}

interface Candidate {
  contentId: string
  name: string
  product: Product
}

/** Every product of a catalog, with its products list's content_id. */
export function catalogProducts(cat: Catalog): Candidate[] {
  const out: Candidate[] = []
  for (const [contentId, doc] of cat.products)
    for (const [name, product] of Object.entries(doc.products)) out.push({ contentId, name, product })
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
}

/** The serials of a product, newest first. */
export function serialsNewestFirst(product: Product): string[] {
  return Object.keys(product.versions).sort((a, b) => compareSerials(b, a))
}

/** Resolves NAME[@SERIAL] in a catalog; NOT_FOUND names what there is. */
export function resolveVersion(cat: Catalog, ref: string): ResolvedVersion {
  const at = ref.lastIndexOf('@')
  const name = at >= 0 ? ref.slice(0, at) : ref
  const serial = at >= 0 ? ref.slice(at + 1) : undefined
  if (name === '' || serial === '') throw new InputError('USAGE', `Cannot resolve "${ref}": expected NAME[@SERIAL]`)
  const all = catalogProducts(cat).filter((c) => Object.keys(c.product.versions).length > 0)
  let matches: Candidate[]
  if (name === 'latest') matches = all
  else {
    const exact = all.filter((c) => c.name === name)
    matches = exact.length
      ? exact
      : all.filter((c) =>
          String(c.product.aliases ?? '')
            .split(',')
            .includes(name),
        )
  }
  if (matches.length === 0)
    throw new InputError('NOT_FOUND', `Cannot find "${name}" in the catalog: it holds ${describe(all)}`, {
      hint: 'name a product, one of its aliases, or latest (`hwimage catalog list` shows them)',
    })
  if (name !== 'latest' && matches.length > 1)
    throw new InputError(
      'USAGE',
      `Cannot resolve "${name}": it names ${matches.map((m) => `"${m.name}"`).join(', ')}`,
      {
        hint: 'give the full product name',
      },
    )
  let pick: { c: Candidate; serial: string; version: Version } | undefined
  for (const c of matches) {
    const s = serial ?? serialsNewestFirst(c.product)[0]!
    const version = c.product.versions[s]
    if (!version) continue
    if (!pick || compareSerials(s, pick.serial) > 0) pick = { c, serial: s, version }
  }
  if (!pick)
    throw new InputError(
      'NOT_FOUND',
      `Cannot find version "${serial}" of ${matches.map((m) => `"${m.name}"`).join(', ')}: the catalog has ${matches
        .flatMap((m) => serialsNewestFirst(m.product))
        .join(', ')}`,
      { hint: 'omit @SERIAL for the newest version' },
    )
  return {
    contentId: pick.c.contentId,
    product: pick.c.name,
    serial: pick.serial,
    fields: expandedFields(pick.c.product, pick.version),
    items: pick.version.items,
  }
}

function describe(all: Candidate[]): string {
  if (all.length === 0) return 'no products'
  return all.map((c) => `"${c.name}"${c.product.aliases ? ` (${String(c.product.aliases)})` : ''}`).join(', ')
}
