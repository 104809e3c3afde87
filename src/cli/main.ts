// The CLI's entry: dispatches to a verb, turns errors into messages and exit codes.
// Work lives in the domain modules; each verb file only parses, calls and prints.

import { setMaxListeners } from 'node:events'
import { HwimageError, exitCodeOf } from '../errors.js'
import type { CommandContext } from './command.js'
import { verbs } from './commands/index.js'
import { formatError } from './report-error.js'

const VERSION = '0.1.0'

function usage(): string {
  const width = Math.max(...verbs.map((c) => c.name.length))
  return [
    'hwimage — cloud images that work on bare-metal servers',
    '',
    'Usage: hwimage <verb> [options]   (hwimage <verb> --help for each)',
    '',
    'Verbs:',
    ...verbs.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Exit codes: 0 ok, 1 failed, 2 usage or bad input, 130 interrupted.',
    'Docs: docs/ in the source tree.',
    '',
  ].join('\n')
}

/** Runs the CLI with argv (without node and script) and returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const controller = new AbortController()
  // One signal for the whole command: a lab run has two installs and two boots at once, each
  // with its decompressor and tools listening (and letting go when done), past Node's 10.
  setMaxListeners(64, controller.signal)
  const onSignal = (sig: NodeJS.Signals) => {
    if (controller.signal.aborted) process.exit(130) // a second signal: stop now
    controller.abort(new Error(`received ${sig}`))
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  const ctx: CommandContext = { stdout: process.stdout, stderr: process.stderr, signal: controller.signal }
  const json = argv.includes('--json')
  try {
    const [verb, ...rest] = argv
    if (!verb || verb === '--help' || verb === '-h' || verb === 'help') {
      process.stdout.write(usage())
      return verb ? 0 : 2
    }
    if (verb === '--version') {
      process.stdout.write(`hwimage ${VERSION}\n`)
      return 0
    }
    const found = verbs.find((c) => c.name === verb)
    if (!found) {
      process.stderr.write(`hwimage: unknown verb "${verb}"\n\n${usage()}`)
      return 2
    }
    return await (await found.load()).run(rest, ctx)
  } catch (err) {
    process.stderr.write(formatError(err, { json }))
    if (controller.signal.aborted && !(err instanceof HwimageError)) return 130
    return exitCodeOf(err)
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}
