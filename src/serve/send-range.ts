// A byte range of an open file written to an HTTP response. Two ways:
//
// - Zero-copy (sendfile(2), native/send-file.c), when the response goes straight to a TCP
//   socket whose fd Node exposes and the addon is built: the kernel moves the file's pages
//   to the socket, the bytes never enter the process. serve copied every byte twice before
//   (read(2) into a buffer, write(2) out of it) and spent 7-9 times nginx's CPU per GiB
//   (docs/benchmarks.md, "serve at load"). Node's own stream must not write while sendfile
//   does, and the headers must be on the wire before the body: so the first piece of the
//   body goes through res.write, and sendfile runs only while Node has nothing queued
//   (res.writableLength 0). Then the addon's sendFile takes over the socket (a dup of its
//   fd: libuv watches the fd itself for Node's reads, and the dup stays this connection even
//   if Node closes its fd meanwhile): a poll on the event loop, and on each wake-up
//   sendfile(2) calls in C until the socket is full, corked meanwhile, as nginx's workers
//   do; JavaScript hears only of progress (every 8 MiB or second) and of the end. It is
//   cancelled when the response closes. Before it, a JavaScript loop made each call and a
//   promise and a native wait per full socket, and 128 clients got 0.83x nginx's throughput
//   (docs/benchmarks.md). Only the first piece is copied (sendRangeStats counts both).
// - Two buffers (the fallback: TLS, a socket without an fd, the addon missing, or
//   HWIMAGE_SERVE_SENDFILE=0): a read fills one while the other is being written, and a
//   buffer is read into again only once its write has completed (the write callback). So a
//   download holds at most two buffers, whatever its length, and allocates nothing per
//   chunk. fs.ReadStream allocates a fresh buffer for every chunk: under 128 concurrent
//   downloads serve spent a fifth of its time allocating them and collecting them again.

import { read, readSync } from 'node:fs'
import type { ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { type SendFileNative, sendFileNative, TransferState } from './send-file-native.js'

/** Bytes per read and per write of the copy path, and at most per sendfile(2) call. */
export const SEND_CHUNK = 256 * 1024
/** The piece written through Node first on the zero-copy path (the headers go with it). */
export const FIRST_PIECE = 64 * 1024

/** Body bytes sent by this process so far, by path, and the waits for a full socket (a test reads them). */
export const sendRangeStats = { sendfileBytes: 0, copiedBytes: 0, writableWaits: 0 }

/**
 * Writes bytes `start`…`end` (inclusive) of the file open as `fd` to `res`, then ends it.
 * Rejects when the client goes away, `signal` aborts, or the file is shorter than the range.
 * The caller has set the headers (writeHead with a content-length: the body is not chunked).
 */
export async function sendRange(
  fd: number,
  res: ServerResponse,
  start: number,
  end: number,
  signal?: AbortSignal,
): Promise<void> {
  // A response closed before it finished (the client went away, or destroyed below on abort)
  // may never call back a write: every wait races this.
  let fail: (e: Error) => void = () => {}
  const closed = new Promise<never>((_, reject) => (fail = reject))
  closed.catch(() => {})
  const onClose = () => {
    if (!res.writableFinished) fail(new Error('the client closed the connection'))
  }
  const onAbort = () => {
    fail(signal?.reason instanceof Error ? signal.reason : new Error('aborted'))
    res.destroy()
  }
  res.on('close', onClose)
  signal?.addEventListener('abort', onAbort, { once: true })
  try {
    if (signal?.aborted) onAbort()
    const native = sendFileNative()
    let pos = start
    if (native && socketFd(res) !== undefined) pos = await sendZeroCopy(native, fd, res, start, end, closed)
    if (pos <= end) await sendCopied(fd, res, pos, end, closed)
    await Promise.race([new Promise<void>((resolve) => res.end(resolve)), closed])
  } finally {
    res.off('close', onClose)
    signal?.removeEventListener('abort', onAbort)
  }
}

/** The fd of the TCP socket `res` writes to, or undefined (TLS, no socket, destroyed, a test's stand-in). */
function socketFd(res: ServerResponse): number | undefined {
  const socket = res.socket as (Socket & { _handle?: { fd?: unknown } | null; encrypted?: boolean }) | null
  if (!socket || socket.destroyed || socket.encrypted) return undefined
  const fd = socket._handle?.fd
  return typeof fd === 'number' && fd >= 0 ? fd : undefined
}

/** Whether sendfile may write to the socket now: Node has nothing queued, the body is not chunked, the response owns the socket. */
function socketIdle(res: ServerResponse): boolean {
  const r = res as ServerResponse & { chunkedEncoding?: boolean; socket: { _httpMessage?: unknown } | null }
  return res.headersSent && r.chunkedEncoding !== true && r.socket?._httpMessage === res && res.writableLength === 0
}

/** The zero-copy path; returns the position it stopped at (past `end` when done; before it when it handed over to the copy path). */
async function sendZeroCopy(
  native: SendFileNative,
  fd: number,
  res: ServerResponse,
  start: number,
  end: number,
  closed: Promise<never>,
): Promise<number> {
  const piece = Buffer.allocUnsafeSlow(Math.min(FIRST_PIECE, end - start + 1))
  // Read on the event loop, as sendfile reads the rest (a thread-pool read was a wake-up of
  // a pool thread that preempted this one, for 64 KiB mostly in the page cache). Written
  // through Node, awaited: the piece's bytes, and the headers before them, are in the kernel.
  const n = readSync(fd, piece, 0, piece.length, start)
  if (n === 0) throw new Error(`the file ended at byte ${start}, before the range's end ${end}`)
  await Promise.race([
    new Promise<void>((resolve, reject) =>
      res.write(piece.subarray(0, n), (e) => (e ? reject(clientGone(e)) : resolve())),
    ),
    closed,
  ])
  sendRangeStats.copiedBytes += n
  const pos = start + n
  if (pos > end) return pos
  const socketFdNow = socketFd(res)
  if (socketFdNow === undefined || !socketIdle(res)) return pos
  return await Promise.race([transfer(native, socketFdNow, fd, res, pos, end), closed])
}

/**
 * Bytes `start`…`end` by the addon's sendFile, on the event loop; resolves past `end`. A
 * transfer still running when the response closes is cancelled (the caller's race has
 * already rejected). Its progress keeps the socket's idle timeout (the route's
 * streamIdleMs, which counts Node's writes only) from firing while bytes flow.
 */
function transfer(
  native: SendFileNative,
  socket: number,
  fd: number,
  res: ServerResponse,
  start: number,
  end: number,
): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let counted = 0
    let waited = 0
    const t = native.sendFile(socket, fd, start, end + 1, (state, sent, waits, error) => {
      sendRangeStats.sendfileBytes += sent - counted
      sendRangeStats.writableWaits += waits - waited
      counted = sent
      waited = waits
      ;(res.socket as { _unrefTimer?: () => void } | null)?._unrefTimer?.()
      if (state === TransferState.Progress) return
      res.off('close', cancel)
      if (state === TransferState.Done) resolve(start + sent)
      else if (state === TransferState.Short)
        reject(new Error(`the file ended at byte ${start + sent}, before the range's end ${end}`))
      else reject(clientGone(error ?? new Error('sendfile failed')))
    })
    const cancel = () => native.cancel(t)
    res.once('close', cancel)
  })
}

/** The copy path: two buffers, reused. */
async function sendCopied(fd: number, res: ServerResponse, start: number, end: number, closed: Promise<never>) {
  const buffers = [Buffer.allocUnsafeSlow(SEND_CHUNK), Buffer.allocUnsafeSlow(SEND_CHUNK)]
  const writes: (Promise<void> | undefined)[] = [undefined, undefined]
  let pos = start
  for (let i = 0; pos <= end; i ^= 1) {
    await Promise.race([writes[i], closed])
    const buffer = buffers[i]!
    const n = await Promise.race([readAt(fd, buffer, Math.min(SEND_CHUNK, end - pos + 1), pos), closed])
    if (n === 0) throw new Error(`the file ended at byte ${pos}, before the range's end ${end}`)
    pos += n
    sendRangeStats.copiedBytes += n
    writes[i] = new Promise<void>((resolve, reject) => {
      res.write(n === SEND_CHUNK ? buffer : buffer.subarray(0, n), (e) => (e ? reject(e) : resolve()))
    })
    // A write that fails is seen when its buffer is next wanted, or at the end.
    writes[i]!.catch(() => {})
  }
  await Promise.race([Promise.all(writes), closed])
}

/** A write's EPIPE or ECONNRESET as the error a closed response gives; other errors as they are. */
function clientGone(e: Error): Error {
  const code = (e as NodeJS.ErrnoException).code
  return code === 'EPIPE' || code === 'ECONNRESET' ? new Error('the client closed the connection', { cause: e }) : e
}

function readAt(fd: number, buffer: Buffer, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => read(fd, buffer, 0, length, position, (e, n) => (e ? reject(e) : resolve(n))))
}
