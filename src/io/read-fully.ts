// Positional reads that loop on short reads: FileHandle.read() may return fewer bytes than
// asked for (read(2) on a pipe, a spool still growing, a signal) and 0 only at the end.
// Also the one random-access type every reader of a file or a server shares (ReadAt), and
// the one way a file becomes one (fileReadAt): byte-source.ts, framed-zstd.ts and the
// qcow2 reader all read through it.

import type { FileHandle } from 'node:fs/promises'

/** Reads `length` bytes at `offset` (a file's pread, an HTTP Range request); fewer only at the end. */
export type ReadAt = (offset: number, length: number) => Promise<Uint8Array>

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

/** A file as a ReadAt; with `size` (the file's, when it is known not to grow), no read asks for bytes past it. */
export function fileReadAt(fh: FileHandle, size?: number): ReadAt {
  return async (offset, length) => {
    const buf = Buffer.allocUnsafe(size === undefined ? length : Math.max(0, Math.min(length, size - offset)))
    return buf.subarray(0, await readFully(fh, buf, offset))
  }
}
