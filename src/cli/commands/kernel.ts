// `hwimage kernel analyze|coverage|select`: kernel module footprint against
// hardware coverage, and the `server` module set. Parses, calls src/kernel/, prints.

import fs from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse as parseYaml } from 'yaml'
import { InputError, UsageError } from '../../errors.js'
import { parseVerbArgs, type Command, type CommandContext } from '../command.js'
import { Reporter, formatBytes } from '../progress.js'
import { analyzeKernel } from '../../kernel/kernel-analyze.js'
import { openKernel, type KernelTree } from '../../kernel/kernel-package.js'
import { measureCoverage, type CoverageReport } from '../../kernel/coverage.js'
import { parseInventory } from '../../kernel/inventory.js'
import { checkKnown, closeUnderDependencies, resolveModuleSet } from '../../kernel/module-set.js'
import { moduleExtrasFromSpec } from '../../kernel/module-extras.js'
import { moduleNameOf } from '../../kernel/module-indexes.js'
import { SERVER_POLICY } from '../../kernel/server-policy.js'
import { selectServerModules, unresolvedError, type ServerModuleSelection } from '../../kernel/server-modules.js'
import { writeModuleTree, type WrittenTree } from '../../kernel/module-tree-writer.js'
import type { ModuleCompression } from '../../kernel/kernel-tool-argv.js'

// Classes whose uncovered devices the text report lists by default.
const SERVER_CLASSES = ['Storage/ata', 'Storage/nvme', 'Storage/raid', 'Storage/sas', 'Storage/scsi', 'Storage/ide', 'Storage/other', 'Net/ethernet', 'Net/infiniband', 'Usb controller']

const KERNEL_ARG = `KERNEL is a linux-image .deb, apt:PACKAGE (downloaded with apt-get into
$HWIMAGE_CACHE_DIR, default /var/cache/hwimage), an image root, or a
lib/modules/<version> directory.`

const ANALYZE_HELP = `Usage: hwimage kernel analyze KERNEL [--depth N] [--top N] [--json]

Sizes of a kernel: vmlinuz, /lib/modules/<version>, and the modules by
subsystem (their directory under kernel/), with module counts.

${KERNEL_ARG}

Options:
  --depth N   group by the first N directories under kernel/ (default: 2,
              3 inside drivers/net/ethernet, drivers/gpu/drm …)
  --top N     subsystems to list (default 25; --json lists all)
  --json      one JSON document on stdout
  -h, --help  this text
`

const COVERAGE_HELP = `Usage: hwimage kernel coverage KERNEL --inventory FILE [FILE…] [options]

How much of some hardware a module set drives, per device class: the
device-count-weighted share of what the baseline (the whole kernel) drives,
the devices not covered with their counts, and the footprint.

${KERNEL_ARG}

Inventories (format recognised by content): \`lspci -nnk\` or \`lspci -vvnnk\`
output, lists of modaliases (cat /sys/bus/*/devices/*/modalias), and the
device population table; \`population\` names the one in ../shared/data/.

Options:
  --inventory FILE   an inventory (repeatable; files after it count too)
  --modules SET      all (default), server, a file of module names, or
                     name,name,… — closed under modules.dep
  --add M, --remove M  with --modules server: the spec's changes
  --baseline KERNEL  measure against another kernel's full set (default: KERNEL)
  --class C          report only this class (repeatable), e.g. Net/ethernet
  --top N            uncovered devices listed per class (default 5); listed for
                     the storage, Ethernet and USB classes unless --class or
  --all-classes      ask for others
  --json             one JSON document on stdout
  -h, --help         this text
`

const SELECT_HELP = `Usage: hwimage kernel select KERNEL [options]

Derives the \`server\` module set from its policy (src/kernel/server-policy.ts)
plus a spec's additions and removals, closes it under modules.dep, checks it
with depmod for unresolved symbols, and lists the firmware the modules ask for
(modinfo) and which of it the image lacks.

${KERNEL_ARG}

Options:
  --add M, --remove M   modules to add or remove (repeatable, or name,name)
  --spec FILE           read kernel.modules.add / kernel.modules.remove from a spec
  --image-root DIR      check DIR/lib/firmware for the firmware the set needs
  --output DIR          write the reduced kernel there: boot/vmlinuz-<version> and
                        lib/modules/<version> with the set, compressed, depmod run;
                        prints the measured footprint
  --compression C       xz (default), zstd or none, with --output
  --list                print the module names, one a line, instead of a summary
  --no-symbol-check     skip the depmod -e check
  --json                one JSON document on stdout
  -h, --help            this text
`

const HELP = `Usage: hwimage kernel <analyze|coverage|select> … [--json]

  analyze   sizes of a kernel by subsystem, module counts
  coverage  share of hardware a module set drives, per device class
  select    the server module set: policy, dependencies, symbols, firmware

hwimage kernel <sub-verb> --help for each. Docs: docs/server-kernel.md.
`

/** `hwimage kernel …`. */
export const kernelCommand: Command = {
  name: 'kernel',
  help: HELP,
  async run(argv, ctx) {
    const [sub, ...rest] = argv
    if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
      ctx.stdout.write(HELP)
      return sub === undefined ? 2 : 0
    }
    if (sub === 'analyze') return await analyze(rest, ctx)
    if (sub === 'coverage') return await coverage(rest, ctx)
    if (sub === 'select') return await select(rest, ctx)
    throw new UsageError(`Cannot run "kernel ${sub}": unknown sub-verb`, { hint: 'use analyze, coverage or select' })
  },
}

async function analyze(argv: string[], ctx: CommandContext): Promise<number> {
  const args = parseVerbArgs({ name: 'kernel analyze', help: ANALYZE_HELP }, argv, {
    depth: { type: 'string' },
    top: { type: 'string' },
    json: { type: 'boolean' },
  }, ctx)
  if (!args) return 0
  const source = onePositional(args.positionals, 'kernel analyze')
  const tree = await openKernel(source, { signal: ctx.signal })
  const depth = args.values.depth === undefined ? undefined : positiveInt(args.values.depth as string, '--depth')
  const a = analyzeKernel(tree, { depth })
  if (args.values.json) {
    ctx.stdout.write(JSON.stringify(a, null, 2) + '\n')
    return 0
  }
  const top = args.values.top === undefined ? 25 : positiveInt(args.values.top as string, '--top')
  const lines = [
    `kernel     ${a.version}  (${a.source})`,
    `vmlinuz    ${mib(a.vmlinuzBytes)}`,
    `modules    ${a.moduleCount} files, ${mib(a.moduleBytes)}; ${a.pciDriverCount} PCI drivers, ${a.aliasCount} aliases, ${a.builtinCount} built in`,
    `tree       ${mib(a.treeBytes)} in lib/modules/${a.version} (modules + indexes)`,
    `footprint  ${mib(a.footprintBytes)} (vmlinuz + lib/modules/${a.version})`,
    '',
    `${'subsystem'.padEnd(36)} ${'modules'.padStart(7)} ${'size'.padStart(10)}  share`,
    ...a.subsystems.slice(0, top).map((s) => `${s.subsystem.padEnd(36)} ${String(s.modules).padStart(7)} ${mib(s.bytes).padStart(10)}  ${pct(s.bytes / a.moduleBytes)}`),
  ]
  if (a.subsystems.length > top) lines.push(`… ${a.subsystems.length - top} more (--top N, or --json)`)
  ctx.stdout.write(lines.join('\n') + '\n')
  return 0
}

async function coverage(argv: string[], ctx: CommandContext): Promise<number> {
  const args = parseVerbArgs({ name: 'kernel coverage', help: COVERAGE_HELP }, argv, {
    inventory: { type: 'string', multiple: true },
    modules: { type: 'string' },
    add: { type: 'string', multiple: true },
    remove: { type: 'string', multiple: true },
    baseline: { type: 'string' },
    class: { type: 'string', multiple: true },
    'all-classes': { type: 'boolean' },
    top: { type: 'string' },
    json: { type: 'boolean' },
  }, ctx)
  if (!args) return 0
  const [source, ...more] = args.positionals
  const invFiles = [...((args.values.inventory as string[] | undefined) ?? []), ...more]
  if (!source) throw new UsageError('Cannot run "kernel coverage": KERNEL is missing', { hint: 'see `hwimage kernel coverage --help`' })
  if (invFiles.length === 0) throw new UsageError('Cannot run "kernel coverage": no --inventory given', { hint: 'e.g. --inventory population, or an lspci -nnk dump' })
  if (more.length > 0 && !args.values.inventory) throw new UsageError(`Cannot run "kernel coverage": unexpected argument "${more[0]}"`)
  const setSpec = (args.values.modules as string | undefined) ?? 'all'
  if ((args.values.add || args.values.remove) && setSpec !== 'server') {
    throw new UsageError('Cannot use --add or --remove with "kernel coverage" unless --modules server', { hint: 'list the modules in --modules instead' })
  }
  const inventories = []
  for (const f of invFiles) {
    const file = f === 'population' ? populationTablePath() : f
    const text = await fs.readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
      throw new InputError('NOT_FOUND', `Cannot read inventory "${file}": ${e.code === 'ENOENT' ? 'no such file' : e.message}`)
    })
    inventories.push(parseInventory(text, file))
  }
  const tree = await openKernel(source, { signal: ctx.signal })
  const modules = await moduleSetArg(tree, setSpec, { add: splitList(args.values.add), remove: splitList(args.values.remove) })
  const baseTree = args.values.baseline ? await openKernel(args.values.baseline as string, { signal: ctx.signal }) : tree
  const report = measureCoverage(
    { name: setSpec, tree, modules },
    { name: args.values.baseline ? `all of ${baseTree.version}` : 'all', tree: baseTree, modules: new Set(baseTree.modules.keys()) },
    inventories,
  )
  const only = args.values.class as string[] | undefined
  if (only) report.classes = report.classes.filter((c) => only.includes(c.class))
  if (args.values.json) {
    ctx.stdout.write(JSON.stringify(report, null, 2) + '\n')
    return 0
  }
  const top = args.values.top === undefined ? 5 : positiveInt(args.values.top as string, '--top')
  ctx.stdout.write(renderCoverage(report, top, only ?? (args.values['all-classes'] ? undefined : SERVER_CLASSES)))
  return 0
}

function renderCoverage(r: CoverageReport, top: number, detailed: readonly string[] | undefined): string {
  const lines = [
    `set        ${r.set.name}: ${r.set.modules} modules, ${mib(r.set.moduleBytes)}; with vmlinuz ${mib(r.set.footprintBytes)} (uncompressed)`,
    `baseline   ${r.baseline.name} (${r.baseline.kernel}): ${r.baseline.modules} modules, ${mib(r.baseline.moduleBytes)}; with vmlinuz ${mib(r.baseline.footprintBytes)}`,
    ...r.inventories.map((i) => `inventory  ${i.source} (${i.format}, ${i.devices} devices)`),
    '',
    `${'class'.padEnd(30)} ${'covered'.padStart(8)} ${'covered/driven'.padStart(21)} ${'not driven'.padStart(10)} ${'set size'.padStart(10)} ${'full size'.padStart(10)}`,
  ]
  for (const c of r.classes) {
    if (c.baselineDriven === 0 && c.undriven === 0) continue
    lines.push(
      `${c.class.padEnd(30)} ${(c.share === null ? '-' : pct(c.share)).padStart(8)} ${`${c.covered}/${c.baselineDriven}`.padStart(21)} ${String(c.undriven).padStart(10)} ${mib(c.setModuleBytes).padStart(10)} ${mib(c.baselineModuleBytes).padStart(10)}`,
    )
  }
  const gaps = r.classes.filter((c) => c.notCovered.length > 0 && (detailed === undefined || detailed.includes(c.class)))
  for (const c of top > 0 ? gaps : []) {
    lines.push('', `${c.class}: not covered (${c.notCovered.length} ids)`)
    for (const d of c.notCovered.slice(0, top)) lines.push(`  ${d.id.padEnd(16)} ${String(d.count).padStart(7)}  ${d.name.slice(0, 40).padEnd(40)}  ${d.modules.join(', ')}`)
    if (c.notCovered.length > top) lines.push(`  … ${c.notCovered.length - top} more (--top N, or --json)`)
  }
  return lines.join('\n') + '\n'
}

async function select(argv: string[], ctx: CommandContext): Promise<number> {
  const args = parseVerbArgs({ name: 'kernel select', help: SELECT_HELP }, argv, {
    add: { type: 'string', multiple: true },
    remove: { type: 'string', multiple: true },
    spec: { type: 'string' },
    'image-root': { type: 'string' },
    output: { type: 'string' },
    compression: { type: 'string' },
    list: { type: 'boolean' },
    'no-symbol-check': { type: 'boolean' },
    json: { type: 'boolean' },
  }, ctx)
  if (!args) return 0
  const source = onePositional(args.positionals, 'kernel select')
  const compression = ((args.values.compression as string | undefined) ?? 'xz') as ModuleCompression
  if (!['xz', 'zstd', 'none'].includes(compression)) throw new UsageError(`Cannot parse --compression: "${compression}" is not xz, zstd or none`)
  const extras = { add: splitList(args.values.add), remove: splitList(args.values.remove) }
  if (args.values.spec) {
    const file = args.values.spec as string
    const text = await fs.readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
      throw new InputError('NOT_FOUND', `Cannot read spec "${file}": ${e.code === 'ENOENT' ? 'no such file' : e.message}`)
    })
    let doc: unknown
    try {
      doc = parseYaml(text)
    } catch (e) {
      throw new InputError('SPEC_INVALID', `Cannot read spec "${file}": ${(e as Error).message.split('\n')[0]}`, { cause: e })
    }
    const fromSpec = moduleExtrasFromSpec(doc, file)
    extras.add.push(...(fromSpec.add ?? []))
    extras.remove.push(...(fromSpec.remove ?? []))
  }
  const reporter = new Reporter(ctx.stderr, Boolean(args.values.json))
  const tree = await openKernel(source, { signal: ctx.signal })
  const selection = await selectServerModules(tree, SERVER_POLICY, extras, {
    imageRoot: args.values['image-root'] as string | undefined,
    skipSymbolCheck: Boolean(args.values['no-symbol-check']),
    signal: ctx.signal,
  })
  for (const m of selection.missingFromKernel) reporter.warn(`policy names module "${m}", which kernel ${tree.version} does not have`)
  let written: WrittenTree | undefined
  if (args.values.output) {
    written = await writeModuleTree(tree, new Set(selection.modules), args.values.output as string, {
      compression,
      signal: ctx.signal,
      onProgress: reporter.progress,
    })
    reporter.clearBar()
    if (written.unresolved.length > 0) throw unresolvedError(tree, written.unresolved)
  }
  if (args.values.json) {
    ctx.stdout.write(JSON.stringify({ ...selection, output: written ?? null }, null, 2) + '\n')
  } else if (args.values.list) {
    ctx.stdout.write(selection.modules.join('\n') + '\n')
  } else {
    ctx.stdout.write(renderSelection(selection, written))
  }
  return 0
}

function renderSelection(s: ServerModuleSelection, w: WrittenTree | undefined): string {
  const lines = [
    `kernel     ${s.kernel}, policy ${s.policy}`,
    `modules    ${s.modules.length}, ${mib(s.moduleBytes)} uncompressed; with vmlinuz ${mib(s.footprintBytes)}`,
    `symbols    ${s.symbolsChecked ? 'depmod -e: none unresolved' : 'not checked'}`,
    `firmware   ${s.firmware.length} files asked for by ${Object.keys(s.firmwareByModule).length} modules` +
      (s.missingFirmware === null ? ' (give --image-root to check an image)' : `; ${s.missingFirmware.length} missing from the image`),
  ]
  if (s.dropped.length) lines.push(`dropped    ${s.dropped.map((d) => `${d.module} (${d.because})`).join(', ')}`)
  if (s.builtinRequested.length) lines.push(`built in   ${s.builtinRequested.join(', ')}`)
  if (w) {
    lines.push(
      `output     ${w.root}: ${w.prune.kept} modules, ${w.prune.compression}; modules ${mib(w.prune.keptBytesBefore)} → ${mib(w.prune.keptBytesAfter)}`,
      `footprint  ${mib(w.prune.footprintBytes)} = vmlinuz ${mib(w.prune.vmlinuzBytes)} + lib/modules/${s.kernel} ${mib(w.prune.treeBytes)}; depmod -e on the written tree: ${w.unresolved.length} unresolved`,
    )
  }
  if (s.missingFirmware?.length) lines.push('', 'missing firmware:', ...s.missingFirmware.slice(0, 20).map((f) => `  ${f}`), ...(s.missingFirmware.length > 20 ? [`  … ${s.missingFirmware.length - 20} more (--json)`] : []))
  return lines.join('\n') + '\n'
}

/** A module set named on the command line, closed under dependencies. */
async function moduleSetArg(tree: KernelTree, spec: string, extras: { add: string[]; remove: string[] }): Promise<Set<string>> {
  if (spec === 'all') return new Set(tree.modules.keys())
  if (spec === 'server') return resolveModuleSet(tree, SERVER_POLICY, extras).modules
  const fromFile = await fs.readFile(spec, 'utf8').catch(() => undefined)
  const names = fromFile === undefined ? spec.split(',') : fromFile.split('\n').map((l) => l.replace(/#.*/, ''))
  const wanted = names.map((n) => n.trim()).filter(Boolean).map((n) => checkKnown(tree, moduleNameOf(n), 'measure'))
  return closeUnderDependencies(tree, wanted.filter((n) => tree.modules.has(n)))
}

/** The population table, read from ../shared/data/ beside the repository at run time (never copied in). */
function populationTablePath(): string {
  // src/cli/commands/kernel.ts and dist/cli/commands/kernel.js both sit three levels below the root.
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
  return path.resolve(root, '..', 'shared', 'data', 'pci-device-population.md')
}

function onePositional(positionals: string[], verb: string): string {
  if (positionals.length === 0) throw new UsageError(`Cannot run "${verb}": KERNEL is missing`, { hint: `see \`hwimage ${verb} --help\`` })
  if (positionals.length > 1) throw new UsageError(`Cannot run "${verb}": unexpected argument "${positionals[1]}"`)
  return positionals[0]!
}

function splitList(v: unknown): string[] {
  return ((v as string[] | undefined) ?? []).flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean)
}

function positiveInt(text: string, what: string): number {
  const n = Number(text)
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`Cannot parse ${what}: "${text}" is not a whole number`)
  return n
}

function mib(bytes: number): string {
  return formatBytes(bytes)
}

// Rounded down, so a share just short of 100% never prints as 100%.
function pct(x: number): string {
  return x === 1 ? '100%' : `${(Math.floor(x * 10000) / 100).toFixed(2)}%`
}
