// The shape of a CLI verb, and argument parsing with `--help` built in.

import { parseArgs, type ParseArgsConfig } from 'node:util'
import { UsageError } from '../errors.js'

/** What a verb gets besides its arguments. */
export interface CommandContext {
  stdout: NodeJS.WritableStream
  stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number }
  /** Aborted on SIGINT or SIGTERM. */
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
  let parsed
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

/** Parses a size such as 2G, 512M, 4096, 1.5GiB into bytes. */
export function parseSize(text: string, what: string): bigint {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B)?$/i.exec(text.trim())
  if (!m) throw new UsageError(`Cannot parse ${what}: "${text}" is not a size`, { hint: 'use a number with an optional K, M, G or T suffix (powers of 1024), e.g. 20G' })
  const unit = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }[(m[2] ?? '').toUpperCase() as '' | 'K' | 'M' | 'G' | 'T']
  return BigInt(Math.round(Number(m[1]) * unit))
}
