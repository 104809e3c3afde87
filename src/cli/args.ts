// Option values every verb parses the same way: counts, sizes, lists, firmware. Each
// throws a UsageError (exit 2) naming the option and the value it got.

import { UsageError } from '../errors.js'
import { FIRMWARES, type Firmware } from '../tools/qemu.js'

/** A count that must be at least 1 (--jobs, --memory, --timeout, --depth …). */
export function positiveInt(text: string, option: string): number {
  const n = Number(text)
  if (!Number.isInteger(n) || n <= 0)
    throw new UsageError(`Cannot parse ${option}: "${text}" is not a positive whole number`)
  return n
}

/** A count where 0 means none (kernel coverage --top 0: no rows of uncovered devices). */
export function wholeNumber(text: string, option: string): number {
  const n = Number(text)
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`Cannot parse ${option}: "${text}" is not a whole number`)
  return n
}

/** Parses a size such as 2G, 512M, 4096, 1.5GiB into bytes. */
export function parseSize(text: string, option: string): bigint {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B)?$/i.exec(text.trim())
  if (!m)
    throw new UsageError(`Cannot parse ${option}: "${text}" is not a size`, {
      hint: 'use a number with an optional K, M, G or T suffix (powers of 1024), e.g. 20G',
    })
  const unit = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }[
    (m[2] ?? '').toUpperCase() as '' | 'K' | 'M' | 'G' | 'T'
  ]
  return BigInt(Math.round(Number(m[1]) * unit))
}

/** A comma-separated list (--storage a,b): trimmed, without repeats, never empty. */
export function commaList(text: string, option: string): string[] {
  const items = text
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean)
  if (items.length === 0) throw new UsageError(`Cannot parse ${option}: the list is empty`)
  return [...new Set(items)]
}

/** A repeatable option whose values may also be comma-separated (--add a --add b,c); may be empty. */
export function repeatedList(values: unknown): string[] {
  return ((values as string[] | undefined) ?? [])
    .flatMap((s) => s.split(','))
    .map((s) => s.trim())
    .filter(Boolean)
}

/** A firmware name: bios, uefi or uefi-sb. */
export function parseFirmware(text: string): Firmware {
  if ((FIRMWARES as readonly string[]).includes(text)) return text as Firmware
  throw new UsageError(`Cannot use firmware "${text}": it is not one of ${FIRMWARES.join(', ')}`)
}
