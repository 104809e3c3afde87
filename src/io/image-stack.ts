// The installer's reader stack, composed here and nowhere else: from a source and its
// detected format to one ImageReader of the uncompressed image, with everything the
// install needs from the reading on the way.
//
// The pull interface (image-reader.ts): the installer calls read(offset, dst) with its own
// buffer (an aligned slot of a SlotPool, so the bytes go to O_DIRECT writes and to the
// hashing thread where they are, with no copy), at offsets that only go forward; then
// finish() (the rest consumed, the decoder's verdict), then close(). Pulling suits bmap
// skipping (a raw file reads only the ranges asked for, a seekable .zst decompresses only
// the frames holding them) better than a pushed stream would.
//
// The layers, bottom up:
//   1. the source's bytes: a local file, a download, stdin (byte-source.ts);
//   2. decoding: none (raw), frames (a seekable .zst, framed-zstd.ts), one decompressor
//      program with its spool (decompress.ts), or qcow2's mapping (qcow2-reader.ts, over a
//      spool file for stdin); the source's SHA-256 computed on the way (digest.ts): from
//      the very chunks decoded (streams), by the hashing thread as the frames are read (a
//      seekable .zst), by the thread reading the file itself (another compressed file), or
//      by one more pass in order (qcow2, read at random offsets);
//   3. with --image-digest, the SHA-256 of every image byte (hashing-reader.ts);
//   4. the top (StackReader): the image's first MiB, read once by head() to look at its
//      partition table and served again from memory (forward-only readers could not go
//      back); pending reads failing with InterruptedError when the signal aborts (a source
//      blocked on stdin never would end by itself); and one close() that tears every layer
//      down in order: the readers, then the hashing thread and the files this stack opened.
// The ByteSource stays the caller's: it opened it, it closes it after the stack.

import { promises as fsp } from 'node:fs'
import os from 'node:os'
import { InputError, InterruptedError } from '../errors.js'
import type { ByteSource } from './byte-source.js'
import { cryptoDigest, hashTap, threadDigest } from './digest.js'
import { framesFit, readSeekTable, startFramedZstd, type FramedOptions } from './framed-zstd.js'
import { HashThread } from './hash-thread.js'
import { HashingReader } from './hashing-reader.js'
import { FileImageReader, StreamImageReader, type ImageReader } from './image-reader.js'
import { fileReadAt } from './read-fully.js'
import { openUnlinkedFile } from './unlinked-file.js'

/** How a source's bytes are laid out, as detect-format.ts says (raw: the image itself). */
export type SourceFormat = 'raw' | 'zstd' | 'xz' | 'gzip' | 'qcow2'

/** Options for openImageStack. */
export interface ImageStackOptions {
  /** Compute the source's SHA-256 (needed for --sha256; cheap for compressed sources, always done for them). */
  hashSource: boolean
  /** Compute the uncompressed image's SHA-256 over every byte (--image-digest; reads the whole image). */
  imageDigest?: boolean
  /** The image spans that will be read (the bmap's ranges and the first MiB); default all. A seekable .zst then skips its other frames. */
  wanted?: Array<{ offset: number; length: number }>
  /** Stops downloads and decompressors (the install's teardown). */
  teardown?: AbortSignal
  /** Pending reads fail with InterruptedError once this aborts (the user's interrupt). */
  signal?: AbortSignal
  spoolDir?: string | null
  /** The hashing thread for a seekable .zst's digest (digest id -1), shared with the caller; default: one of its own. */
  hasher?: HashThread
}

/** The whole reader stack of a source: an ImageReader, and what was learnt on the way. */
export interface ImageStack extends ImageReader {
  /** The image's first `n` bytes (fewer only when the image is shorter), read once and then served again by read(). */
  head(n: number): Promise<Uint8Array>
  /** The source's SHA-256 (hex), after finish(); undefined when not computed. */
  sourceDigest(): Promise<string | undefined>
  /** The image's SHA-256 (hex), after finish(), with imageDigest; else undefined. */
  imageDigest(): string | undefined
  /** Bytes read from the source so far (streamed, or read at offsets). */
  bytesRead(): number
}

/** Layer 2: a decoded image, its source digest, and what must be closed after the reader. */
interface Decoded {
  reader: ImageReader
  sourceDigest(): Promise<string | undefined>
  bytesRead(finished: boolean): number
  /** Closed in order, after the reader. */
  closers: Array<() => Promise<void>>
}

// The decompressor programs (node:child_process) and the qcow2 reader (node:zlib) are
// loaded when a source needs them: loading modules is a good part of an install's start-up.
const decompressor = async () => (await import('./decompress.js')).startDecompressor

/** The digest id of a seekable .zst's own SHA-256 on a shared hashing thread (bmap ranges use 0, 1, …). */
const FILE_DIGEST = -1

/** Opens the whole reader stack over `source`. */
export async function openImageStack(
  source: ByteSource,
  format: SourceFormat,
  opts: ImageStackOptions,
): Promise<ImageStack> {
  const decoded = await decode(source, format, opts)
  const hashing = opts.imageDigest ? new HashingReader(decoded.reader) : undefined
  return new StackReader(decoded, hashing, opts.signal)
}

/** Layer 4: the head held, the abort, the one close(). */
class StackReader implements ImageStack {
  private readonly inner: ImageReader
  private held: Uint8Array = new Uint8Array(0)
  private finished = false
  private closing: Promise<void> | undefined
  /** Rejects with InterruptedError when the signal aborts; undefined without a signal. */
  private readonly aborted: Promise<never> | undefined

  constructor(
    private readonly decoded: Decoded,
    private readonly hashing: HashingReader | undefined,
    signal: AbortSignal | undefined,
  ) {
    this.inner = hashing ?? decoded.reader
    if (signal) {
      this.aborted = new Promise<never>((_, reject) => {
        const fail = () => reject(new InterruptedError('Interrupted while reading the image'))
        if (signal.aborted) fail()
        else signal.addEventListener('abort', fail, { once: true })
      })
      this.aborted.catch(() => {})
    }
  }

  get knownSize(): number | undefined {
    return this.inner.knownSize
  }

  private race<T>(p: Promise<T>): Promise<T> {
    return this.aborted ? Promise.race([p, this.aborted]) : p
  }

  async head(n: number): Promise<Uint8Array> {
    const buf = new Uint8Array(n)
    this.held = buf.subarray(0, await this.read(0, buf))
    return this.held
  }

  async read(offset: number, dst: Uint8Array): Promise<number> {
    const held = this.held
    let done = 0
    if (offset < held.length) {
      done = Math.min(dst.length, held.length - offset)
      dst.set(held.subarray(offset, offset + done))
      if (done === dst.length || offset + done < held.length) return done
    }
    return done + (await this.race(this.inner.read(offset + done, dst.subarray(done))))
  }

  async finish(): Promise<number> {
    const n = await this.race(this.inner.finish())
    this.finished = true
    return n
  }

  sourceDigest(): Promise<string | undefined> {
    return this.decoded.sourceDigest()
  }

  imageDigest(): string | undefined {
    return this.hashing?.digest
  }

  bytesRead(): number {
    return this.decoded.bytesRead(this.finished)
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.inner.close()
      for (const close of this.decoded.closers) await close()
    })()
    return this.closing
  }
}

/** Layer 2 over layer 1: the decoded image of `source`, its digest computed on the way when wanted. */
async function decode(source: ByteSource, format: SourceFormat, opts: ImageStackOptions): Promise<Decoded> {
  if (format === 'qcow2') return await decodeQcow2(source, opts)
  if (format === 'raw' && source.kind === 'file' && !opts.hashSource) {
    // Only the ranges asked for are read: a bmap install reads just the mapped data.
    const fh = await fsp.open(source.name, 'r')
    const reader = new FileImageReader(fh, source.size!)
    return { reader, sourceDigest: async () => undefined, bytesRead: () => reader.bytesRead, closers: [] }
  }
  if (format !== 'raw' && source.kind === 'file') {
    // A seekable .zst (hwimage build writes them) is decompressed frame by frame, several
    // at once, and only the frames that hold wanted spans; its frames are read once, in
    // order, and handed to the hashing thread as they are read. Any other compressed file
    // is read by one decompressor, and by the hashing thread on its own descriptor at the
    // same time (the second read comes from the page cache).
    const fh = await fsp.open(source.name, 'r')
    const table =
      format === 'zstd'
        ? await readSeekTable(fileReadAt(fh), source.size!, source.name).catch(async (e: unknown) => {
            await fh.close()
            throw e
          })
        : undefined
    const framed = table !== undefined && framesFit(table)
    // A whole-file digest keeps a thread busy reading the file: that one is never shared.
    const own = !framed || opts.hasher === undefined
    const hasher = own ? new HashThread() : opts.hasher!
    let reader: ImageReader
    let digest: () => Promise<string>
    try {
      if (framed) {
        const fileDigest = threadDigest(hasher, FILE_DIGEST)
        reader = await startFramedZstd({ file: fh, hash: fileDigest.update }, table, framedOptions(source, opts))
        digest = fileDigest.digest // every update was posted by the time finish() returns
      } else {
        const whole = hasher.file(source.name)
        whole.catch(() => {})
        digest = () => whole
        reader = await (await decompressor())(
          format,
          { fd: fh.fd },
          { signal: opts.teardown, spoolDir: opts.spoolDir, sourceName: source.name },
        )
      }
    } catch (e) {
      if (own) await hasher.close()
      await fh.close()
      throw e
    }
    return {
      reader,
      sourceDigest: async () => await digest(),
      bytesRead: (finished) => (finished ? source.size! : 0),
      closers: [...(own ? [() => hasher.close()] : []), () => fh.close().catch(() => {})],
    }
  }
  // A download of a seekable .zst: its table comes first, by a Range request for the
  // file's last bytes; the download itself is then cut into frames.
  const table =
    format === 'zstd' && source.readAt && source.size !== undefined
      ? await readSeekTable(source.readAt.bind(source), source.size, source.name)
      : undefined
  const hash = cryptoDigest('sha256', { yielding: true })
  const chunks = hashTap(source.stream(), hash)
  const reader =
    format === 'raw'
      ? new StreamImageReader(chunks, source.size)
      : table && framesFit(table)
        ? await startFramedZstd({ stream: chunks }, table, framedOptions(source, opts))
        : await (await decompressor())(format, chunks, {
            signal: opts.teardown,
            spoolDir: opts.spoolDir,
            sourceName: source.name,
          })
  return {
    reader,
    // Only once the source was read to its end: finish() drains it.
    sourceDigest: () => hash.digest(),
    bytesRead: () => source.bytesRead,
    closers: [],
  }
}

function framedOptions(source: ByteSource, opts: ImageStackOptions): FramedOptions {
  return { ...(opts.wanted ? { wanted: opts.wanted } : {}), sourceName: source.name }
}

async function decodeQcow2(source: ByteSource, opts: ImageStackOptions): Promise<Decoded> {
  const { openQcow2 } = await import('./qcow2-reader.js')
  if (source.readAt) {
    let read = 0
    const readAt = source.readAt.bind(source)
    const reader = await openQcow2(async (offset, length) => {
      const b = await readAt(offset, length)
      read += b.length
      return b
    }, source.name)
    // The mapping reads the file at random offsets; the digest needs one more pass in order.
    const pass = opts.hashSource ? hashAll(source.stream()) : undefined
    pass?.catch(() => {})
    return {
      reader,
      sourceDigest: async () => (pass ? await pass : undefined),
      bytesRead: () => read + source.bytesRead,
      closers: [],
    }
  }
  if (source.kind === 'http') {
    throw new InputError('USAGE', `Cannot read qcow2 "${source.name}": the server does not support Range requests`, {
      hint: 'download it first, or serve it from a server with Range support, or convert it to raw.zst',
    })
  }
  // stdin: qcow2 needs random access, so spool it to a temporary file first (hashing on the
  // way). The file has no name (unlinked-file.ts): nothing stays in the temp dir, however
  // hwimage ends. Written at the descriptor's offset, read at positions.
  const fh = await openUnlinkedFile(os.tmpdir(), 'hwimage-qcow2-')
  const hash = cryptoDigest('sha256', { yielding: true })
  let size: number
  try {
    for await (const chunk of hashTap(source.stream(), hash)) await fh.write(chunk)
    size = (await fh.stat()).size
  } catch (e) {
    await fh.close()
    throw e
  }
  const reader = await openQcow2(fileReadAt(fh, size), source.name).catch(async (e: unknown) => {
    await fh.close()
    throw e
  })
  const digest = await hash.digest()
  return {
    reader,
    sourceDigest: async () => digest,
    bytesRead: () => source.bytesRead,
    closers: [() => fh.close().catch(() => {})],
  }
}

/** The SHA-256 of every chunk, in order. */
async function hashAll(chunks: AsyncIterable<Uint8Array>): Promise<string> {
  const hash = cryptoDigest('sha256')
  for await (const c of chunks) await hash.update(c)
  return await hash.digest()
}
