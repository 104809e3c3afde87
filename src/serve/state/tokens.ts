// The one-time bearer tokens serve gives a machine's deploy environment. The database holds
// their SHA-256 digests only: a copy of it gives no machine's token.

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'

/** The outcome of checking a machine's bearer token. */
export type TokenCheck = 'ok' | 'missing' | 'wrong'

/** A fresh one-time token: 32 random bytes, base64url. */
export function newToken(): string {
  return randomBytes(32).toString('base64url')
}

/** The digest a token is stored as. */
export function tokenDigest(token: string): string {
  return createHash('sha256').update(token).digest('hex')
}

/** Whether `token`'s digest is one of `digests` (hex), compared in constant time, each of them. */
export function tokenMatches(token: string, digests: readonly string[]): boolean {
  const want = Buffer.from(tokenDigest(token), 'hex')
  let ok = false
  for (const d of digests) if (timingSafeEqual(Buffer.from(d, 'hex'), want)) ok = true
  return ok
}
