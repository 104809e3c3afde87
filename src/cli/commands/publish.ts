// `hwimage publish BUILD_DIR… --catalog DIR [--sign-key KEY] [--keep N] [--json]`: parse,
// call publish(), print what changed.

import { UsageError } from '../../errors.js'
import { parseVerbArgs, type Command } from '../command.js'
import { positiveInt } from '../args.js'
import { Reporter } from '../progress.js'

const HELP = `Usage: hwimage publish BUILD_DIR… --catalog DIR [--sign-key KEY] [--keep N] [--json]

Publishes build directories (what \`hwimage build -o\` wrote) into a simplestreams v1
catalog that MAAS, simplestreams' sstream-query/sstream-mirror and
\`hwimage install --catalog\` read: streams/v1/index.json, the products list
streams/v1/org.hwimage:images.json, and each build's files under
images/debian/RELEASE/ARCH/FLAVOR/SERIAL/.

Each build is a version of the product org.hwimage:debian:12:amd64:FLAVOR, with the
serial YYYYMMDD of its build date (YYYYMMDD.N when that day already has one). A
build already in the catalog is left as it is; a build directory whose SHA256SUMS
does not verify is refused before anything is written. Published files are never
changed; the index is replaced atomically, and pruned files are deleted only after
the new index is in place.

Options:
      --catalog DIR      the catalog's top directory (created if missing)
      --sign-key KEY     sign with this GnuPG key (id, fingerprint or user id; its
                         secret key in GNUPGHOME): FILE.sjson (clear-signed) and
                         FILE.json.gpg (detached) beside every FILE.json, and the
                         public key as streams/v1/keyring.gpg and keyring.asc
      --keep N           keep only the newest N versions of each product
      --json             one JSON report on stdout
  -h, --help             this help

Exit status: 0 published (or nothing to do), 1 failed, 2 bad input (a build that
does not verify, a missing key, a catalog that is not hwimage's).

Example:
  hwimage publish out/ --catalog /srv/images --sign-key images@example.org --keep 3
See docs/catalog.md for the layout, the fields and the signing key workflow.
`

/** \`hwimage publish\`. */
export const publishCommand: Command = {
  name: 'publish',
  help: HELP,
  async run(argv, ctx) {
    const args = parseVerbArgs(
      this,
      argv,
      {
        catalog: { type: 'string' },
        'sign-key': { type: 'string' },
        keep: { type: 'string' },
        json: { type: 'boolean' },
      },
      ctx,
    )
    if (!args) return 0
    const v = args.values
    if (args.positionals.length === 0)
      throw new UsageError('Cannot publish: no BUILD_DIR given', { hint: 'hwimage publish BUILD_DIR --catalog DIR' })
    if (typeof v.catalog !== 'string')
      throw new UsageError('Cannot publish: --catalog DIR is required', {
        hint: 'hwimage publish BUILD_DIR --catalog DIR',
      })
    const json = v.json === true
    const reporter = new Reporter(ctx.stderr, json)
    const { publish } = await import('../../catalog/publish.js')
    const report = await publish({
      builds: args.positionals,
      catalog: v.catalog,
      ...(typeof v['sign-key'] === 'string' ? { signKey: v['sign-key'] } : {}),
      ...(typeof v.keep === 'string' ? { keep: positiveInt(v.keep, '--keep') } : {}),
      onEvent: (name, fields) => {
        reporter.event(name, fields)
        if (name === 'verified') reporter.log(`verified ${String(fields.build)}`)
      },
    })
    if (json) {
      ctx.stdout.write(`${JSON.stringify(report)}\n`)
      return 0
    }
    const lines: string[] = []
    for (const b of report.builds) lines.push(`${b.status.padEnd(9)} ${b.product}@${b.serial}  (${b.build})`)
    for (const p of report.pruned) lines.push(`pruned    ${p.product}@${p.serial}  (${p.files.length} files)`)
    lines.push(
      report.changed
        ? `catalog   ${report.catalog}${report.signedBy ? ` signed by ${report.signedBy}` : ' (unsigned)'}`
        : `catalog   ${report.catalog}: unchanged, nothing written`,
    )
    ctx.stdout.write(`${lines.join('\n')}\n`)
    return 0
  },
}
