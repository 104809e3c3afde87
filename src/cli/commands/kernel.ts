// `hwimage kernel analyze|coverage|select`: kernel module footprint against
// hardware coverage, and the `server` module set. Dispatches to the sub-verbs in
// kernel/, which parse, call src/kernel/ and print.

import { UsageError } from '../../errors.js'
import type { Command } from '../command.js'
import { analyzeCommand } from './kernel/analyze.js'
import { coverageCommand } from './kernel/coverage.js'
import { selectCommand } from './kernel/select.js'

const SUB_VERBS: Record<string, Command> = { analyze: analyzeCommand, coverage: coverageCommand, select: selectCommand }

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
    const verb = Object.hasOwn(SUB_VERBS, sub) ? SUB_VERBS[sub] : undefined
    if (!verb)
      throw new UsageError(`Cannot run "kernel ${sub}": unknown sub-verb`, { hint: 'use analyze, coverage or select' })
    return await verb.run(rest, ctx)
  },
}
