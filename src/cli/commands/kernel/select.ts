// `hwimage kernel select KERNEL`: the server module set from its policy and a spec's
// changes, checked for symbols and firmware; optionally written out as a reduced kernel.

import { UsageError } from '../../../errors.js'
import { openKernel } from '../../../kernel/kernel-package.js'
import type { ModuleCompression } from '../../../kernel/kernel-tool-argv.js'
import { readModuleExtras } from '../../../kernel/module-extras.js'
import { writeModuleTree, type WrittenTree } from '../../../kernel/module-tree-writer.js'
import { selectServerModules, unresolvedError, type ServerModuleSelection } from '../../../kernel/server-modules.js'
import { SERVER_POLICY } from '../../../kernel/server-policy.js'
import { repeatedList } from '../../args.js'
import { parseVerbArgs, type Command } from '../../command.js'
import { Reporter } from '../../progress.js'
import { formatBytes } from '../../../units.js'
import { KERNEL_ARG, kernelSource } from './kernel-arg.js'

const HELP = `Usage: hwimage kernel select KERNEL [options]

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

/** `hwimage kernel select`. */
export const selectCommand: Command = {
  name: 'kernel select',
  help: HELP,
  async run(argv, ctx) {
    const args = parseVerbArgs(
      this,
      argv,
      {
        add: { type: 'string', multiple: true },
        remove: { type: 'string', multiple: true },
        spec: { type: 'string' },
        'image-root': { type: 'string' },
        output: { type: 'string' },
        compression: { type: 'string' },
        list: { type: 'boolean' },
        'no-symbol-check': { type: 'boolean' },
        json: { type: 'boolean' },
      },
      ctx,
    )
    if (!args) return 0
    const source = kernelSource(args.positionals, this.name)
    const compression = ((args.values.compression as string | undefined) ?? 'xz') as ModuleCompression
    if (!['xz', 'zstd', 'none'].includes(compression))
      throw new UsageError(`Cannot parse --compression: "${compression}" is not xz, zstd or none`)
    const extras = { add: repeatedList(args.values.add), remove: repeatedList(args.values.remove) }
    if (args.values.spec) {
      const fromSpec = await readModuleExtras(args.values.spec as string)
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
    for (const m of selection.missingFromKernel)
      reporter.warn(`policy names module "${m}", which kernel ${tree.version} does not have`)
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
  },
}

/** The text summary of a selection, and of the tree written with --output. */
function renderSelection(s: ServerModuleSelection, w: WrittenTree | undefined): string {
  const lines = [
    `kernel     ${s.kernel}, policy ${s.policy}`,
    `modules    ${s.modules.length}, ${formatBytes(s.moduleBytes)} uncompressed; with vmlinuz ${formatBytes(s.footprintBytes)}`,
    `symbols    ${s.symbolsChecked ? 'depmod -e: none unresolved' : 'not checked'}`,
    `firmware   ${s.firmware.length} files asked for by ${Object.keys(s.firmwareByModule).length} modules` +
      (s.missingFirmware === null
        ? ' (give --image-root to check an image)'
        : `; ${s.missingFirmware.length} missing from the image`),
  ]
  if (s.dropped.length) lines.push(`dropped    ${s.dropped.map((d) => `${d.module} (${d.because})`).join(', ')}`)
  if (s.builtinRequested.length) lines.push(`built in   ${s.builtinRequested.join(', ')}`)
  if (w) {
    lines.push(
      `output     ${w.root}: ${w.prune.kept} modules, ${w.prune.compression}; modules ${formatBytes(w.prune.keptBytesBefore)} → ${formatBytes(w.prune.keptBytesAfter)}`,
      `footprint  ${formatBytes(w.prune.footprintBytes)} = vmlinuz ${formatBytes(w.prune.vmlinuzBytes)} + lib/modules/${s.kernel} ${formatBytes(w.prune.treeBytes)}; depmod -e on the written tree: ${w.unresolved.length} unresolved`,
    )
  }
  if (s.missingFirmware?.length)
    lines.push(
      '',
      'missing firmware:',
      ...s.missingFirmware.slice(0, 20).map((f) => `  ${f}`),
      ...(s.missingFirmware.length > 20 ? [`  … ${s.missingFirmware.length - 20} more (--json)`] : []),
    )
  return lines.join('\n') + '\n'
}
