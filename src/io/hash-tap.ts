// Hashing bytes on their way through: the source's SHA-256 is computed from the very chunks
// that are decompressed and written, not from a second read that could see other bytes.

import type { Hash } from 'node:crypto'

/** Yields `chunks` unchanged, feeding each to `hash` first. */
export async function* hashTap(chunks: AsyncIterable<Uint8Array>, hash: Hash): AsyncGenerator<Uint8Array> {
  for await (const chunk of chunks) {
    hash.update(chunk)
    yield chunk
  }
}
