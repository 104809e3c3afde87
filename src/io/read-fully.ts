// Positional reads that loop on short reads: FileHandle.read() may return fewer bytes than
// asked for (read(2) on a pipe, a spool still growing, a signal) and 0 only at the end.

import type { FileHandle } from 'node:fs/promises'

/** Fills `dst` from `position` of `fh`; returns the bytes read, fewer than `dst.length` only at the end. */
export async function readFully(fh: FileHandle, dst: Uint8Array, position: number): Promise<number> {
  let done = 0
  while (done < dst.length) {
    const { bytesRead } = await fh.read(dst, done, dst.length - done, position + done)
    if (bytesRead === 0) break
    done += bytesRead
  }
  return done
}
