// `hwimage kernel coverage KERNEL --inventory FILE…`: how much of some hardware a
// module set drives, per device class.

import { UsageError } from '../../../errors.js'
import { measureCoverage, type CoverageReport } from '../../../kernel/coverage.js'
import { readInventoryFile } from '../../../kernel/inventory-file.js'
import { openKernel } from '../../../kernel/kernel-package.js'
import { namedModuleSet } from '../../../kernel/named-module-set.js'
import { SERVER_CLASSES } from '../../../kernel/pci-classes.js'
import { repeatedList, wholeNumber } from '../../args.js'
import { parseVerbArgs, type Command } from '../../command.js'
import { formatBytes } from '../../../units.js'
import { KERNEL_ARG } from './kernel-arg.js'
import { percent } from './percent.js'

const HELP = `Usage: hwimage kernel coverage KERNEL --inventory FILE [FILE…] [options]

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

/** `hwimage kernel coverage`. */
export const coverageCommand: Command = {
  name: 'kernel coverage',
  help: HELP,
  async run(argv, ctx) {
    const args = parseVerbArgs(
      this,
      argv,
      {
        inventory: { type: 'string', multiple: true },
        modules: { type: 'string' },
        add: { type: 'string', multiple: true },
        remove: { type: 'string', multiple: true },
        baseline: { type: 'string' },
        class: { type: 'string', multiple: true },
        'all-classes': { type: 'boolean' },
        top: { type: 'string' },
        json: { type: 'boolean' },
      },
      ctx,
    )
    if (!args) return 0
    const [source, ...more] = args.positionals
    const invFiles = [...((args.values.inventory as string[] | undefined) ?? []), ...more]
    if (!source)
      throw new UsageError('Cannot run "kernel coverage": KERNEL is missing', {
        hint: 'see `hwimage kernel coverage --help`',
      })
    if (invFiles.length === 0)
      throw new UsageError('Cannot run "kernel coverage": no --inventory given', {
        hint: 'e.g. --inventory population, or an lspci -nnk dump',
      })
    if (more.length > 0 && !args.values.inventory)
      throw new UsageError(`Cannot run "kernel coverage": unexpected argument "${more[0]}"`)
    const setName = (args.values.modules as string | undefined) ?? 'all'
    if ((args.values.add || args.values.remove) && setName !== 'server') {
      throw new UsageError('Cannot use --add or --remove with "kernel coverage" unless --modules server', {
        hint: 'list the modules in --modules instead',
      })
    }
    const inventories = []
    for (const f of invFiles) inventories.push(await readInventoryFile(f))
    const tree = await openKernel(source, { signal: ctx.signal })
    const modules = await namedModuleSet(tree, setName, {
      add: repeatedList(args.values.add),
      remove: repeatedList(args.values.remove),
    })
    const baseTree = args.values.baseline
      ? await openKernel(args.values.baseline as string, { signal: ctx.signal })
      : tree
    const report = measureCoverage(
      { name: setName, tree, modules },
      {
        name: args.values.baseline ? `all of ${baseTree.version}` : 'all',
        tree: baseTree,
        modules: new Set(baseTree.modules.keys()),
      },
      inventories,
    )
    const only = args.values.class as string[] | undefined
    if (only) report.classes = report.classes.filter((c) => only.includes(c.class))
    if (args.values.json) {
      ctx.stdout.write(JSON.stringify(report, null, 2) + '\n')
      return 0
    }
    // 0 is allowed: the class table alone, no rows of uncovered devices.
    const top = args.values.top === undefined ? 5 : wholeNumber(args.values.top as string, '--top')
    ctx.stdout.write(renderCoverage(report, top, only ?? (args.values['all-classes'] ? undefined : SERVER_CLASSES)))
    return 0
  },
}

/** The text report: the sets, the inventories, a row a class, then the uncovered devices of the detailed classes. */
function renderCoverage(r: CoverageReport, top: number, detailed: readonly string[] | undefined): string {
  const lines = [
    `set        ${r.set.name}: ${r.set.modules} modules, ${formatBytes(r.set.moduleBytes)}; with vmlinuz ${formatBytes(r.set.footprintBytes)} (uncompressed)`,
    `baseline   ${r.baseline.name} (${r.baseline.kernel}): ${r.baseline.modules} modules, ${formatBytes(r.baseline.moduleBytes)}; with vmlinuz ${formatBytes(r.baseline.footprintBytes)}`,
    ...r.inventories.map((i) => `inventory  ${i.source} (${i.format}, ${i.devices} devices)`),
    '',
    `${'class'.padEnd(30)} ${'covered'.padStart(8)} ${'covered/driven'.padStart(21)} ${'not driven'.padStart(10)} ${'set size'.padStart(10)} ${'full size'.padStart(10)}`,
  ]
  for (const c of r.classes) {
    if (c.baselineDriven === 0 && c.undriven === 0) continue
    lines.push(
      `${c.class.padEnd(30)} ${(c.share === null ? '-' : percent(c.share)).padStart(8)} ${`${c.covered}/${c.baselineDriven}`.padStart(21)} ${String(c.undriven).padStart(10)} ${formatBytes(c.setModuleBytes).padStart(10)} ${formatBytes(c.baselineModuleBytes).padStart(10)}`,
    )
  }
  const gaps = r.classes.filter(
    (c) => c.notCovered.length > 0 && (detailed === undefined || detailed.includes(c.class)),
  )
  for (const c of top > 0 ? gaps : []) {
    lines.push('', `${c.class}: not covered (${c.notCovered.length} ids)`)
    for (const d of c.notCovered.slice(0, top))
      lines.push(
        `  ${d.id.padEnd(16)} ${String(d.count).padStart(7)}  ${d.name.slice(0, 40).padEnd(40)}  ${d.modules.join(', ')}`,
      )
    if (c.notCovered.length > top) lines.push(`  … ${c.notCovered.length - top} more (--top N, or --json)`)
  }
  return lines.join('\n') + '\n'
}
