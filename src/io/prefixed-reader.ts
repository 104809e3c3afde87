// An ImageReader whose first bytes were already read (to look at the image's partition
// table before anything is written) and are served again from memory, so forward-only
// readers (streams, spools) can be read from offset 0 a second time.

import type { ImageReader } from './image-reader.js'

/** Serves [0, prefix.length) from `prefix`, the rest from `inner`. */
export class PrefixedReader implements ImageReader {
  constructor(
    private readonly inner: ImageReader,
    private readonly prefix: Uint8Array,
  ) {}

  get knownSize(): number | undefined {
    return this.inner.knownSize
  }

  async read(offset: number, dst: Uint8Array): Promise<number> {
    let done = 0
    if (offset < this.prefix.length) {
      done = Math.min(dst.length, this.prefix.length - offset)
      dst.set(this.prefix.subarray(offset, offset + done))
      if (done === dst.length || offset + done < this.prefix.length) return done
    }
    return done + (await this.inner.read(offset + done, dst.subarray(done)))
  }

  finish(): Promise<number> {
    return this.inner.finish()
  }

  close(): Promise<void> {
    return this.inner.close()
  }
}
