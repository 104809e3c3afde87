// A qcow2 image read as the disk it describes, front to back, from a random-access source
// (a file, or an HTTP server with Range support). Unallocated and zero clusters read as
// zeros without touching the source; data clusters that follow each other on the host are
// read in one request; compressed clusters are inflated (raw deflate, qcow2.txt
// "Compressed Clusters Descriptor"). The header, L1 table and each L2 table are decoded by
// src/disk/qcow2.ts, so a damaged image fails with FORMAT_QCOW2 before or while reading.

import { inflateRawSync } from 'node:zlib'
import { decodeL1Table, decodeL2Table, decodeQcow2Header, qcow2L1Bytes, type Qcow2Header, type Qcow2L1Entry, type Qcow2L2Entry } from '../disk/qcow2.js'
import { FormatError, InputError } from '../errors.js'
import type { ImageReader } from './image-reader.js'

/** Random access to the qcow2 file's bytes. */
export type ReadAt = (offset: number, length: number) => Promise<Uint8Array>

/** The header bytes asked for first: enough for any header and its backing file name. */
const HEAD_BYTES = 65536

/** Opens a qcow2 image over `readAt`: reads and checks the header and the L1 table. */
export async function openQcow2(readAt: ReadAt, sourceName: string): Promise<ImageReader & { header: Qcow2Header }> {
  const header = decodeQcow2Header(await readAt(0, HEAD_BYTES))
  if (header.backingFileOffset !== 0n) {
    throw new FormatError('FORMAT_QCOW2', `Cannot install "${sourceName}": it is a qcow2 overlay on the backing file "${header.backingFile ?? '?'}"`, {
      hint: 'flatten it first: qemu-img convert -O qcow2 OVERLAY FLAT.qcow2',
    })
  }
  if (header.compressionType !== 'deflate') {
    // Rare (qemu-img convert -c -o compression_type=zstd); zstd per cluster would need a
    // zstd library in-process, not the zstd program.
    throw new FormatError('FORMAT_QCOW2', `Cannot install "${sourceName}": its clusters are ${header.compressionType}-compressed`, {
      hint: 'recompress it with zlib: qemu-img convert -c -O qcow2 -o compression_type=zlib IN OUT, or convert it to raw',
    })
  }
  const l1Bytes = await readAt(Number(header.l1TableOffset), qcow2L1Bytes(header))
  const l1 = decodeL1Table(l1Bytes, header)
  return new Qcow2Reader(readAt, header, l1, sourceName)
}

class Qcow2Reader implements ImageReader {
  readonly knownSize: number
  private l2Index = -1
  private l2: Qcow2L2Entry[] = []

  constructor(
    private readonly readAt: ReadAt,
    readonly header: Qcow2Header,
    private readonly l1: Qcow2L1Entry[],
    private readonly sourceName: string,
  ) {
    this.knownSize = Number(header.size)
  }

  private async entry(cluster: number): Promise<Qcow2L2Entry | undefined> {
    const perL2 = this.header.clusterSize / 8
    const l1Index = Math.floor(cluster / perL2)
    if (l1Index !== this.l2Index) {
      const e = this.l1[l1Index]
      if (!e || e.l2Offset === 0n) this.l2 = []
      else this.l2 = decodeL2Table(await this.readFull(Number(e.l2Offset), this.header.clusterSize, `L2 table ${l1Index}`), this.header)
      this.l2Index = l1Index
    }
    return this.l2[cluster % perL2]
  }

  private async readFull(offset: number, length: number, what: string): Promise<Uint8Array> {
    const b = await this.readAt(offset, length)
    if (b.length < length) {
      throw new InputError('SOURCE_TRUNCATED', `Cannot read ${what} of "${this.sourceName}" at byte ${offset}: the file ends at byte ${offset + b.length}`, { hint: 'the qcow2 file is incomplete: download it again' })
    }
    return b
  }

  async read(offset: number, dst: Uint8Array): Promise<number> {
    const cs = this.header.clusterSize
    const want = Math.max(0, Math.min(dst.length, this.knownSize - offset))
    let done = 0
    while (done < want) {
      const at = offset + done
      const cluster = Math.floor(at / cs)
      const inCluster = at % cs
      const e = await this.entry(cluster)
      let n = Math.min(want - done, cs - inCluster)
      if (!e || e.kind === 'unallocated' || e.kind === 'zero') {
        dst.fill(0, done, done + n)
      } else if (e.kind === 'compressed') {
        const packed = await this.readAt(Number(e.offset), e.compressedSize)
        let plain: Uint8Array
        try {
          // The descriptor's sector count over-approximates the length: trailing bytes are ignored.
          plain = inflateRawSync(packed, { finishFlush: 2 /* Z_SYNC_FLUSH */ })
        } catch (err) {
          throw new FormatError('FORMAT_QCOW2', `Cannot inflate compressed cluster ${cluster} of "${this.sourceName}" (host byte ${e.offset}): ${(err as Error).message}`)
        }
        if (plain.length < inCluster + n) throw new FormatError('FORMAT_QCOW2', `Cannot read compressed cluster ${cluster} of "${this.sourceName}": it inflates to ${plain.length} bytes, expected ${cs}`)
        dst.set(plain.subarray(inCluster, inCluster + n), done)
      } else {
        // Extend over following guest clusters stored right after this one on the host.
        const host = Number(e.offset) + inCluster
        let next = cluster + 1
        while (done + n < want) {
          const f = await this.entry(next)
          if (!f || f.kind !== 'data' || Number(f.offset) !== host - inCluster + (next - cluster) * cs) break
          n = Math.min(want - done, n + cs)
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

  async finish(): Promise<number> {
    return this.knownSize
  }

  async close(): Promise<void> {}
}
