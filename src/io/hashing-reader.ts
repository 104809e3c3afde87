// The SHA-256 of the whole uncompressed image, computed over every byte in order even when
// the installer skips most of them (unmapped ranges): the gaps are read and hashed too.
// It costs a full pass over the image (about 1.4 s per 2 GiB here), which is why it is asked
// for explicitly (--image-digest) rather than always done.

import { cryptoDigest, type Digest } from './digest.js'
import type { ImageReader } from './image-reader.js'

const GAP_CHUNK = 4 << 20

/** Wraps a reader, hashing every image byte from 0 to the end. */
export class HashingReader implements ImageReader {
  private readonly hash: Digest = cryptoDigest('sha256')
  private hashed = 0
  private scratch: Uint8Array | undefined
  private digestHex: string | undefined

  constructor(private readonly inner: ImageReader) {}

  get knownSize(): number | undefined {
    return this.inner.knownSize
  }

  /** The image's SHA-256 (hex), once finish() has returned. */
  get digest(): string | undefined {
    return this.digestHex
  }

  private async skipTo(offset: number): Promise<boolean> {
    this.scratch ??= new Uint8Array(GAP_CHUNK)
    while (this.hashed < offset) {
      const want = Math.min(GAP_CHUNK, offset - this.hashed)
      const n = await this.inner.read(this.hashed, this.scratch.subarray(0, want))
      await this.hash.update(this.scratch.subarray(0, n))
      this.hashed += n
      if (n < want) return false
    }
    return true
  }

  async read(offset: number, dst: Uint8Array): Promise<number> {
    if (!(await this.skipTo(offset))) return 0
    const n = await this.inner.read(offset, dst)
    // A re-read below what was hashed is not hashed twice.
    const fresh = offset + n - this.hashed
    if (fresh > 0) {
      await this.hash.update(dst.subarray(n - fresh, n))
      this.hashed += fresh
    }
    return n
  }

  async finish(): Promise<number> {
    await this.skipTo(Number.MAX_SAFE_INTEGER)
    this.digestHex = await this.hash.digest()
    return await this.inner.finish()
  }

  close(): Promise<void> {
    return this.inner.close()
  }
}
