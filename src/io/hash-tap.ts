// Hashing bytes on their way through: the source's SHA-256 is computed from the very chunks
// that are decompressed and written, not from a second read that could see other bytes.
//
// Hashing runs on the event loop's thread, and that thread also feeds the decompressor
// through a 64 KiB pipe, which zstd empties in a fraction of a millisecond. One
// hash.update() over 4 MiB (3 ms) would leave zstd waiting for most of that time, so big
// buffers are hashed in slices with a turn of the event loop in between.

import type { Hash } from 'node:crypto'

/** Bytes hashed between two turns of the event loop (~0.2 ms at 1.4 GB/s). */
const SLICE = 256 * 1024

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

/** hash.update(bytes), letting pending I/O run every SLICE bytes. */
async function updateYielding(hash: Hash, bytes: Uint8Array): Promise<void> {
  if (bytes.length <= SLICE) {
    hash.update(bytes)
    return
  }
  for (let at = 0; at < bytes.length; at += SLICE) {
    if (at > 0) await turn()
    hash.update(bytes.subarray(at, at + SLICE))
  }
}

/** Yields `chunks` unchanged, feeding each to `hash` first. */
export async function* hashTap(chunks: AsyncIterable<Uint8Array>, hash: Hash): AsyncGenerator<Uint8Array> {
  for await (const chunk of chunks) {
    await updateYielding(hash, chunk)
    yield chunk
  }
}
