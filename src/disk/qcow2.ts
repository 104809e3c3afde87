// qcow2 header and cluster mapping: qemu's docs/interop/qcow2.txt (versions 2 and 3). All
// numbers big-endian. Guest clusters map through a contiguous L1 table to one-cluster L2
// tables; an L2 entry is a standard cluster (host offset, or reads-as-zero in v3) or a
// compressed one (byte offset + 512-byte sector count; one raw-deflate stream, or with
// compression_type 1 one zstd frame, either followed by padding). With extended L2 entries
// (incompatible bit 4, "Extended L2 Entries") an entry is 128 bits: the standard descriptor
// (its bit 0 unused) and a bitmap splitting a standard cluster into 32 subclusters, each
// allocated, reads-as-zero or unallocated; compressed clusters have no subclusters. Scope:
// reading standalone images. Encryption and external data files are refused.

import { FormatError } from '../errors.js'

/** Header fields, named as in qcow2.txt "== Header ==". */
const Off = {
  magic: 0,
  version: 4,
  backing_file_offset: 8,
  backing_file_size: 16,
  cluster_bits: 20,
  size: 24,
  crypt_method: 32,
  l1_size: 36,
  l1_table_offset: 40,
  refcount_table_offset: 48,
  refcount_table_clusters: 56,
  nb_snapshots: 60,
  snapshots_offset: 64,
  // version 3 and later
  incompatible_features: 72,
  compatible_features: 80,
  autoclear_features: 88,
  refcount_order: 96,
  header_length: 100,
  // additional fields, present when header_length is past them
  compression_type: 104,
} as const

/** "QFI\xfb". */
export const QCOW2_MAGIC = 0x514649fb
const V2_HEADER_LENGTH = 72
const V3_MIN_HEADER_LENGTH = 104
const MIN_CLUSTER_BITS = 9
/** qcow2.txt, cluster_bits: "if the image has Extended L2 Entries then cluster_bits must be at least 14". */
const MIN_EXTENDED_L2_CLUSTER_BITS = 14
/** Extended L2 entries split a standard cluster into 32 subclusters. */
const SUBCLUSTER_BITS_PER_CLUSTER = 5
const L2_ENTRY_BYTES = 8
const EXTENDED_L2_ENTRY_BYTES = 16
// qemu's implementation limits (qcow2.h: MAX_CLUSTER_BITS, QCOW_MAX_L1_SIZE): no image qemu can open exceeds them.
const MAX_CLUSTER_BITS = 21
const MAX_L1_BYTES = 32 << 20
const MAX_BACKING_FILE_SIZE = 1023
const V2_REFCOUNT_ORDER = 4
const MAX_REFCOUNT_ORDER = 6

/** incompatible_features bits. */
const Incompat = { dirty: 0n, corrupt: 1n, dataFile: 2n, compressionType: 3n, extendedL2: 4n } as const
const KNOWN_INCOMPAT = 0b11111n
const CRYPT_METHODS: Record<number, string> = { 1: 'AES', 2: 'LUKS' }
const COMPRESSION_TYPES = ['deflate', 'zstd'] as const

/** How compressed clusters are compressed: 0 = zlib (raw deflate, no zlib header), 1 = zstd (one frame). */
export type Qcow2CompressionType = (typeof COMPRESSION_TYPES)[number]

/** A decoded qcow2 header; feature words are kept whole, the bits that matter are spelled out. */
export interface Qcow2Header {
  version: 2 | 3
  backingFileOffset: bigint
  backingFileSize: number
  /** The backing file name, when the bytes given include it; undefined without a backing file. */
  backingFile: string | undefined
  clusterBits: number
  clusterSize: number
  /** Virtual disk size in bytes. */
  size: bigint
  l1Size: number
  l1TableOffset: bigint
  refcountTableOffset: bigint
  refcountTableClusters: number
  nbSnapshots: number
  snapshotsOffset: bigint
  incompatibleFeatures: bigint
  compatibleFeatures: bigint
  autoclearFeatures: bigint
  refcountOrder: number
  headerLength: number
  compressionType: Qcow2CompressionType
  /** Incompatible bit 0: refcounts may be stale (lazy refcounts). Mapping and data are still valid to read. */
  dirty: boolean
  /** Incompatible bit 4: 128-bit L2 entries with a subcluster bitmap. */
  extendedL2: boolean
  /** log2 of the subcluster size: clusterBits − 5 with extended L2 entries, else clusterBits (one "subcluster" per cluster). */
  subclusterBits: number
  /** Bytes per L2 entry: 8, or 16 with extended L2 entries. */
  l2EntryBytes: number
}

/** One L1 entry: where an L2 table is (0 = none: its clusters are unallocated). */
export interface Qcow2L1Entry {
  l2Offset: bigint
  /** Bit 63: the L2 table's refcount is exactly one. */
  copied: boolean
}

/**
 * One L2 entry (guest cluster). Unallocated: offset 0, neither compressed nor zero. With
 * extended L2 entries, 'data' means at least one subcluster is allocated, 'zero' that every
 * subcluster reads as zeros, 'unallocated' neither (unallocated subclusters read as zeros
 * here, since images with a backing file are refused).
 */
export interface Qcow2L2Entry {
  kind: 'unallocated' | 'data' | 'zero' | 'compressed'
  /** Host offset: of the cluster (data, or preallocated zero), or of the first compressed byte. */
  offset: bigint
  compressed: boolean
  /** Compressed clusters: the most bytes the data can span, (sectors + 1) × 512 − (offset mod 512); 0 otherwise. */
  compressedSize: number
  /** Reads as zeros (v3 standard cluster, bit 0; with extended L2 entries, every subcluster's zero bit). */
  zero: boolean
  /**
   * Bit x set: subcluster x reads from the host cluster at offset + x × 2^subclusterBits. Without
   * extended L2 entries the cluster is one subcluster: 1 for 'data', else 0.
   */
  allocated: number
}

const fail = (action: string, state: string, hint?: string): FormatError =>
  new FormatError('FORMAT_QCOW2', `Cannot ${action}: ${state}`, hint === undefined ? {} : { hint })
const hex = (n: bigint | number): string => `0x${n.toString(16)}`
const bit = (word: bigint, n: bigint): boolean => ((word >> n) & 1n) === 1n
const bitsOf = (word: bigint): number[] => Array.from({ length: 64 }, (_, i) => i).filter((i) => bit(word, BigInt(i)))

/** Decodes and checks a qcow2 header from the image's first bytes (at least the header; the first cluster to get the backing file name). */
export function decodeQcow2Header(bytes: Uint8Array): Qcow2Header {
  const action = 'decode qcow2 header'
  if (bytes.length < V2_HEADER_LENGTH)
    throw fail(action, `expected at least ${V2_HEADER_LENGTH} bytes, got ${bytes.length}`)
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.length)
  const magic = v.getUint32(Off.magic, false)
  if (magic !== QCOW2_MAGIC) throw fail(action, `expected magic ${hex(QCOW2_MAGIC)} ("QFI\\xfb"), got ${hex(magic)}`)
  const version = v.getUint32(Off.version, false)
  if (version !== 2 && version !== 3) throw fail(action, `expected version 2 or 3, got ${version}`)
  const v3 = version === 3
  if (v3 && bytes.length < V3_MIN_HEADER_LENGTH)
    throw fail(action, `expected at least ${V3_MIN_HEADER_LENGTH} bytes for version 3, got ${bytes.length}`)
  const clusterBits = v.getUint32(Off.cluster_bits, false)
  if (clusterBits < MIN_CLUSTER_BITS || clusterBits > MAX_CLUSTER_BITS) {
    throw fail(action, `expected cluster_bits from ${MIN_CLUSTER_BITS} to ${MAX_CLUSTER_BITS}, got ${clusterBits}`)
  }
  const clusterSize = 2 ** clusterBits
  const crypt = v.getUint32(Off.crypt_method, false)
  if (crypt !== 0) {
    throw fail(
      action,
      `expected an unencrypted image (crypt_method 0), got crypt_method ${crypt} (${CRYPT_METHODS[crypt] ?? 'unknown'})`,
      'decrypt it first: qemu-img convert --object secret,… --image-opts … -O qcow2',
    )
  }
  const headerLength = v3 ? v.getUint32(Off.header_length, false) : V2_HEADER_LENGTH
  if (v3 && (headerLength < V3_MIN_HEADER_LENGTH || headerLength % 8 !== 0 || headerLength > clusterSize)) {
    throw fail(
      action,
      `expected header_length a multiple of 8 from ${V3_MIN_HEADER_LENGTH} to ${clusterSize}, got ${headerLength}`,
    )
  }
  if (bytes.length < headerLength)
    throw fail(action, `expected at least header_length ${headerLength} bytes, got ${bytes.length}`)
  const incompatible = v3 ? v.getBigUint64(Off.incompatible_features, false) : 0n
  const unknown = incompatible & ~KNOWN_INCOMPAT
  if (unknown !== 0n)
    throw fail(action, `expected no unknown incompatible features, got bits ${bitsOf(unknown).join(', ')}`)
  if (bit(incompatible, Incompat.corrupt))
    throw fail(
      action,
      'expected an image not marked corrupt, got the corrupt bit set',
      'check and repair it: qemu-img check -r all IMAGE',
    )
  if (bit(incompatible, Incompat.dataFile))
    throw fail(action, 'expected the data in the image, got an external data file (incompatible bit 2)')
  const extendedL2 = bit(incompatible, Incompat.extendedL2)
  if (extendedL2 && clusterBits < MIN_EXTENDED_L2_CLUSTER_BITS) {
    throw fail(
      action,
      `expected cluster_bits of at least ${MIN_EXTENDED_L2_CLUSTER_BITS} with extended L2 entries (incompatible bit 4), got ${clusterBits}`,
    )
  }
  const l2EntryBytes = extendedL2 ? EXTENDED_L2_ENTRY_BYTES : L2_ENTRY_BYTES
  // compression_type is present when header_length is past it; bit 3 says it is not zlib (qcow2.txt, "Additional fields").
  const compressionCode = headerLength > Off.compression_type ? bytes[Off.compression_type]! : 0
  const nonDefault = bit(incompatible, Incompat.compressionType)
  if (nonDefault !== (compressionCode !== 0)) {
    throw fail(
      action,
      `expected compression_type ${nonDefault ? 'non-zero' : '0'} with incompatible bit 3 ${nonDefault ? 'set' : 'clear'}, got ${compressionCode}`,
    )
  }
  const compressionType = COMPRESSION_TYPES[compressionCode]
  if (compressionType === undefined)
    throw fail(action, `expected compression_type 0 (zlib) or 1 (zstd), got ${compressionCode}`)
  const refcountOrder = v3 ? v.getUint32(Off.refcount_order, false) : V2_REFCOUNT_ORDER
  if (refcountOrder > MAX_REFCOUNT_ORDER)
    throw fail(action, `expected refcount_order at most ${MAX_REFCOUNT_ORDER}, got ${refcountOrder}`)

  const size = v.getBigUint64(Off.size, false)
  const l1Size = v.getUint32(Off.l1_size, false)
  if (l1Size * 8 > MAX_L1_BYTES) throw fail(action, `expected l1_size at most ${MAX_L1_BYTES / 8}, got ${l1Size}`)
  // Each L1 entry maps one L2 table, i.e. clusterSize / l2EntryBytes clusters.
  const perL1 = BigInt(clusterSize) * BigInt(clusterSize / l2EntryBytes)
  const needed = (size + perL1 - 1n) / perL1
  if (BigInt(l1Size) < needed)
    throw fail(action, `expected l1_size of at least ${needed} for a virtual size of ${size} bytes, got ${l1Size}`)
  const cluster = BigInt(clusterSize)
  const aligned = (field: keyof typeof Off): bigint => {
    const x = v.getBigUint64(Off[field], false)
    if (x % cluster !== 0n) throw fail(action, `expected ${field} aligned to the ${clusterSize}-byte cluster, got ${x}`)
    return x
  }
  const l1TableOffset = aligned('l1_table_offset')
  if (l1Size > 0 && l1TableOffset === 0n)
    throw fail(action, `expected a non-zero l1_table_offset for l1_size ${l1Size}`)
  const refcountTableOffset = aligned('refcount_table_offset')
  const nbSnapshots = v.getUint32(Off.nb_snapshots, false)
  const snapshotsOffset = nbSnapshots > 0 ? aligned('snapshots_offset') : v.getBigUint64(Off.snapshots_offset, false)

  const backingFileOffset = v.getBigUint64(Off.backing_file_offset, false)
  const backingFileSize = v.getUint32(Off.backing_file_size, false)
  let backingFile: string | undefined
  if (backingFileOffset !== 0n) {
    const end = backingFileOffset + BigInt(backingFileSize)
    if (backingFileSize > MAX_BACKING_FILE_SIZE || end > cluster) {
      throw fail(
        action,
        `expected a backing file name of at most ${MAX_BACKING_FILE_SIZE} bytes inside the first cluster, got ${backingFileSize} bytes at ${backingFileOffset}`,
      )
    }
    if (end <= BigInt(bytes.length))
      backingFile = new TextDecoder().decode(bytes.subarray(Number(backingFileOffset), Number(end)))
  }
  return {
    version,
    backingFileOffset,
    backingFileSize: backingFileOffset === 0n ? 0 : backingFileSize,
    backingFile,
    clusterBits,
    clusterSize,
    size,
    l1Size,
    l1TableOffset,
    refcountTableOffset,
    refcountTableClusters: v.getUint32(Off.refcount_table_clusters, false),
    nbSnapshots,
    snapshotsOffset,
    incompatibleFeatures: incompatible,
    compatibleFeatures: v3 ? v.getBigUint64(Off.compatible_features, false) : 0n,
    autoclearFeatures: v3 ? v.getBigUint64(Off.autoclear_features, false) : 0n,
    refcountOrder,
    headerLength,
    compressionType,
    dirty: bit(incompatible, Incompat.dirty),
    extendedL2,
    subclusterBits: extendedL2 ? clusterBits - SUBCLUSTER_BITS_PER_CLUSTER : clusterBits,
    l2EntryBytes,
  }
}

/** Bytes of the active L1 table (read them at `l1TableOffset`). */
export function qcow2L1Bytes(h: Qcow2Header): number {
  return h.l1Size * 8
}

/** Where a guest byte offset is mapped: the L1 entry, the L2 entry in that table, and the offset inside the cluster. */
export function qcow2Locate(
  h: Qcow2Header,
  guestOffset: bigint,
): { l1Index: number; l2Index: number; offsetInCluster: number } {
  const cluster = guestOffset >> BigInt(h.clusterBits)
  const l2Bits = BigInt(h.clusterBits - Math.log2(h.l2EntryBytes))
  return {
    l1Index: Number(cluster >> l2Bits),
    l2Index: Number(cluster & ((1n << l2Bits) - 1n)),
    offsetInCluster: Number(guestOffset & (BigInt(h.clusterSize) - 1n)),
  }
}

// Bit masks shared by L1 and standard L2 entries: the host offset is bits 9–55.
const OFFSET_MASK = ((1n << 56n) - 1n) & ~((1n << 9n) - 1n)
const COPIED = 1n << 63n
const COMPRESSED = 1n << 62n
const ZERO = 1n

/** Decodes the active L1 table (`l1Size` × 8 bytes); reserved bits and misaligned L2 offsets are format errors. */
export function decodeL1Table(bytes: Uint8Array, h: Qcow2Header): Qcow2L1Entry[] {
  const action = 'decode qcow2 L1 table'
  const length = qcow2L1Bytes(h)
  if (bytes.length < length) throw fail(action, `expected ${length} bytes for ${h.l1Size} entries, got ${bytes.length}`)
  const v = new DataView(bytes.buffer, bytes.byteOffset, length)
  const cluster = BigInt(h.clusterSize)
  const out: Qcow2L1Entry[] = []
  for (let i = 0; i < h.l1Size; i++) {
    const e = v.getBigUint64(i * 8, false)
    const reserved = e & ~(OFFSET_MASK | COPIED)
    if (reserved !== 0n) throw fail(action, `expected reserved bits clear in entry ${i}, got ${hex(e)}`)
    const l2Offset = e & OFFSET_MASK
    if (l2Offset % cluster !== 0n)
      throw fail(action, `expected entry ${i}'s L2 table offset aligned to ${h.clusterSize} bytes, got ${l2Offset}`)
    out.push({ l2Offset, copied: (e & COPIED) !== 0n })
  }
  return out
}

/** Decodes one L2 table (one cluster) into its clusterSize / l2EntryBytes entries. */
export function decodeL2Table(bytes: Uint8Array, h: Qcow2Header): Qcow2L2Entry[] {
  const action = 'decode qcow2 L2 table'
  if (bytes.length < h.clusterSize)
    throw fail(action, `expected one ${h.clusterSize}-byte cluster, got ${bytes.length} bytes`)
  const v = new DataView(bytes.buffer, bytes.byteOffset, h.clusterSize)
  const cluster = BigInt(h.clusterSize)
  // Compressed descriptor: x = 62 - (cluster_bits - 8) offset bits, then the sector count up to bit 61.
  const x = BigInt(62 - (h.clusterBits - 8))
  const offsetMaskC = (1n << x) - 1n
  const sectorsMask = (1n << (62n - x)) - 1n
  // Bit 0 (reads as zero) exists in version 3 without extended L2 entries; the bitmap replaces it.
  const zeroBit = h.version === 3 && !h.extendedL2 ? ZERO : 0n
  const standardReserved = ~(OFFSET_MASK | COPIED | COMPRESSED | zeroBit) & ((1n << 64n) - 1n)
  const out: Qcow2L2Entry[] = []
  for (let i = 0; i < h.clusterSize / h.l2EntryBytes; i++) {
    const e = v.getBigUint64(i * h.l2EntryBytes, false)
    // Subcluster allocation bitmap (extended L2 entries): bits 0–31 allocated, 32–63 reads as zeros.
    const bitmap = h.extendedL2 ? v.getBigUint64(i * h.l2EntryBytes + 8, false) : 0n
    if ((e & COMPRESSED) !== 0n) {
      if ((e & COPIED) !== 0n) throw fail(action, `expected bit 63 clear on compressed entry ${i}, got ${hex(e)}`)
      if (bitmap !== 0n)
        throw fail(
          action,
          `expected a zero subcluster bitmap on compressed entry ${i} (compressed clusters have no subclusters), got ${hex(bitmap)}`,
        )
      const offset = e & offsetMaskC
      // With small clusters the offset field is wider than 56 bits; the upper bits must be 0 (qcow2.txt).
      if (offset >> 56n !== 0n)
        throw fail(action, `expected a compressed offset below 2^56 in entry ${i}, got ${hex(offset)}`)
      const sectors = Number((e >> x) & sectorsMask)
      out.push({
        kind: 'compressed',
        offset,
        compressed: true,
        compressedSize: (sectors + 1) * 512 - Number(offset & 511n),
        zero: false,
        allocated: 0,
      })
      continue
    }
    if ((e & standardReserved) !== 0n) throw fail(action, `expected reserved bits clear in entry ${i}, got ${hex(e)}`)
    const offset = e & OFFSET_MASK
    if (offset % cluster !== 0n)
      throw fail(action, `expected entry ${i}'s cluster offset aligned to ${h.clusterSize} bytes, got ${offset}`)
    if (h.extendedL2) {
      out.push(extendedEntry(i, offset, e, bitmap, action))
      continue
    }
    const zero = (e & ZERO) !== 0n
    // Offset 0 with bit 63 means host offset 0, which only an external data file can have.
    if (offset === 0n && !zero && (e & COPIED) !== 0n)
      throw fail(action, `expected a non-zero cluster offset with bit 63 set in entry ${i}, got 0`)
    const kind = zero ? 'zero' : offset === 0n ? 'unallocated' : 'data'
    out.push({ kind, offset, compressed: false, compressedSize: 0, zero, allocated: kind === 'data' ? 1 : 0 })
  }
  return out
}

const ALL_SUBCLUSTERS = 0xffff_ffff

/** A standard cluster's extended entry: its kind from the bitmap, which must be consistent. */
function extendedEntry(i: number, offset: bigint, e: bigint, bitmap: bigint, action: string): Qcow2L2Entry {
  const allocated = Number(bitmap & 0xffff_ffffn)
  const zeroes = Number(bitmap >> 32n)
  const both = (allocated & zeroes) >>> 0
  // qcow2.txt: a subcluster that reads as zeros has its allocation bit unset.
  if (both !== 0)
    throw fail(
      action,
      `expected no subcluster both allocated and reading as zeros in entry ${i}, got subcluster ${31 - Math.clz32(both & -both)} with both bits (bitmap ${hex(bitmap)})`,
    )
  // An allocated subcluster needs a host cluster; offset 0 (with bit 63) is only for external data files.
  if (offset === 0n && (allocated !== 0 || (e & COPIED) !== 0n))
    throw fail(
      action,
      `expected a non-zero cluster offset in entry ${i} with allocated subclusters or bit 63, got 0 (bitmap ${hex(bitmap)})`,
    )
  const zero = zeroes === ALL_SUBCLUSTERS
  return {
    kind: allocated !== 0 ? 'data' : zero ? 'zero' : 'unallocated',
    offset,
    compressed: false,
    compressedSize: 0,
    zero,
    allocated,
  }
}
