// A qcow2 image read as the disk it describes, front to back, from a random-access source
// (a file, or an HTTP server with Range support). Unallocated and zero clusters (and, with
// extended L2 entries, subclusters) read as zeros without touching the source; allocated
// data that follows itself on the host is read in one request; compressed clusters are
// inflated (raw deflate) or decompressed (one zstd frame, by the native addon, as qemu's
// qcow2_zstd_decompress does: the frame must fill the cluster exactly), qcow2.txt
// "Compressed Clusters Descriptor". The header, L1 table and each L2 table are decoded by
// src/disk/qcow2.ts, so a damaged image fails with FORMAT_QCOW2 before or while reading.

import { inflateRawSync } from 'node:zlib'
import {
  decodeL1Table,
  decodeL2Table,
  decodeQcow2Header,
  qcow2L1Bytes,
  type Qcow2Header,
  type Qcow2L1Entry,
  type Qcow2L2Entry,
} from '../disk/qcow2.js'
import { FormatError, InputError } from '../errors.js'
import type { ImageReader } from './image-reader.js'
import type { ReadAt } from './read-fully.js'
import { zstdNative, type ZstdNative } from './zstd-native.js'

/** The header bytes asked for first: enough for any header and its backing file name. */
const HEAD_BYTES = 65536

/** Opens a qcow2 image over `readAt`: reads and checks the header and the L1 table. */
export async function openQcow2(readAt: ReadAt, sourceName: string): Promise<ImageReader & { header: Qcow2Header }> {
  const header = decodeQcow2Header(await readAt(0, HEAD_BYTES))
  if (header.backingFileOffset !== 0n) {
    throw new FormatError(
      'FORMAT_QCOW2',
      `Cannot install "${sourceName}": it is a qcow2 overlay on the backing file "${header.backingFile ?? '?'}"`,
      {
        hint: 'flatten it first: qemu-img convert -O qcow2 OVERLAY FLAT.qcow2',
      },
    )
  }
  // zstd clusters need the native addon: loaded now, so that a missing one fails before any read.
  const zstd = header.compressionType === 'zstd' ? zstdNative() : undefined
  const l1Bytes = await readAt(Number(header.l1TableOffset), qcow2L1Bytes(header))
  const l1 = decodeL1Table(l1Bytes, header)
  return new Qcow2Reader(readAt, header, l1, sourceName, zstd)
}

/** Bit x of a 32-bit mask. */
const has = (mask: number, x: number): boolean => ((mask >>> x) & 1) === 1
/** The first subcluster from `from` whose allocation bit differs from subcluster `from`'s (or `count`). */
function runEnd(mask: number, from: number, count: number): number {
  const want = has(mask, from)
  let x = from + 1
  while (x < count && has(mask, x) === want) x++
  return x
}

class Qcow2Reader implements ImageReader {
  readonly knownSize: number
  private l2Index = -1
  private l2: Qcow2L2Entry[] = []
  /** The last compressed cluster decompressed: a read that ends inside it is followed by one that starts there. */
  private unpacked: { cluster: number; bytes: Uint8Array } | undefined

  constructor(
    private readonly readAt: ReadAt,
    readonly header: Qcow2Header,
    private readonly l1: Qcow2L1Entry[],
    private readonly sourceName: string,
    private readonly zstd: ZstdNative | undefined,
  ) {
    this.knownSize = Number(header.size)
  }

  private async entry(cluster: number): Promise<Qcow2L2Entry | undefined> {
    const perL2 = this.header.clusterSize / this.header.l2EntryBytes
    const l1Index = Math.floor(cluster / perL2)
    if (l1Index !== this.l2Index) {
      const e = this.l1[l1Index]
      if (!e || e.l2Offset === 0n) this.l2 = []
      else
        this.l2 = decodeL2Table(
          await this.readFull(Number(e.l2Offset), this.header.clusterSize, `L2 table ${l1Index}`),
          this.header,
        )
      this.l2Index = l1Index
    }
    return this.l2[cluster % perL2]
  }

  private async readFull(offset: number, length: number, what: string): Promise<Uint8Array> {
    const b = await this.readAt(offset, length)
    if (b.length < length) {
      throw new InputError(
        'SOURCE_TRUNCATED',
        `Cannot read ${what} of "${this.sourceName}" at byte ${offset}: the file ends at byte ${offset + b.length}`,
        { hint: 'the qcow2 file is incomplete: download it again' },
      )
    }
    return b
  }

  async read(offset: number, dst: Uint8Array): Promise<number> {
    const cs = this.header.clusterSize
    const sub = 2 ** this.header.subclusterBits
    const subs = cs / sub
    const want = Math.max(0, Math.min(dst.length, this.knownSize - offset))
    let done = 0
    while (done < want) {
      const at = offset + done
      const cluster = Math.floor(at / cs)
      const inCluster = at % cs
      const e = await this.entry(cluster)
      if (e?.kind === 'compressed') {
        const n = Math.min(want - done, cs - inCluster)
        const plain = await this.decompress(e, cluster)
        dst.set(plain.subarray(inCluster, inCluster + n), done)
        done += n
        continue
      }
      // A run of subclusters that are all allocated, or all not (zeros): one subcluster per
      // cluster without extended L2 entries.
      const allocated = e?.allocated ?? 0
      const x = Math.floor(inCluster / sub)
      const end = runEnd(allocated, x, subs)
      let n = Math.min(want - done, end * sub - inCluster)
      if (!has(allocated, x)) {
        dst.fill(0, done, done + n)
      } else {
        // Extend over following guest clusters whose allocated start is stored right after this run on the host.
        const host = Number(e!.offset) + inCluster
        let next = cluster + 1
        let reachesEnd = end === subs
        while (reachesEnd && done + n < want) {
          const f = await this.entry(next)
          if (
            f?.kind !== 'data' ||
            !has(f.allocated, 0) ||
            Number(f.offset) !== host - inCluster + (next - cluster) * cs
          )
            break
          const run = runEnd(f.allocated, 0, subs)
          n = Math.min(want - done, n + run * sub)
          reachesEnd = run === subs
          next++
        }
        // entry() may have moved to another L2 table: that is fine, reads only go forward.
        const b = await this.readFull(host, n, `cluster ${cluster}`)
        dst.set(b, done)
      }
      done += n
    }
    return done
  }

  /** A compressed cluster's bytes, exactly one cluster: qemu refuses a cluster that decompresses to less or more. */
  private async decompress(e: Qcow2L2Entry, cluster: number): Promise<Uint8Array> {
    if (this.unpacked?.cluster === cluster) return this.unpacked.bytes
    const bytes = await this.decompressOnce(e, cluster)
    this.unpacked = { cluster, bytes }
    return bytes
  }

  private async decompressOnce(e: Qcow2L2Entry, cluster: number): Promise<Uint8Array> {
    const cs = this.header.clusterSize
    const packed = await this.readAt(Number(e.offset), e.compressedSize)
    const where = `compressed cluster ${cluster} of "${this.sourceName}" (host byte ${e.offset})`
    if (this.zstd) {
      const plain = new Uint8Array(cs)
      let n: number
      try {
        n = await this.zstd.decompressFirstFrame(packed, plain)
      } catch (err) {
        throw new FormatError('FORMAT_QCOW2', `Cannot decompress ${where}: zstd says "${(err as Error).message}"`, {
          hint: 'the qcow2 file is damaged: download it again, or check it with qemu-img check',
        })
      }
      if (n !== cs)
        throw new FormatError('FORMAT_QCOW2', `Cannot read ${where}: its zstd frame holds ${n} bytes, expected ${cs}`)
      return plain
    }
    let plain: Uint8Array
    try {
      // The descriptor's sector count over-approximates the length: trailing bytes are ignored.
      plain = inflateRawSync(packed, { finishFlush: 2 /* Z_SYNC_FLUSH */ })
    } catch (err) {
      throw new FormatError('FORMAT_QCOW2', `Cannot inflate ${where}: ${(err as Error).message}`)
    }
    if (plain.length < cs)
      throw new FormatError(
        'FORMAT_QCOW2',
        `Cannot read ${where}: it inflates to ${plain.length} bytes, expected ${cs}`,
      )
    return plain
  }

  async finish(): Promise<number> {
    return this.knownSize
  }

  async close(): Promise<void> {}
}
