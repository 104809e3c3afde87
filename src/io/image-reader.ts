// The uncompressed image, read front to back. The installer asks for byte ranges in
// increasing order (bmap ranges, or every block when there is no bmap); each reader
// makes that as cheap as its source allows: a raw file reads only the ranges asked for,
// a stream skips what is not asked for, a decompressor's spool is read as it grows.
// Byte offsets are numbers: exact up to 2^53 (8 PiB), far above any disk.
// The installer's whole stack of readers for a source is composed in image-stack.ts.

import type { FileHandle } from 'node:fs/promises'
import { HwimageError } from '../errors.js'
import { readFully } from './read-fully.js'

/** A forward-only view of an image's bytes. */
export interface ImageReader {
  /** The image's size when known before the end (raw file, qcow2 virtual size). */
  readonly knownSize: number | undefined
  /**
   * Fills `dst` with the image's bytes at `offset`; offsets never go back below the end of
   * the previous read. Returns the bytes filled: fewer than asked only at the end of the image.
   */
  read(offset: number, dst: Uint8Array): Promise<number>
  /** Consumes the rest, waits for the decoder and returns the image size; throws if the source was truncated or corrupt. */
  finish(): Promise<number>
  /** Stops the decoder and frees what it holds; safe to call twice, and after finish(). */
  close(): Promise<void>
}

/** A raw image in a local file: only the ranges asked for are read. Closing closes the file. */
export class FileImageReader implements ImageReader {
  /** Bytes read from the file so far. */
  bytesRead = 0

  constructor(
    private readonly fh: FileHandle,
    readonly knownSize: number,
  ) {}

  async read(offset: number, dst: Uint8Array): Promise<number> {
    const done = await readFully(this.fh, dst, offset)
    this.bytesRead += done
    return done
  }

  async finish(): Promise<number> {
    return this.knownSize
  }

  async close(): Promise<void> {
    await this.fh.close().catch(() => {})
  }
}

/** An image arriving as a stream of chunks (stdin, HTTP, a decompressor's pipe): bytes not asked for are skipped. */
export class StreamImageReader implements ImageReader {
  private readonly it: AsyncIterator<Uint8Array>
  private chunk: Uint8Array = new Uint8Array(0)
  /** Image offset of chunk[0]. */
  private chunkStart = 0
  private ended = false
  private closed = false

  constructor(
    chunks: AsyncIterable<Uint8Array>,
    readonly knownSize: number | undefined = undefined,
    /** Called at the end of the stream, to check the decoder's exit (throws if it failed). */
    private readonly onEnd: () => Promise<void> = async () => {},
    private readonly onClose: () => Promise<void> = async () => {},
  ) {
    this.it = chunks[Symbol.asyncIterator]()
  }

  private async next(): Promise<boolean> {
    if (this.ended) return false
    const r = await this.it.next()
    if (r.done) {
      this.ended = true
      this.chunkStart += this.chunk.length
      this.chunk = new Uint8Array(0)
      await this.onEnd()
      return false
    }
    this.chunkStart += this.chunk.length
    this.chunk = r.value
    return true
  }

  async read(offset: number, dst: Uint8Array): Promise<number> {
    if (offset < this.chunkStart)
      throw new HwimageError(
        'INTERNAL',
        `Cannot read image at byte ${offset}: the stream is already at byte ${this.chunkStart}`,
      )
    let done = 0
    while (done < dst.length) {
      const at = offset + done
      const end = this.chunkStart + this.chunk.length
      if (at >= end) {
        if (!(await this.next())) break
        continue
      }
      const from = at - this.chunkStart
      const n = Math.min(dst.length - done, this.chunk.length - from)
      dst.set(this.chunk.subarray(from, from + n), done)
      done += n
    }
    return done
  }

  async finish(): Promise<number> {
    while (await this.next()) {
      // drain: the whole source must be read (and hashed) to the end
    }
    return this.chunkStart
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    // Not awaited: a generator blocked on its source (stdin kept open) settles only when that
    // source is destroyed, which the caller does next.
    void this.it.return?.().catch(() => {})
    await this.onClose()
  }
}
