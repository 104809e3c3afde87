// The one way the installer hashes bytes: a Digest takes bytes in order (update) and gives
// the hex digest once (digest). Two things stand behind it: node:crypto on the event loop
// (cryptoDigest), for bytes that are not in shared memory (a download's chunks, a spool,
// the whole image for --image-digest), and the hashing thread (threadDigest), for bytes in
// shared memory (the installer's slots, a seekable .zst's frames), hashed where they are.
// The source digest, the image digest, the bmap ranges and the qcow2 pass all use it.
//
// Hashing on the event loop competes with what that loop feeds: a decompressor's 64 KiB
// input pipe, which zstd empties in a fraction of a millisecond. One hash.update() over
// 4 MiB (3 ms) would leave zstd waiting for most of that time, so cryptoDigest can be told
// to hash big buffers in slices with a turn of the event loop in between.

import { createHash, type Hash } from 'node:crypto'
import type { HashAlgorithm, HashThread } from './hash-thread.js'

/** A hash being computed: update() with the bytes in order, then digest() once. */
export interface Digest {
  /** Adds `bytes`; resolves once they are hashed (the buffer may then be reused). */
  update(bytes: Uint8Array): Promise<void>
  /** The lowercase hex digest of every byte added; asking again gives the same answer. */
  digest(): Promise<string>
}

/** Bytes hashed between two turns of the event loop, when yielding (~0.2 ms at 1.4 GB/s). */
const SLICE = 256 * 1024

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

/** A Digest by node:crypto on this thread; `yielding`: big buffers are hashed in slices, letting pending I/O run in between. */
export function cryptoDigest(algorithm: HashAlgorithm = 'sha256', opts: { yielding?: boolean } = {}): Digest {
  const hash: Hash = createHash(algorithm)
  let hex: string | undefined
  return {
    async update(bytes) {
      if (!opts.yielding || bytes.length <= SLICE) {
        hash.update(bytes)
        return
      }
      for (let at = 0; at < bytes.length; at += SLICE) {
        if (at > 0) await turn()
        hash.update(bytes.subarray(at, at + SLICE))
      }
    },
    digest: async () => (hex ??= hash.digest('hex')),
  }
}

/** A Digest on the hashing thread, as its digest `id`: every update must be a view of shared memory. */
export function threadDigest(thread: HashThread, id: number, algorithm: HashAlgorithm = 'sha256'): Digest {
  let hex: Promise<string> | undefined
  return {
    update: (bytes) => thread.update(id, bytes, algorithm),
    digest: () => (hex ??= thread.digest(id, algorithm)),
  }
}

/** The SHA-256 (hex) of `bytes`, at once: for pieces small enough to hash in one go. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}

/** Yields `chunks` unchanged, adding each to `digest` first: the digest is of the very bytes passed on. */
export async function* hashTap(chunks: AsyncIterable<Uint8Array>, digest: Digest): AsyncGenerator<Uint8Array> {
  for await (const chunk of chunks) {
    await digest.update(chunk)
    yield chunk
  }
}
