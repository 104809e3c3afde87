// A disk (block device) or disk image file opened for positional writes. Writes from
// aligned memory at aligned offsets go through O_DIRECT when the target allows it (no
// second copy in the page cache, and read-back really reads the device); anything else
// goes through an ordinary buffered descriptor on the same target. Block devices are
// opened O_EXCL, which the kernel refuses (EBUSY) while the device or one of its
// partitions is mounted or held by device-mapper or md, and which keeps them from
// being claimed while we write.

import { constants, promises as fsp, type Stats } from 'node:fs'
import { DeviceError } from '../errors.js'
import { alignedBytes, isAligned } from './aligned-memory.js'
import { readFully } from './read-fully.js'

/** How a target was opened. */
export interface TargetOpenOptions {
  /** Try O_DIRECT for aligned I/O (default true). */
  direct?: boolean
}

/** An open target with positional, aligned, short-write-safe I/O and a sync. */
export class TargetDevice {
  private constructor(
    readonly path: string,
    readonly isBlockDevice: boolean,
    /** The logical sector size writes are aligned to. */
    readonly sectorSize: number,
    private readonly buffered: fsp.FileHandle,
    private readonly directFd: fsp.FileHandle | undefined,
  ) {}

  /** Whether aligned I/O bypasses the page cache. */
  get direct(): boolean {
    return this.directFd !== undefined
  }

  /** Opens `path` read-write, exclusively when it is a block device. */
  static async open(path: string, sectorSize: number, opts: TargetOpenOptions = {}): Promise<TargetDevice> {
    let st: Stats
    try {
      st = await fsp.stat(path)
    } catch (e) {
      throw deviceError(`Cannot open "${path}"`, e)
    }
    const block = st.isBlockDevice()
    if (!block && !st.isFile())
      throw new DeviceError('TARGET_INVALID', `Cannot open "${path}": not a block device or a regular file`)
    const base = constants.O_RDWR | (block ? constants.O_EXCL : 0)
    let buffered: fsp.FileHandle
    try {
      buffered = await fsp.open(path, base)
    } catch (e) {
      throw deviceError(`Cannot open "${path}" for writing`, e)
    }
    let direct: fsp.FileHandle | undefined
    if (opts.direct !== false) {
      // A second exclusive open by the same process fails, so the direct one is not O_EXCL:
      // the buffered descriptor already holds the claim.
      direct = await fsp.open(path, constants.O_RDWR | constants.O_DIRECT).catch(() => undefined)
    }
    return new TargetDevice(path, block, sectorSize, buffered, direct)
  }

  /** Writes all of `bytes` at `offset`, looping on short writes. */
  async write(offset: number, bytes: Uint8Array): Promise<void> {
    const fh = this.canDirect(offset, bytes) ? this.directFd! : this.buffered
    let done = 0
    while (done < bytes.length) {
      let n: number
      try {
        ;({ bytesWritten: n } = await fh.write(bytes, done, bytes.length - done, offset + done))
      } catch (e) {
        throw deviceError(`Cannot write to "${this.path}" at byte ${offset + done}`, e)
      }
      if (n === 0)
        throw new DeviceError(
          'DEVICE_IO',
          `Cannot write to "${this.path}" at byte ${offset + done}: the device accepted no bytes`,
        )
      done += n
    }
  }

  /** Fills `dst` from `offset`, looping on short reads; returns bytes read (short only at the end of the target). */
  async read(offset: number, dst: Uint8Array): Promise<number> {
    const fh = this.canDirect(offset, dst) ? this.directFd! : this.buffered
    try {
      return await readFully(fh, dst, offset)
    } catch (e) {
      throw deviceError(`Cannot read "${this.path}" (${dst.length} bytes at byte ${offset})`, e)
    }
  }

  /** Writes `length` zero bytes at `offset` (explicitly, not by discard). */
  async writeZeros(offset: number, length: number): Promise<void> {
    const chunk = Math.min(length, 4 << 20)
    const zeros = alignedBytes(chunk)
    for (let at = 0; at < length; at += chunk) {
      await this.write(offset + at, zeros.subarray(0, Math.min(chunk, length - at)))
    }
  }

  /** fdatasync: everything written so far is on stable storage (the device's cache flushed). */
  async sync(): Promise<void> {
    try {
      await this.buffered.datasync()
      if (this.directFd) await this.directFd.datasync()
    } catch (e) {
      throw deviceError(`Cannot sync "${this.path}"`, e)
    }
  }

  /** Closes both descriptors; safe to call twice. */
  async close(): Promise<void> {
    await Promise.allSettled([this.buffered.close(), this.directFd?.close()])
  }

  private canDirect(offset: number, bytes: Uint8Array): boolean {
    return (
      this.directFd !== undefined &&
      offset % this.sectorSize === 0 &&
      bytes.length % this.sectorSize === 0 &&
      isAligned(bytes)
    )
  }
}

/** A DeviceError for a failed system call, keeping errno in the message (EBUSY is a busy device). */
export function deviceError(action: string, e: unknown): DeviceError {
  const err = e as NodeJS.ErrnoException
  const code = err?.code
  if (code === 'EBUSY') {
    return new DeviceError(
      'DEVICE_BUSY',
      `${action}: the device is in use (mounted, or held by device-mapper, md or another program)`,
      {
        hint: 'unmount it, stop what holds it (swapoff, vgchange -an, mdadm --stop), and retry',
        cause: e,
      },
    )
  }
  if (code === 'ENOENT') return new DeviceError('NOT_FOUND', `${action}: no such file or device`, { cause: e })
  if (code === 'EACCES' || code === 'EPERM')
    return new DeviceError('DEVICE_IO', `${action}: permission denied`, { hint: 'run as root', cause: e })
  return new DeviceError('DEVICE_IO', `${action}: ${err?.message ?? String(e)}`, { cause: e })
}
