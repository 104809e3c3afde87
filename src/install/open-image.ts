// From a source and its detected format to a reader of the uncompressed image, with the
// source's SHA-256 computed on the way when it is wanted: from the very chunks that are
// decompressed (streamed sources), or by a parallel pass over the file (a local compressed
// file, hashed on a thread of its own; qcow2, which is read at random offsets).

import { createHash } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import os from 'node:os'
import { InputError } from '../errors.js'
import type { ByteSource } from '../io/byte-source.js'
import { fileReadAt, framesFit, readSeekTable, startFramedZstd, type FramedOptions } from '../io/framed-zstd.js'
import { hashTap } from '../io/hash-tap.js'
import { HashThread } from '../io/hash-thread.js'
import { FileImageReader, StreamImageReader, type ImageReader } from '../io/image-reader.js'
import { readFully } from '../io/read-fully.js'
import { openUnlinkedFile } from '../io/unlinked-file.js'
import type { ImageFormat } from './detect-format.js'

/** An image being read, and the digest of its source once read to the end. */
export interface OpenedImage {
  reader: ImageReader
  /** The source's SHA-256 (hex), after reader.finish(); undefined when not computed. */
  sourceDigest(): Promise<string | undefined>
  /** Bytes read from the source so far (streamed, or read at offsets). */
  bytesRead(): number
}

/** Options for openImage. */
export interface OpenImageOptions {
  /** Compute the source's SHA-256 (needed for --sha256; cheap for compressed sources, always done for them). */
  hashSource: boolean
  signal?: AbortSignal
  spoolDir?: string | null
  /** The hashing thread for a seekable .zst's digest (digest id -1), shared with the caller; default: one of its own. */
  hasher?: HashThread
  /** The image spans that will be read (the bmap's ranges and the first MiB); default all. A seekable .zst then skips its other frames. */
  wanted?: Array<{ offset: number; length: number }>
}

// The decompressor programs (node:child_process) and the qcow2 reader (node:zlib) are
// loaded when a source needs them: loading modules is a good part of an install's start-up.
const decompressor = async () => (await import('../io/decompress.js')).startDecompressor

/** The digest id of a seekable .zst's own SHA-256 on a shared hashing thread (bmap ranges use 0, 1, …). */
const FILE_DIGEST = -1

/** Opens the uncompressed image of `source`. */
export async function openImage(source: ByteSource, format: ImageFormat, opts: OpenImageOptions): Promise<OpenedImage> {
  if (format === 'qcow2') return await openQcow2Image(source, opts)
  if (format === 'raw' && source.kind === 'file' && !opts.hashSource) {
    // Only the ranges asked for are read: a bmap install reads just the mapped data.
    const fh = await fsp.open(source.name, 'r')
    const reader = new FileImageReader(fh, source.size!)
    return { reader, sourceDigest: async () => undefined, bytesRead: () => reader.bytesRead }
  }
  if (format !== 'raw' && source.kind === 'file') {
    // A seekable .zst (hwimage build writes them) is decompressed frame by frame, several
    // at once, and only the frames that hold wanted spans; its frames are read once, in
    // order, and handed to the hashing thread as they are read. Any other compressed file
    // is read by one decompressor, and by the hashing thread on its own descriptor at the
    // same time (the second read comes from the page cache).
    const fh = await fsp.open(source.name, 'r')
    const table = format === 'zstd' ? await readSeekTable(fileReadAt(fh), source.size!, source.name).catch(async (e: unknown) => {
      await fh.close()
      throw e
    }) : undefined
    const framed = table !== undefined && framesFit(table)
    // A whole-file digest keeps a thread busy reading the file: that one is never shared.
    const own = !framed || opts.hasher === undefined
    const hasher = own ? new HashThread() : opts.hasher!
    let reader: ImageReader
    let digest: () => Promise<string>
    try {
      if (framed) {
        reader = await startFramedZstd({ file: fh, hash: (bytes) => hasher.update(FILE_DIGEST, bytes) }, table, framedOptions(source, opts))
        digest = () => hasher.digest(FILE_DIGEST) // every update was posted by the time finish() returns
      } else {
        const whole = hasher.file(source.name)
        whole.catch(() => {})
        digest = () => whole
        reader = await (await decompressor())(format, { fd: fh.fd }, { signal: opts.signal, spoolDir: opts.spoolDir, sourceName: source.name })
      }
    } catch (e) {
      if (own) await hasher.close()
      await fh.close()
      throw e
    }
    let finished = false
    return {
      reader: {
        knownSize: reader.knownSize,
        read: (o, d) => reader.read(o, d),
        finish: async () => {
          const n = await reader.finish()
          finished = true
          return n
        },
        close: async () => {
          await reader.close()
          if (own) await hasher.close()
          await fh.close().catch(() => {})
        },
      },
      sourceDigest: async () => await digest(),
      bytesRead: () => (finished ? source.size! : 0),
    }
  }
  // A download of a seekable .zst: its table comes first, by a Range request for the
  // file's last bytes; the download itself is then cut into frames.
  const table = format === 'zstd' && source.readAt && source.size !== undefined ? await readSeekTable(source.readAt.bind(source), source.size, source.name) : undefined
  const hash = createHash('sha256')
  let digest: string | undefined
  const chunks = hashTap(source.stream(), hash)
  const reader =
    format === 'raw'
      ? new StreamImageReader(chunks, source.size)
      : table && framesFit(table)
        ? await startFramedZstd({ stream: chunks }, table, framedOptions(source, opts))
        : await (await decompressor())(format, chunks, { signal: opts.signal, spoolDir: opts.spoolDir, sourceName: source.name })
  return {
    reader,
    // Only once the source was read to its end: finish() drains it.
    sourceDigest: async () => (digest ??= hash.digest('hex')),
    bytesRead: () => source.bytesRead,
  }
}

function framedOptions(source: ByteSource, opts: OpenImageOptions): FramedOptions {
  return { ...(opts.wanted ? { wanted: opts.wanted } : {}), sourceName: source.name }
}

async function openQcow2Image(source: ByteSource, opts: OpenImageOptions): Promise<OpenedImage> {
  const { openQcow2 } = await import('../io/qcow2-reader.js')
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
    return { reader, sourceDigest: async () => (pass ? await pass : undefined), bytesRead: () => read + source.bytesRead }
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
  const hash = createHash('sha256')
  let size: number
  try {
    for await (const chunk of hashTap(source.stream(), hash)) await fh.write(chunk)
    size = (await fh.stat()).size
  } catch (e) {
    await fh.close()
    throw e
  }
  const readAt = async (offset: number, length: number): Promise<Uint8Array> => {
    const buf = Buffer.alloc(Math.max(0, Math.min(length, size - offset)))
    return buf.subarray(0, await readFully(fh, buf, offset))
  }
  const inner = await openQcow2(readAt, source.name).catch(async (e: unknown) => {
    await fh.close()
    throw e
  })
  const digest = hash.digest('hex')
  return {
    reader: {
      knownSize: inner.knownSize,
      read: (o, d) => inner.read(o, d),
      finish: () => inner.finish(),
      close: async () => {
        await fh.close().catch(() => {})
      },
    },
    sourceDigest: async () => digest,
    bytesRead: () => source.bytesRead,
  }
}

async function hashAll(chunks: AsyncIterable<Uint8Array>): Promise<string> {
  const hash = createHash('sha256')
  for await (const c of chunks) hash.update(c)
  return hash.digest('hex')
}
