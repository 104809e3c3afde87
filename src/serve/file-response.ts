// A file of a served directory (an image's build outputs, the deploy environment) as an
// HTTP response: GET and HEAD, one byte range (RFC 9110 §14: Range, 206, Content-Range,
// 416), If-Range against a strong ETag or Last-Modified (§13.1.5), streamed from disk.
// The installer's HTTP source (src/io/http-source.ts) resumes with `Range: bytes=N-` and
// `If-Range: <ETag>`. Only regular files directly inside the root are served: the name
// is checked, then its real path must sit in the root's real path (no symlink out), then
// it is opened with O_NOFOLLOW.
//
// The path lookups, the open, the fstat and the close are synchronous calls on the event
// loop, as nginx makes them in its workers: on a local disk they answer from the kernel's
// caches in microseconds, and each was a round trip through libuv's thread pool (six per
// request), whose thread, woken, preempted serve's own on these 2 cores thousands of times
// a round at 128 clients. The body's bytes are moved by sendfile(2) on the event loop too
// (send-range.ts). An image directory on a slow network filesystem would stall the loop
// for as long as a lookup takes there: serve the images from a local disk, or put an HTTP
// cache in front (docs/deploy.md).

import { closeSync, constants, fstatSync, openSync, realpathSync } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import path from 'node:path'
import { HttpError } from './http-util.js'
import { sendRange } from './send-range.js'

const FILE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,254}$/

/** A byte range to send, inclusive. */
export interface ByteRange {
  start: number
  end: number
}

/**
 * The range a Range header asks for in a file of `size` bytes: a range, "unsatisfiable"
 * (416), or undefined to send the whole file (no header, a unit other than bytes, or
 * several ranges, which a server may answer with the whole representation, §14.2).
 */
export function parseRange(header: string | undefined, size: number): ByteRange | 'unsatisfiable' | undefined {
  if (!header) return undefined
  const m = /^bytes=\s*(\d*)\s*-\s*(\d*)\s*$/.exec(header)
  if (!m) return undefined
  const [, a, b] = m
  if (a === '' && b === '') return undefined
  if (a === '') {
    const n = Number(b)
    if (n === 0) return 'unsatisfiable'
    return { start: Math.max(0, size - n), end: size - 1 }
  }
  const start = Number(a)
  const end = b === '' ? size - 1 : Math.min(Number(b), size - 1)
  if (start >= size || (b !== '' && Number(b) < start)) return 'unsatisfiable'
  return { start, end }
}

/** Whether an If-Range validator still names this file (an ETag compared strongly, or the exact Last-Modified). */
export function ifRangeMatches(header: string | undefined, etag: string, lastModified: string): boolean {
  if (header === undefined) return true
  const v = header.trim()
  if (v.startsWith('W/')) return false
  if (v.startsWith('"')) return v === etag
  return v === lastModified
}

/**
 * Whether a conditional GET or HEAD may be answered 304 Not Modified (RFC 9110 §13.1.2,
 * §13.1.3, §13.2.2): If-None-Match (weak comparison, a list, or "*") names this file; or,
 * without If-None-Match, the file is not newer than If-Modified-Since (one-second dates).
 * A cache in front of serve (squid, docs/deploy.md "At fleet scale") revalidates the image
 * it holds this way, since serve marks files no-cache: a rebuilt image is noticed, an
 * unchanged one is not sent again.
 */
export function notModified(
  ifNoneMatch: string | undefined,
  ifModifiedSince: string | undefined,
  etag: string,
  mtimeMs: number,
): boolean {
  if (ifNoneMatch !== undefined) {
    const opaque = (t: string) => t.trim().replace(/^W\//, '')
    return ifNoneMatch.trim() === '*' || ifNoneMatch.split(',').some((t) => opaque(t) === opaque(etag))
  }
  if (ifModifiedSince === undefined) return false
  const since = Date.parse(ifModifiedSince)
  return Number.isFinite(since) && Math.floor(mtimeMs / 1000) * 1000 <= since
}

/** Sends `name` from `root` (GET or HEAD), honouring Range and If-Range; `headers` replace the defaults (content-type …). */
export async function sendFile(
  req: IncomingMessage,
  res: ServerResponse,
  root: string,
  name: string,
  signal?: AbortSignal,
  headers?: Record<string, string>,
): Promise<void> {
  if (!FILE_NAME_RE.test(name))
    throw new HttpError(
      400,
      'Cannot serve the file: the name must be letters, digits, ".", "_", "+" or "-", not starting with "."',
    )
  let rootReal: string
  try {
    rootReal = realpathSync.native(root)
  } catch {
    throw new HttpError(404, 'Cannot serve the file: the directory is missing')
  }
  let real: string
  try {
    real = realpathSync.native(path.join(rootReal, name))
  } catch {
    throw new HttpError(404, `Cannot serve "${name}": no such file`)
  }
  if (path.dirname(real) !== rootReal) throw new HttpError(404, `Cannot serve "${name}": no such file`)
  let fd: number
  try {
    fd = openSync(real, constants.O_RDONLY | constants.O_NOFOLLOW)
  } catch {
    throw new HttpError(404, `Cannot serve "${name}": no such file`)
  }
  try {
    const st = fstatSync(fd)
    if (!st.isFile()) throw new HttpError(404, `Cannot serve "${name}": not a file`)
    const size = st.size
    const etag = `"${size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}-${st.ino.toString(16)}"`
    const lastModified = st.mtime.toUTCString()
    const sent: Record<string, string | number> = {
      'accept-ranges': 'bytes',
      etag,
      'last-modified': lastModified,
      'content-type': contentTypeOf(name),
      'cache-control': 'no-cache',
      ...headers,
    }
    const header = (h: string | string[] | undefined) => (Array.isArray(h) ? h.join(', ') : h)
    if (notModified(header(req.headers['if-none-match']), header(req.headers['if-modified-since']), etag, st.mtimeMs)) {
      const { 'content-type': _type, ...validators } = sent
      res.writeHead(304, validators)
      res.end()
      return
    }
    const ifRange = req.headers['if-range']
    const asked = ifRangeMatches(Array.isArray(ifRange) ? ifRange[0] : ifRange, etag, lastModified)
      ? parseRange(req.headers.range, size)
      : undefined
    if (asked === 'unsatisfiable') {
      res.writeHead(416, { ...sent, 'content-range': `bytes */${size}`, 'content-length': 0 })
      res.end()
      return
    }
    const range = asked ?? { start: 0, end: size - 1 }
    const length = size === 0 ? 0 : range.end - range.start + 1
    res.writeHead(asked ? 206 : 200, {
      ...sent,
      'content-length': length,
      ...(asked ? { 'content-range': `bytes ${range.start}-${range.end}/${size}` } : {}),
    })
    if (req.method === 'HEAD' || length === 0) {
      res.end()
      return
    }
    await sendRange(fd, res, range.start, range.end, signal).catch(() => {
      // The client went away, or the route's idle timeout fired: nothing to answer.
      res.destroy()
    })
  } finally {
    closeSync(fd)
  }
}

function contentTypeOf(name: string): string {
  if (name === 'SHA256SUMS') return 'text/plain; charset=utf-8'
  if (name.endsWith('.json')) return 'application/json'
  if (name.endsWith('.bmap')) return 'application/xml'
  return 'application/octet-stream'
}
