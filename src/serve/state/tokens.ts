// The one-time bearer tokens serve gives a machine's deploy environment. The database holds
// their SHA-256 digests only: a copy of it gives no machine's token.

import { createHash, randomBytes } from 'node:crypto'

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
