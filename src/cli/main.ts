// The CLI's entry: dispatches to a verb, turns errors into messages and exit codes.
// Work lives in the domain modules; each verb file only parses, calls and prints.

import { setMaxListeners } from 'node:events'
import { HwimageError, exitCodeOf } from '../errors.js'
import type { CommandContext } from './command.js'
import { verbs } from './commands/index.js'
import { releaseHungUpTerminals, stdioTerminals } from './hung-up-terminal.js'
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

/**
 * The signals that interrupt a command cleanly (exit 130, the install's first MiB zeroed).
 * SIGHUP is a closed terminal or a dropped SSH session: the same interruption as SIGTERM.
 */
const INTERRUPTS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const

/**
 * An error on our stdout or stderr that must not end the process: EIO from a terminal that
 * hung up (the SIGHUP case: the cleanup still has to run and exit 130), EPIPE from a reader
 * that went away. What is written is then lost; anything else is still thrown.
 */
function ignoreLostOutput(e: NodeJS.ErrnoException): void {
  if (e.code !== 'EIO' && e.code !== 'EPIPE') throw e
}

/** Runs the CLI with argv (without node and script) and returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const controller = new AbortController()
  // One signal for the whole command: a lab run has two installs and two boots at once, each
  // with its decompressor and tools listening (and letting go when done), past Node's 10.
  setMaxListeners(64, controller.signal)
  const terminals = stdioTerminals()
  for (const stream of [process.stdout, process.stderr]) {
    if (!stream.listeners('error').includes(ignoreLostOutput)) stream.on('error', ignoreLostOutput)
  }
  const onSignal = (sig: NodeJS.Signals) => {
    if (controller.signal.aborted) {
      // A second SIGINT or SIGTERM: the user insists, stop now. A second SIGHUP is not the
      // user (the kernel and the shell both send one when a terminal closes): ignored.
      if (sig !== 'SIGHUP') {
        releaseHungUpTerminals(terminals)
        process.exit(130)
      }
      return
    }
    controller.abort(new Error(`received ${sig}`))
  }
  for (const sig of INTERRUPTS) process.on(sig, onSignal)
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
    for (const sig of INTERRUPTS) process.off(sig, onSignal)
    releaseHungUpTerminals(terminals)
  }
}
