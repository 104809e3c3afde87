// `hwimage catalog list|show URL|DIR [NAME[@SERIAL]] [--keyring FILE] [--json]`: what a
// simplestreams catalog holds, read (and with --keyring verified) as an install reads it.

import { UsageError } from '../../errors.js'
import { parseVerbArgs, type Command } from '../command.js'
import { formatBytes } from '../../units.js'

const HELP = `Usage: hwimage catalog list URL|DIR [--keyring FILE] [--json]
       hwimage catalog show URL|DIR [NAME[@SERIAL]] [--keyring FILE] [--json]

Reads a simplestreams v1 catalog (a directory or an http(s):// URL of its top, as
\`hwimage publish\` writes it) and prints what it holds.

  list   one line per product: its newest serial, how many versions, its aliases,
         boot modes and kernel
  show   without NAME: every product, version and item (path, size, SHA-256);
         with NAME[@SERIAL] (a product, an alias such as bookworm/server, or
         latest): that version's fields and items, as an install would pick it

Options:
      --keyring FILE   verify the catalog's signatures (streams/v1/index.sjson and
                       the products .sjson) with gpgv against this keyring; without
                       it the unsigned .json files are read and the output says so
      --json           list: one JSON line per product; show: one JSON document
  -h, --help           this help

Exit status: 0 ok, 1 failed (network, tool), 2 bad input (not a catalog, a
signature that does not verify, an unknown name).

Examples:
  hwimage catalog list http://images.example/hwimage/ --keyring keyring.gpg
  hwimage catalog show /srv/images bookworm/server --json
`

/** \`hwimage catalog\`. */
export const catalogCommand: Command = {
  name: 'catalog',
  help: HELP,
  async run(argv, ctx) {
    const args = parseVerbArgs(this, argv, { keyring: { type: 'string' }, json: { type: 'boolean' } }, ctx)
    if (!args) return 0
    const [sub, where, ref, ...rest] = args.positionals
    if (sub !== 'list' && sub !== 'show')
      throw new UsageError(`Cannot run "catalog ${sub ?? ''}": expected list or show`, {
        hint: 'hwimage catalog list URL|DIR',
      })
    if (!where || rest.length || (sub === 'list' && ref !== undefined))
      throw new UsageError(
        `Cannot run "catalog ${sub}": expected ${sub === 'list' ? 'URL|DIR' : 'URL|DIR [NAME[@SERIAL]]'}`,
      )
    const keyring = typeof args.values.keyring === 'string' ? args.values.keyring : undefined
    const json = args.values.json === true
    const { readCatalog } = await import('../../catalog/read-catalog.js')
    const { catalogProducts, resolveVersion, serialsNewestFirst } = await import('../../catalog/resolve.js')
    const { expandedFields } = await import('../../catalog/simplestreams.js')
    const cat = await readCatalog(where, { ...(keyring ? { keyring } : {}), signal: ctx.signal })
    const trust = cat.signedBy ? `verified: signed by ${cat.signedBy}` : 'not verified (no --keyring)'
    if (!cat.signedBy && !json) ctx.stderr.write(`warning: the catalog's signatures were not checked (no --keyring)\n`)
    const products = catalogProducts(cat)

    if (sub === 'list') {
      if (json) {
        for (const p of products) {
          const serials = serialsNewestFirst(p.product)
          const newest = p.product.versions[serials[0] ?? '']
          ctx.stdout.write(
            `${JSON.stringify({
              product: p.name,
              contentId: p.contentId,
              serials,
              fields: newest ? expandedFields(p.product, newest) : {},
              signedBy: cat.signedBy ?? null,
            })}\n`,
          )
        }
        return 0
      }
      const rows = products.map((p) => {
        const serials = serialsNewestFirst(p.product)
        const f = expandedFields(p.product, p.product.versions[serials[0]!]!)
        return [
          p.name,
          serials[0] ?? '-',
          String(serials.length),
          String(f.aliases ?? '-'),
          String(f.boot_modes ?? '-'),
          `${String(f.kflavor ?? '?')} ${String(f.kernel_version ?? '')}`.trim(),
        ]
      })
      ctx.stdout.write(table(['PRODUCT', 'NEWEST', 'VERSIONS', 'ALIASES', 'BOOT', 'KERNEL'], rows))
      ctx.stdout.write(`\ncatalog ${where}: ${products.length} products, ${trust}\n`)
      return 0
    }

    if (ref !== undefined) {
      const v = resolveVersion(cat, ref)
      if (json) {
        ctx.stdout.write(`${JSON.stringify({ ...v, signedBy: cat.signedBy ?? null })}\n`)
        return 0
      }
      const lines = [`${v.product}@${v.serial}: ${trust}`, '']
      for (const [k, val] of Object.entries(v.fields)) lines.push(`  ${k.padEnd(24)} ${String(val)}`)
      lines.push('', ...itemLines(v.items))
      ctx.stdout.write(`${lines.join('\n')}\n`)
      return 0
    }
    if (json) {
      ctx.stdout.write(
        `${JSON.stringify({ index: cat.index, products: Object.fromEntries(cat.products), signedBy: cat.signedBy ?? null })}\n`,
      )
      return 0
    }
    const lines = [`catalog ${where}: ${trust}, updated ${cat.index.updated}`]
    for (const p of products) {
      lines.push('', `${p.name}  (${String(p.product.aliases ?? '')})`)
      for (const s of serialsNewestFirst(p.product)) {
        const f = expandedFields(p.product, p.product.versions[s]!)
        lines.push(
          `  ${s}  boot ${String(f.boot_modes)}, ${String(f.logical_sector_size)}-byte sectors, kernel ${String(f.kflavor)} ${String(f.kernel_version)}, ${String(f.packages_count)} packages`,
        )
        lines.push(...itemLines(p.product.versions[s]!.items).map((l) => `  ${l}`))
      }
    }
    ctx.stdout.write(`${lines.join('\n')}\n`)
    return 0
  },
}

function itemLines(items: Record<string, { ftype: string; path: string; size: number; sha256: string }>): string[] {
  return Object.entries(items).map(
    ([name, i]) => `  ${name.padEnd(10)} ${formatBytes(i.size).padStart(10)}  ${i.sha256}  ${i.path}`,
  )
}

function table(head: string[], rows: string[][]): string {
  if (rows.length === 0) return 'no products\n'
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const fmt = (r: string[]) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd()
  return `${[fmt(head), ...rows.map(fmt)].join('\n')}\n`
}
