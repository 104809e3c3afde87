// A byte range of an open file written to an HTTP response through two buffers that are
// reused for the whole response: a read fills one while the other is being written, and a
// buffer is read into again only once its write has completed (the write callback). So a
// download holds at most two buffers, whatever its length, and allocates nothing per chunk.
// fs.ReadStream allocates a fresh buffer for every chunk: under 128 concurrent downloads
// serve spent a fifth of its time allocating them and collecting them again (a CPU profile
// of `make bench-serve`), and its RSS grew with the number of clients.

import { read } from 'node:fs'
import type { ServerResponse } from 'node:http'

/** Bytes per read and per write. */
export const SEND_CHUNK = 256 * 1024

/**
 * Writes bytes `start`…`end` (inclusive) of the file open as `fd` to `res`, then ends it.
 * Rejects when the client goes away, `signal` aborts, or the file is shorter than the range.
 */
export async function sendRange(
  fd: number,
  res: ServerResponse,
  start: number,
  end: number,
  signal?: AbortSignal,
): Promise<void> {
  const buffers = [Buffer.allocUnsafeSlow(SEND_CHUNK), Buffer.allocUnsafeSlow(SEND_CHUNK)]
  const writes: (Promise<void> | undefined)[] = [undefined, undefined]
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
    let pos = start
    for (let i = 0; pos <= end; i ^= 1) {
      await Promise.race([writes[i], closed])
      const buffer = buffers[i]!
      const n = await Promise.race([readAt(fd, buffer, Math.min(SEND_CHUNK, end - pos + 1), pos), closed])
      if (n === 0) throw new Error(`the file ended at byte ${pos}, before the range's end ${end}`)
      pos += n
      writes[i] = new Promise<void>((resolve, reject) => {
        res.write(n === SEND_CHUNK ? buffer : buffer.subarray(0, n), (e) => (e ? reject(e) : resolve()))
      })
      // A write that fails is seen when its buffer is next wanted, or at the end.
      writes[i]!.catch(() => {})
    }
    await Promise.race([Promise.all(writes), closed])
    await Promise.race([new Promise<void>((resolve) => res.end(resolve)), closed])
  } finally {
    res.off('close', onClose)
    signal?.removeEventListener('abort', onAbort)
  }
}

function readAt(fd: number, buffer: Buffer, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => read(fd, buffer, 0, length, position, (e, n) => (e ? reject(e) : resolve(n))))
}
