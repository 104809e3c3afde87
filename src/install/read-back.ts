// --verify: everything written is read back from the target and compared, after the final
// sync. Reads go through O_DIRECT into aligned memory when the target allows it, so they
// come from the device, not from the page cache that still holds what we wrote.

import { createHash } from 'node:crypto'
import { DeviceError, InterruptedError } from '../errors.js'
import { alignedBytes, type SlotPool } from '../io/aligned-memory.js'
import type { TargetDevice } from '../io/target-device.js'

/** Something written: either its digest or its bytes. */
export type WrittenItem =
  | { offset: number; length: number; sha256: string; label?: string }
  | { offset: number; bytes: Uint8Array; label?: string }

/** Reads every item back and compares; throws DEVICE_IO naming the first difference. Returns bytes read. */
export async function readBack(
  target: TargetDevice,
  pool: SlotPool,
  items: WrittenItem[],
  opts: { signal?: AbortSignal; onProgress?: (done: number, total: number) => void } = {},
): Promise<number> {
  const total = items.reduce((s, i) => s + ('bytes' in i ? i.bytes.length : i.length), 0)
  let done = 0
  const slot = await pool.acquire()
  try {
    for (const item of items) {
      if (opts.signal?.aborted) throw new InterruptedError('Interrupted while verifying')
      const length = 'bytes' in item ? item.bytes.length : item.length
      const what = item.label ?? `bytes ${item.offset}–${item.offset + length - 1}`
      if ('bytes' in item) {
        // Small (first MiB, backup GPT): read into an aligned copy and compare byte for byte.
        const got = alignedBytes(roundUp(length, target.sectorSize))
        const n = await target.read(item.offset, got.subarray(0, roundUp(length, target.sectorSize)))
        const at = firstDifference(got.subarray(0, Math.min(n, length)), item.bytes)
        if (at !== -1 || n < length)
          throw mismatch(target, `${what}: byte ${item.offset + (at === -1 ? n : at)} differs`)
        done += length
        opts.onProgress?.(done, total)
        continue
      }
      const hash = createHash('sha256')
      for (let off = 0; off < length; off += slot.length) {
        const want = Math.min(slot.length, length - off)
        const n = await target.read(item.offset + off, slot.subarray(0, want))
        if (n < want) throw mismatch(target, `${what}: the target ends at byte ${item.offset + off + n}`)
        hash.update(slot.subarray(0, want))
        done += want
        opts.onProgress?.(done, total)
      }
      const digest = hash.digest('hex')
      if (digest !== item.sha256) throw mismatch(target, `${what}: SHA-256 ${digest} read back, ${item.sha256} written`)
    }
  } finally {
    pool.release(slot)
  }
  return done
}

const roundUp = (n: number, to: number): number => Math.ceil(n / to) * to

function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length)
  if (Buffer.compare(Buffer.from(a.buffer, a.byteOffset, n), Buffer.from(b.buffer, b.byteOffset, n)) === 0) return -1
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i
  return -1
}

function mismatch(target: TargetDevice, what: string): DeviceError {
  return new DeviceError('DEVICE_IO', `Cannot verify "${target.path}": ${what}`, {
    hint: 'the disk did not keep what was written: check it (smartctl, dmesg) before using it',
  })
}
