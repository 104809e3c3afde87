// `hwimage kernel analyze KERNEL`: sizes of a kernel by subsystem, module counts.

import { analyzeKernel } from '../../../kernel/kernel-analyze.js'
import { openKernel } from '../../../kernel/kernel-package.js'
import { positiveInt } from '../../args.js'
import { parseVerbArgs, type Command } from '../../command.js'
import { formatBytes } from '../../../units.js'
import { KERNEL_ARG, kernelSource } from './kernel-arg.js'
import { percent } from './percent.js'

const HELP = `Usage: hwimage kernel analyze KERNEL [--depth N] [--top N] [--json]

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

/** `hwimage kernel analyze`. */
export const analyzeCommand: Command = {
  name: 'kernel analyze',
  help: HELP,
  async run(argv, ctx) {
    const args = parseVerbArgs(
      this,
      argv,
      {
        depth: { type: 'string' },
        top: { type: 'string' },
        json: { type: 'boolean' },
      },
      ctx,
    )
    if (!args) return 0
    const source = kernelSource(args.positionals, this.name)
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
      `vmlinuz    ${formatBytes(a.vmlinuzBytes)}`,
      `modules    ${a.moduleCount} files, ${formatBytes(a.moduleBytes)}; ${a.pciDriverCount} PCI drivers, ${a.aliasCount} aliases, ${a.builtinCount} built in`,
      `tree       ${formatBytes(a.treeBytes)} in lib/modules/${a.version} (modules + indexes)`,
      `footprint  ${formatBytes(a.footprintBytes)} (vmlinuz + lib/modules/${a.version})`,
      '',
      `${'subsystem'.padEnd(36)} ${'modules'.padStart(7)} ${'size'.padStart(10)}  share`,
      ...a.subsystems
        .slice(0, top)
        .map(
          (s) =>
            `${s.subsystem.padEnd(36)} ${String(s.modules).padStart(7)} ${formatBytes(s.bytes).padStart(10)}  ${percent(s.bytes / a.moduleBytes)}`,
        ),
    ]
    if (a.subsystems.length > top) lines.push(`… ${a.subsystems.length - top} more (--top N, or --json)`)
    ctx.stdout.write(lines.join('\n') + '\n')
    return 0
  },
}
