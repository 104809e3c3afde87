// `hwimage cycle [SPEC.yaml] --catalog DIR [--keep N] [--sign-key KEY] [--check] [--json]`:
// parse, call cycle(), print what changed and what was published.

import { readFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { InputError, UsageError } from '../../errors.js'
import { DEFAULT_SPEC_YAML, parseSpec } from '../../build/spec.js'
import { parseVerbArgs, type Command } from '../command.js'
import { positiveInt } from '../args.js'
import { Reporter } from '../progress.js'

/** Exit status of a cycle that found nothing new (0 is "published", 1 "failed", 2 "bad input"). */
export const EXIT_UNCHANGED = 3

const HELP = `Usage: hwimage cycle [SPEC.yaml] --catalog DIR [--keep N] [--sign-key KEY] [--check] [--json]

Rebuilds and publishes the spec's image only when something changed since the newest
published serial of its product (org.hwimage:debian:12:amd64:FLAVOR): hwimage's
version, the spec (its digest), or the version on the mirror of any package that
build installed (apt against the spec's mirror; no package is downloaded). When
something changed: builds, writes CHANGELOG beside the build (packages added, removed,
upgraded with versions; kernel changes), and publishes the new serial with it.
With no SPEC, cycles the default spec (as \`hwimage build\` does).

Options:
      --catalog DIR      the catalog's top directory (created by the first publish)
      --keep N           keep only the newest N versions of each product
      --sign-key KEY     sign the catalog with this GnuPG key (see hwimage publish)
      --check            only say what changed; build and publish nothing
      --work DIR         build there and keep it (default: a temporary directory)
      --json             one JSON report on stdout; progress as JSON lines on stderr
  -h, --help             this help

Exit status: 0 published a new serial, 3 nothing changed (nothing written; with
--check: 0 when something changed), 1 failed, 2 bad input.

Example:
  hwimage cycle /etc/hwimage/server.yaml --catalog /srv/images --sign-key images@example.org --keep 3
See docs/catalog.md ("The cycle") for the systemd timer.
`

/** \`hwimage cycle\`. */
export const cycleCommand: Command = {
  name: 'cycle',
  help: HELP,
  async run(argv, ctx) {
    const args = parseVerbArgs(
      this,
      argv,
      {
        catalog: { type: 'string' },
        keep: { type: 'string' },
        'sign-key': { type: 'string' },
        check: { type: 'boolean' },
        work: { type: 'string' },
        json: { type: 'boolean' },
      },
      ctx,
    )
    if (!args) return 0
    const v = args.values
    if (args.positionals.length > 1)
      throw new UsageError(`Cannot cycle: expected at most one spec, got ${args.positionals.length}`, {
        hint: 'hwimage cycle [SPEC.yaml] --catalog DIR',
      })
    if (typeof v.catalog !== 'string' || v.catalog === '')
      throw new UsageError('Cannot cycle: --catalog DIR is required', {
        hint: 'hwimage cycle [SPEC.yaml] --catalog DIR',
      })
    const keep = typeof v.keep === 'string' ? positiveInt(v.keep, '--keep') : undefined
    const specPath = args.positionals[0]
    let text = DEFAULT_SPEC_YAML
    if (specPath) {
      text = await readFile(specPath, 'utf8').catch((e: NodeJS.ErrnoException) => {
        throw new InputError(
          e.code === 'EISDIR' ? 'USAGE' : 'NOT_FOUND',
          `Cannot read spec "${specPath}": ${e.code === 'ENOENT' ? 'no such file' : e.code === 'EISDIR' ? 'it is a directory' : e.message}`,
          { cause: e, hint: 'hwimage cycle [SPEC.yaml] --catalog DIR: the spec is a YAML file' },
        )
      })
    }
    const source = specPath ? `spec "${specPath}"` : 'default spec'
    const spec = parseSpec(text, source)
    const json = v.json === true
    const rep = new Reporter(ctx.stderr, json)
    const { cycle } = await import('../../catalog/cycle.js')
    const report = await cycle({
      spec,
      catalog: v.catalog,
      ...(keep !== undefined ? { keep } : {}),
      ...(typeof v['sign-key'] === 'string' ? { signKey: v['sign-key'] } : {}),
      ...(typeof v.work === 'string' ? { workDir: resolve(v.work) } : {}),
      checkOnly: v.check === true,
      ...(ctx.signal ? { signal: ctx.signal } : {}),
      build: {
        specDir: specPath ? dirname(resolve(specPath)) : process.cwd(),
        source,
        onWarning: (m) => rep.warn(m),
        onStep: (s) => {
          rep.log(`  [${rep.elapsed().toFixed(0).padStart(4)}s] ${s}`)
          rep.event('step', { step: s })
        },
      },
      onEvent: (name, fields) => {
        rep.event(name, fields)
        if (name === 'checked')
          rep.log(
            fields.changed
              ? `changed: ${String(fields.reasons)} reason(s), found in ${String(fields.seconds)} s`
              : `nothing changed (checked in ${String(fields.seconds)} s)`,
          )
        if (name === 'build') rep.log(`building into ${String(fields.outDir)}`)
      },
    })
    if (json) ctx.stdout.write(`${JSON.stringify(report)}\n`)
    else {
      const lines = [`product   ${report.product}${report.previous ? `  (newest ${report.previous})` : ''}`]
      for (const r of report.reasons) lines.push(`reason    ${r.kind}: ${r.detail}`)
      if (report.status === 'published')
        lines.push(`published ${report.product}@${report.serial}  (CHANGELOG beside it)`)
      else if (report.status === 'changed') lines.push('changed   (--check: nothing built)')
      else
        lines.push(
          `unchanged nothing published${report.serial ? ` (the build is ${report.serial}, byte for byte)` : ''}`,
        )
      ctx.stdout.write(`${lines.join('\n')}\n`)
    }
    if (report.status === 'published') return 0
    if (report.status === 'changed') return 0
    return EXIT_UNCHANGED
  },
}
