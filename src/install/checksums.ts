// SHA256SUMS files as sha256sum(1) writes them ("HEX  NAME", "HEX *NAME" in binary mode)
// and the BSD form coreutils reads too ("SHA256 (NAME) = HEX"). The installer's expected
// source digest is the line for the source's file name.

import { InputError } from '../errors.js'

const GNU_LINE = /^([0-9a-fA-F]{64}) [ *](.+)$/
const BSD_LINE = /^SHA256 \((.+)\) = ([0-9a-fA-F]{64})$/

/** The name → lowercase hex digest pairs of a SHA256SUMS text; comments and blank lines skipped. */
export function parseSha256Sums(text: string): Map<string, string> {
  const out = new Map<string, string>()
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '')
    if (line.trim() === '' || line.startsWith('#')) continue
    const gnu = GNU_LINE.exec(line)
    const bsd = gnu ? null : BSD_LINE.exec(line)
    if (gnu) out.set(stripDotSlash(gnu[2]!), gnu[1]!.toLowerCase())
    else if (bsd) out.set(stripDotSlash(bsd[1]!), bsd[2]!.toLowerCase())
  }
  return out
}

const stripDotSlash = (name: string): string => name.replace(/^\.\//, '')

/** The digest a SHA256SUMS text gives for `fileName` (also matched by its last path segment). */
export function pickSha256(sums: Map<string, string>, fileName: string, where: string): string {
  const exact = sums.get(fileName)
  if (exact) return exact
  for (const [name, hex] of sums) if (name.split('/').pop() === fileName) return hex
  const names = [...sums.keys()]
  throw new InputError(
    'NOT_FOUND',
    `Cannot find the SHA-256 of "${fileName}" in "${where}": it lists ${names.length ? names.map((n) => `"${n}"`).join(', ') : 'no digests'}`,
    {
      hint: 'pass the digest with --sha256 HEX, or point --sha256-url at the SHA256SUMS beside the image',
    },
  )
}

/** Checks a --sha256 value: 64 hex digits; returns it lowercased. */
export function parseSha256Hex(text: string, what = '--sha256'): string {
  const t = text.trim()
  if (!/^[0-9a-fA-F]{64}$/.test(t)) {
    throw new InputError('USAGE', `Cannot use ${what} "${text}": expected 64 hexadecimal digits`)
  }
  return t.toLowerCase()
}
