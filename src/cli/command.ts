// The shape of a CLI verb, and argument parsing with `--help` built in.

import { parseArgs, type ParseArgsConfig } from 'node:util'
import { UsageError } from '../errors.js'

/** What a verb gets besides its arguments. */
export interface CommandContext {
  stdout: NodeJS.WritableStream
  stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number }
  /** Aborted on SIGINT, SIGTERM or SIGHUP. */
  signal: AbortSignal
}

/** One verb of the CLI: `hwimage <name> …`. */
export interface Command {
  name: string
  /** The full `--help` text. */
  help: string
  run(argv: string[], ctx: CommandContext): Promise<number>
}

type Options = NonNullable<ParseArgsConfig['options']>

/** Parses argv for a verb; returns null when `--help` was asked (and printed). */
export function parseVerbArgs<O extends Options>(
  cmd: Pick<Command, 'name' | 'help'>,
  argv: string[],
  options: O,
  ctx: CommandContext,
  allowPositionals = true,
): { values: Record<string, string | boolean | string[] | boolean[] | undefined>; positionals: string[] } | null {
  const all = { ...options, help: { type: 'boolean', short: 'h' } } as O & { help: { type: 'boolean'; short: 'h' } }
  let parsed: ReturnType<
    typeof parseArgs<{ args: string[]; options: typeof all; allowPositionals: boolean; strict: true }>
  >
  try {
    parsed = parseArgs({ args: argv, options: all, allowPositionals, strict: true })
  } catch (e) {
    throw new UsageError(`Cannot parse arguments of "${cmd.name}": ${(e as Error).message}`, {
      hint: `see \`hwimage ${cmd.name} --help\``,
    })
  }
  if ((parsed.values as Record<string, unknown>).help) {
    ctx.stdout.write(cmd.help.endsWith('\n') ? cmd.help : cmd.help + '\n')
    return null
  }
  return parsed
}
