// Where an image comes from: a local file, an http(s) URL (see http-source.ts) or stdin.
// Every source streams its bytes once from the start; files and HTTP servers with Range
// support also read at any offset (qcow2 needs that), and every source can show its first
// bytes before streaming (format detection by magic bytes).

import { createReadStream, promises as fsp } from 'node:fs'
import path from 'node:path'
import type { Readable } from 'node:stream'
import { InputError } from '../errors.js'
import type { HttpOptions } from './http-source.js'
import { fileReadAt, type ReadAt } from './read-fully.js'

/** A readable image source. */
export interface ByteSource {
  /** What the user gave: a path, a URL or "-". */
  readonly name: string
  /** The name a SHA256SUMS file lists it under (last path segment); undefined for stdin. */
  readonly fileName: string | undefined
  readonly kind: 'file' | 'http' | 'stdin'
  /** Total bytes, when known before reading. */
  readonly size: number | undefined
  /** Bytes delivered by stream() so far. */
  readonly bytesRead: number
  /** The first `n` bytes (fewer if the source is shorter), without consuming them. */
  head(n: number): Promise<Uint8Array>
  /** Every byte from the start; call once. */
  stream(): AsyncIterable<Uint8Array>
  /** `length` bytes at `offset` (fewer at the end); only for sources with random access. */
  readAt?: ReadAt
  close(): Promise<void>
}

/** Options for openByteSource. */
export interface OpenSourceOptions extends HttpOptions {
  /** What "-" reads (default process.stdin). */
  stdin?: Readable
}

const READ_CHUNK = 1 << 20

/** Opens a path, an http(s) URL, or "-" for stdin. */
export async function openByteSource(spec: string, opts: OpenSourceOptions = {}): Promise<ByteSource> {
  // Loaded when needed: node:https alone takes ~12 ms to load, a third of Node's own start.
  if (/^https?:\/\//i.test(spec)) return await (await import('./http-source.js')).openHttpSource(spec, opts)
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(spec)) {
    throw new InputError('USAGE', `Cannot open source "${spec}": only http:// and https:// URLs are supported`)
  }
  if (spec === '-') return stdinSource(opts.stdin ?? process.stdin, opts.signal)
  return await fileSource(spec)
}

async function fileSource(file: string): Promise<ByteSource> {
  let fh: fsp.FileHandle
  try {
    fh = await fsp.open(file, 'r')
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    throw new InputError(
      code === 'ENOENT' ? 'NOT_FOUND' : 'USAGE',
      `Cannot open source "${file}": ${code === 'ENOENT' ? 'no such file' : (e as Error).message}`,
      { cause: e },
    )
  }
  const st = await fh.stat()
  if (!st.isFile()) {
    await fh.close()
    throw new InputError('USAGE', `Cannot open source "${file}": not a regular file`, {
      hint: 'give an image file, a URL, or "-" to read stdin',
    })
  }
  let bytesRead = 0
  const readAt = fileReadAt(fh, st.size)
  return {
    name: file,
    fileName: path.basename(file),
    kind: 'file',
    size: st.size,
    get bytesRead() {
      return bytesRead
    },
    head: (n) => readAt(0, n),
    async *stream() {
      for await (const chunk of createReadStream(file, { highWaterMark: READ_CHUNK })) {
        bytesRead += (chunk as Buffer).length
        yield chunk as Buffer
      }
    },
    readAt,
    close: () => fh.close().catch(() => {}),
  }
}

function stdinSource(input: Readable, signal?: AbortSignal): ByteSource {
  // A read blocked on stdin ends only when stdin is destroyed: do that on abort.
  signal?.addEventListener('abort', () => input.destroy(), { once: true })
  const it = input[Symbol.asyncIterator]() as AsyncIterator<Buffer>
  const peeked: Buffer[] = []
  let peekedBytes = 0
  let ended = false
  let bytesRead = 0
  return {
    name: '-',
    fileName: undefined,
    kind: 'stdin',
    size: undefined,
    get bytesRead() {
      return bytesRead
    },
    async head(n) {
      while (peekedBytes < n && !ended) {
        const r = await it.next()
        if (r.done) ended = true
        else {
          peeked.push(r.value)
          peekedBytes += r.value.length
        }
      }
      return Buffer.concat(peeked).subarray(0, n)
    },
    async *stream() {
      while (peeked.length > 0) {
        const chunk = peeked.shift()!
        bytesRead += chunk.length
        yield chunk
      }
      while (!ended) {
        const r = await it.next()
        if (r.done) break
        bytesRead += r.value.length
        yield r.value
      }
    },
    async close() {
      // Not it.return(): with a read pending it would wait for data that may never come.
      input.destroy()
    },
  }
}
