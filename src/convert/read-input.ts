// The input of a conversion, made a raw sparse file in the work directory: any source the
// installer reads (a file or http(s) URL; raw, qcow2, .zst, .xz, .gz) goes through the
// installer's own reader stack (io/image-stack.ts), its SHA-256 computed on the way, and
// only the blocks that hold data are written, so the copy stays as sparse as the input.

import { open } from 'node:fs/promises'
import { InputError } from '../errors.js'
import { openByteSource } from '../io/byte-source.js'
import { openImageStack } from '../io/image-stack.js'
import { nonZeroRuns } from '../io/zero-runs.js'
import { detectFormat, MAGIC_BYTES, notADiskImage } from '../install/detect-format.js'

/** The input made a raw file. */
export interface RawInput {
  /** What the user gave. */
  name: string
  format: string
  /** SHA-256 of the source's bytes as given (compressed or not). */
  sourceSha256: string
  sizeBytes: number
}

const CHUNK = 4 << 20

/** Reads `source` (path or URL) into the raw sparse file `to`; throws InputError for what is not a disk image. */
export async function readInput(source: string, to: string, signal?: AbortSignal): Promise<RawInput> {
  const src = await openByteSource(source, signal ? { signal } : {})
  try {
    const format = detectFormat(await src.head(MAGIC_BYTES))
    const stack = await openImageStack(src, format, { hashSource: true, ...(signal ? { signal } : {}) })
    const out = await open(to, 'w')
    try {
      const first = await stack.head(1 << 20)
      const why = notADiskImage(first, format === 'raw' ? src.size : undefined)
      if (why)
        throw new InputError('FORMAT_IMAGE', `Cannot convert "${source}": it is not a disk image (${why})`, {
          hint: 'give a Debian cloud image: .qcow2, .raw/.img, or .img.zst/.xz',
        })
      const buf = new Uint8Array(CHUNK)
      let offset = 0
      for (;;) {
        const n = await stack.read(offset, buf)
        for (const [a, b] of nonZeroRuns(buf.subarray(0, n), 4096)) await out.write(buf, a, b - a, offset + a)
        offset += n
        if (n < buf.length) break
      }
      const size = await stack.finish()
      await out.truncate(size)
      const digest = await stack.sourceDigest()
      if (!digest) throw new Error('the reader stack gave no source digest')
      return { name: source, format, sourceSha256: digest, sizeBytes: size }
    } finally {
      await out.close()
      await stack.close()
    }
  } finally {
    await src.close()
  }
}
