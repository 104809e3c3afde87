import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { inflateRawSync } from 'node:zlib'
import fc from 'fast-check'
import {
  decodeL1Table,
  decodeL2Table,
  decodeQcow2Header,
  qcow2L1Bytes,
  qcow2Locate,
  type Qcow2Header,
} from './qcow2.js'
import { FormatError } from '../errors.js'
import { run } from '../tools/run.js'

const isQcow2Error = (e: unknown): boolean => e instanceof FormatError && e.code === 'FORMAT_QCOW2'
const rejects = (bytes: Uint8Array, re: RegExp): void => {
  assert.throws(
    () => decodeQcow2Header(bytes),
    (e: unknown) => isQcow2Error(e) && re.test((e as Error).message),
  )
}

async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'hwimage-qcow2-'))
  try {
    return await fn(dir)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/**
 * A raw disk of 3 MiB + 1.5 KiB (not a whole number of clusters) with incompressible data,
 * repetitive text, holes, a run that straddles a 64 KiB boundary, and data in the last bytes.
 */
function sampleRaw(): Uint8Array {
  const raw = new Uint8Array(3 * 2 ** 20 + 1536)
  let seed = 7
  const random = (from: number, to: number): void => {
    for (let i = from; i < to; i++) raw[i] = (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24
  }
  random(0, 4096)
  raw.set(new TextEncoder().encode('hwimage qcow2 test pattern '.repeat(4000)), 200_000)
  random(65536 * 7 - 100, 65536 * 7 + 100)
  random(2 * 2 ** 20, 2 * 2 ** 20 + 65536 * 2)
  random(raw.length - 700, raw.length)
  return raw
}

/** Rebuilds the guest disk from a whole qcow2 file using only our decoders (and zlib for compressed clusters), subcluster by subcluster. */
function reconstruct(file: Uint8Array): { header: Qcow2Header; guest: Uint8Array; kinds: Record<string, number> } {
  const h = decodeQcow2Header(file)
  const size = Number(h.size)
  const cs = h.clusterSize
  const guest = new Uint8Array(size)
  const kinds: Record<string, number> = {}
  const l1 = decodeL1Table(file.subarray(Number(h.l1TableOffset), Number(h.l1TableOffset) + qcow2L1Bytes(h)), h)
  l1.forEach((e1, i) => {
    if (e1.l2Offset === 0n) return
    const l2 = decodeL2Table(file.subarray(Number(e1.l2Offset), Number(e1.l2Offset) + cs), h)
    l2.forEach((e2, j) => {
      const at = (i * (cs / h.l2EntryBytes) + j) * cs
      if (at >= size) return
      const len = Math.min(cs, size - at)
      kinds[e2.kind] = (kinds[e2.kind] ?? 0) + 1
      const sub = 2 ** h.subclusterBits
      for (let x = 0; x < cs / sub && x * sub < len; x++) {
        if (((e2.allocated >>> x) & 1) === 0) continue
        const n = Math.min(sub, len - x * sub)
        guest.set(file.subarray(Number(e2.offset) + x * sub, Number(e2.offset) + x * sub + n), at + x * sub)
      }
      if (e2.kind === 'compressed') {
        const data = inflateRawSync(file.subarray(Number(e2.offset), Number(e2.offset) + e2.compressedSize))
        assert.equal(data.length, cs)
        guest.set(data.subarray(0, len), at)
      }
    })
  })
  return { header: h, guest, kinds }
}

interface QemuImgInfo {
  'virtual-size': number
  'cluster-size': number
  'backing-filename'?: string
  'format-specific': {
    data: { compat: string; 'compression-type': string; 'refcount-bits': number; 'lazy-refcounts'?: boolean }
  }
}

async function qemuImgInfo(path: string): Promise<QemuImgInfo> {
  return JSON.parse((await run(['qemu-img', 'info', '--output=json', path])).stdout) as QemuImgInfo
}

/** Converts the sample raw disk with `qemu-img convert -O qcow2 …` and returns the qcow2 bytes and qemu-img's view of them. */
async function convert(dir: string, args: string[]): Promise<{ file: Uint8Array; info: QemuImgInfo; raw: Uint8Array }> {
  const raw = sampleRaw()
  await writeFile(join(dir, 'disk.raw'), raw)
  const out = join(dir, 'disk.qcow2')
  await run(['qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2', ...args, join(dir, 'disk.raw'), out])
  return { file: new Uint8Array(await readFile(out)), info: await qemuImgInfo(out), raw }
}

const variants: { name: string; args: string[]; version: 2 | 3; clusterBits: number; compressed: boolean }[] = [
  { name: 'version 3, 64 KiB clusters', args: [], version: 3, clusterBits: 16, compressed: false },
  { name: 'version 3, 64 KiB clusters, compressed (-c)', args: ['-c'], version: 3, clusterBits: 16, compressed: true },
  { name: 'version 2 (compat=0.10)', args: ['-o', 'compat=0.10'], version: 2, clusterBits: 16, compressed: false },
  { name: 'version 2, compressed', args: ['-c', '-o', 'compat=0.10'], version: 2, clusterBits: 16, compressed: true },
  {
    name: '512-byte clusters, compressed',
    args: ['-c', '-o', 'cluster_size=512'],
    version: 3,
    clusterBits: 9,
    compressed: true,
  },
  { name: '4 KiB clusters', args: ['-o', 'cluster_size=4096'], version: 3, clusterBits: 12, compressed: false },
  {
    name: '2 MiB clusters, compressed',
    args: ['-c', '-o', 'cluster_size=2M'],
    version: 3,
    clusterBits: 21,
    compressed: true,
  },
  {
    name: 'extended L2 entries, 64 KiB clusters',
    args: ['-o', 'extended_l2=on,cluster_size=64k'],
    version: 3,
    clusterBits: 16,
    compressed: false,
  },
  {
    name: 'extended L2 entries, 16 KiB clusters (the smallest allowed)',
    args: ['-o', 'extended_l2=on,cluster_size=16k'],
    version: 3,
    clusterBits: 14,
    compressed: false,
  },
  {
    name: 'extended L2 entries, compressed',
    args: ['-c', '-o', 'extended_l2=on'],
    version: 3,
    clusterBits: 16,
    compressed: true,
  },
  {
    name: 'extended L2 entries, 2 MiB clusters',
    args: ['-o', 'extended_l2=on,cluster_size=2M'],
    version: 3,
    clusterBits: 21,
    compressed: false,
  },
]

for (const variant of variants) {
  test(`the header, L1 and L2 tables of a qemu-img qcow2 (${variant.name}) rebuild the raw disk byte for byte`, async () => {
    await withTempDir(async (dir) => {
      const { file, info, raw } = await convert(dir, variant.args)
      const { header: h, guest, kinds } = reconstruct(file)
      assert.equal(h.version, variant.version)
      assert.equal(h.clusterBits, variant.clusterBits)
      assert.equal(h.clusterSize, info['cluster-size'])
      assert.equal(h.size, BigInt(info['virtual-size']))
      assert.equal(h.size, BigInt(raw.length))
      assert.equal(h.compressionType, info['format-specific'].data['compression-type'] === 'zlib' ? 'deflate' : 'zstd')
      assert.equal(2 ** h.refcountOrder, info['format-specific'].data['refcount-bits'])
      assert.equal(h.version === 2 ? '0.10' : '1.1', info['format-specific'].data.compat)
      assert.equal(h.backingFile, undefined)
      assert.equal(h.dirty, false)
      assert.equal(h.extendedL2, variant.args.join(' ').includes('extended_l2=on'))
      assert.equal(h.l2EntryBytes, h.extendedL2 ? 16 : 8)
      assert.ok(Buffer.from(guest).equals(Buffer.from(raw)), 'rebuilt disk differs from the source')
      if (variant.compressed) assert.ok((kinds.compressed ?? 0) > 0, JSON.stringify(kinds))
      else assert.equal(kinds.compressed ?? 0, 0)
      assert.ok((kinds.data ?? 0) + (kinds.compressed ?? 0) > 0)
    })
  })
}

test('decodeQcow2Header() reads compression type zstd, and compressed clusters hold zstd frames', async () => {
  await withTempDir(async (dir) => {
    const { file, info } = await convert(dir, ['-c', '-o', 'compression_type=zstd'])
    const h = decodeQcow2Header(file)
    assert.equal(info['format-specific'].data['compression-type'], 'zstd')
    assert.equal(h.compressionType, 'zstd')
    assert.equal(h.incompatibleFeatures & 8n, 8n)
    const l1 = decodeL1Table(file.subarray(Number(h.l1TableOffset)), h)
    const l2 = decodeL2Table(file.subarray(Number(l1[0]!.l2Offset)), h)
    const first = l2.find((e) => e.compressed)!
    // zstd frame magic 0xFD2FB528, little-endian on disk.
    assert.deepEqual([...file.subarray(Number(first.offset), Number(first.offset) + 4)], [0x28, 0xb5, 0x2f, 0xfd])
  })
})

test('decodeL2Table() reports zero clusters that qemu-io writes with write -z, and they read as zeros', async () => {
  await withTempDir(async (dir) => {
    const img = join(dir, 'z.qcow2')
    await run(['qemu-img', 'create', '-q', '-f', 'qcow2', img, '1M'])
    await run(['qemu-io', '-f', 'qcow2', '-c', 'write -P 0xab 0 192k', '-c', 'write -z 64k 64k', img])
    const file = new Uint8Array(await readFile(img))
    const { header: h, guest } = reconstruct(file)
    const l2 = decodeL2Table(
      file.subarray(Number(decodeL1Table(file.subarray(Number(h.l1TableOffset)), h)[0]!.l2Offset)),
      h,
    )
    assert.deepEqual(
      l2.slice(0, 4).map((e) => e.kind),
      ['data', 'zero', 'data', 'unallocated'],
    )
    assert.equal(l2[1]!.zero, true)
    assert.ok(guest.subarray(0, 65536).every((b) => b === 0xab))
    assert.ok(guest.subarray(65536, 131072).every((b) => b === 0))
    assert.ok(guest.subarray(131072, 196608).every((b) => b === 0xab))
  })
})

test('decodeL2Table() reads the subcluster bitmaps qemu-io writes in an extended-L2 image, and they rebuild what qemu-img convert reads', async () => {
  await withTempDir(async (dir) => {
    const img = join(dir, 'sub.qcow2')
    await run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-o', 'extended_l2=on,cluster_size=64k', img, '1M'])
    // 64 KiB clusters: 32 subclusters of 2 KiB.
    await run([
      'qemu-io',
      '-f',
      'qcow2',
      '-c',
      'write -P 0xab 4k 4k', // cluster 0, subclusters 2–3
      '-c',
      'write -P 0xcd 126k 4k', // cluster 1 subcluster 31 and cluster 2 subcluster 0
      '-c',
      'write -P 0xee 192k 64k', // cluster 3 whole, then zeros in its subclusters 4–5
      '-c',
      'write -z 200k 4k',
      '-c',
      'write -z 262k 2k', // cluster 4: one zero subcluster, nothing allocated
      img,
    ])
    const file = new Uint8Array(await readFile(img))
    const { header: h, guest } = reconstruct(file)
    assert.equal(h.extendedL2, true)
    assert.equal(h.subclusterBits, 11)
    const l2 = decodeL2Table(
      file.subarray(Number(decodeL1Table(file.subarray(Number(h.l1TableOffset)), h)[0]!.l2Offset)),
      h,
    )
    assert.equal(l2.length, 4096)
    assert.deepEqual(
      l2.slice(0, 6).map((e) => [e.kind, e.allocated >>> 0]),
      [
        ['data', 0b1100],
        ['data', 0x8000_0000],
        ['data', 0b1],
        ['data', 0xffff_ffcf],
        ['unallocated', 0],
        ['unallocated', 0],
      ],
    )
    await run(['qemu-img', 'convert', '-f', 'qcow2', '-O', 'raw', img, join(dir, 'sub.raw')])
    assert.ok(
      Buffer.from(guest).equals(await readFile(join(dir, 'sub.raw'))),
      'rebuilt disk differs from qemu-img convert -O raw',
    )
    assert.ok(guest.subarray(4096, 8192).every((b) => b === 0xab))
    assert.ok(guest.subarray(200 * 1024, 204 * 1024).every((b) => b === 0))
  })
})

test('decodeL2Table() refuses inconsistent extended L2 entries, and decodeQcow2Header() clusters under 16 KiB with them', async () => {
  const h = { ...decodeQcow2Header(await header), extendedL2: true, subclusterBits: 11, l2EntryBytes: 16 }
  const l2 = (e: bigint, bitmap: bigint): Uint8Array => {
    const b = new Uint8Array(h.clusterSize)
    new DataView(b.buffer).setBigUint64(16, e, false)
    new DataView(b.buffer).setBigUint64(24, bitmap, false)
    return b
  }
  const isErr =
    (re: RegExp) =>
    (e: unknown): boolean =>
      isQcow2Error(e) && re.test((e as Error).message)
  assert.deepEqual(decodeL2Table(l2(0x70000n, 0xffff_0000_0000_ffffn), h)[1], {
    kind: 'data',
    offset: 0x70000n,
    compressed: false,
    compressedSize: 0,
    zero: false,
    allocated: 0xffff,
  })
  assert.equal(decodeL2Table(l2(0n, 0xffff_ffff_0000_0000n), h)[1]!.kind, 'zero')
  assert.equal(decodeL2Table(l2(0n, 0x0000_0001_0000_0000n), h)[1]!.kind, 'unallocated')
  assert.throws(() => decodeL2Table(l2(0x70000n, 0x0000_0004_0000_0004n), h), isErr(/subcluster 2 with both bits/))
  assert.throws(
    () => decodeL2Table(l2(0n, 1n), h),
    isErr(/non-zero cluster offset in entry 1 with allocated subclusters/),
  )
  // Bit 0 (the zero flag of standard entries) is reserved with extended L2 entries.
  assert.throws(() => decodeL2Table(l2(0x70001n, 0n), h), isErr(/reserved bits clear in entry 1/))
  assert.throws(
    () => decodeL2Table(l2((1n << 62n) | 0x12345n, 1n), h),
    isErr(/zero subcluster bitmap on compressed entry 1/),
  )
  // The header: bit 4 with 4 KiB clusters.
  await withTempDir(async (dir) => {
    await run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-o', 'extended_l2=on', join(dir, 'x.qcow2'), '1M'])
    const b = new Uint8Array(await readFile(join(dir, 'x.qcow2')))
    assert.equal(decodeQcow2Header(b).extendedL2, true)
    new DataView(b.buffer).setUint32(20, 12, false)
    rejects(b, /cluster_bits of at least 14 with extended L2 entries/)
  })
})

test('decodeQcow2Header() gives the backing file name of an overlay', async () => {
  await withTempDir(async (dir) => {
    await run(['qemu-img', 'create', '-q', '-f', 'qcow2', join(dir, 'base.qcow2'), '1M'])
    await run([
      'qemu-img',
      'create',
      '-q',
      '-f',
      'qcow2',
      '-b',
      'base.qcow2',
      '-F',
      'qcow2',
      join(dir, 'overlay.qcow2'),
    ])
    const h = decodeQcow2Header(await readFile(join(dir, 'overlay.qcow2')))
    assert.equal(h.backingFile, 'base.qcow2')
    assert.equal(h.backingFileSize, 'base.qcow2'.length)
    // Given only the header bytes, the name is not available but its presence is.
    const short = decodeQcow2Header((await readFile(join(dir, 'overlay.qcow2'))).subarray(0, 112))
    assert.equal(short.backingFile, undefined)
    assert.notEqual(short.backingFileOffset, 0n)
  })
})

test('decodeQcow2Header() refuses external data files and AES encryption, as qemu-img makes them', async () => {
  await withTempDir(async (dir) => {
    const make = async (name: string, args: string[]): Promise<Uint8Array> => {
      await run(['qemu-img', 'create', '-q', '-f', 'qcow2', ...args, join(dir, name), '1M'])
      return new Uint8Array(await readFile(join(dir, name)))
    }
    rejects(await make('ext.qcow2', ['-o', `data_file=${join(dir, 'data.raw')}`]), /external data file/)
    // AES through qemu-img; LUKS (crypt_method 2) by hand below, since qemu-img's LUKS key setup takes seconds of CPU.
    rejects(
      await make('aes.qcow2', [
        '--object',
        'secret,id=sec0,data=hwimage',
        '-o',
        'encrypt.format=aes,encrypt.key-secret=sec0',
      ]),
      /got crypt_method 1 \(AES\)/,
    )
  })
})

// ---- header failures on hand-edited headers ----

async function sampleHeaderBytes(): Promise<Uint8Array> {
  return withTempDir(async (dir) => {
    await run(['qemu-img', 'create', '-q', '-f', 'qcow2', join(dir, 'x.qcow2'), '10M'])
    return new Uint8Array(await readFile(join(dir, 'x.qcow2')))
  })
}

const header = sampleHeaderBytes()
const edit = async (f: (v: DataView, b: Uint8Array) => void): Promise<Uint8Array> => {
  const b = new Uint8Array(await header)
  f(new DataView(b.buffer), b)
  return b
}

test('decodeQcow2Header() reads the fields qemu-img create writes', async () => {
  const h = decodeQcow2Header(await header)
  assert.deepEqual(
    {
      version: h.version,
      clusterBits: h.clusterBits,
      size: h.size,
      l1Size: h.l1Size,
      l1TableOffset: h.l1TableOffset,
      refcountOrder: h.refcountOrder,
      headerLength: h.headerLength,
      nbSnapshots: h.nbSnapshots,
    },
    {
      version: 3,
      clusterBits: 16,
      size: 10n * 2n ** 20n,
      l1Size: 1,
      l1TableOffset: 0x30000n,
      refcountOrder: 4,
      headerLength: 112,
      nbSnapshots: 0,
    },
  )
  assert.equal(h.refcountTableOffset, 0x10000n)
  assert.equal(h.refcountTableClusters, 1)
})

test('decodeQcow2Header() rejects a bad magic, naming expected and actual', async () => {
  rejects(
    await edit((v) => v.setUint32(0, 0x514649fa, false)),
    /expected magic 0x514649fb \("QFI\\xfb"\), got 0x514649fa/,
  )
  rejects(new Uint8Array(200), /got 0x0/)
})

test('decodeQcow2Header() rejects a truncated header', async () => {
  const b = await header
  rejects(b.subarray(0, 71), /expected at least 72 bytes, got 71/)
  rejects(b.subarray(0, 100), /expected at least 104 bytes for version 3, got 100/)
  rejects(b.subarray(0, 108), /expected at least header_length 112 bytes, got 108/)
})

test('decodeQcow2Header() rejects versions other than 2 and 3', async () => {
  rejects(await edit((v) => v.setUint32(4, 1, false)), /expected version 2 or 3, got 1/)
  rejects(await edit((v) => v.setUint32(4, 4, false)), /got 4/)
})

test('decodeQcow2Header() rejects out-of-range fields, naming each', async () => {
  const cases: [string, (v: DataView, b: Uint8Array) => void, RegExp][] = [
    ['cluster_bits 8', (v) => v.setUint32(20, 8, false), /cluster_bits from 9 to 21, got 8/],
    ['cluster_bits 22', (v) => v.setUint32(20, 22, false), /got 22/],
    ['AES', (v) => v.setUint32(32, 1, false), /crypt_method 1 \(AES\)/],
    ['LUKS', (v) => v.setUint32(32, 2, false), /crypt_method 2 \(LUKS\)/],
    ['unknown encryption', (v) => v.setUint32(32, 9, false), /crypt_method 9 \(unknown\)/],
    [
      'header_length 100',
      (v) => v.setUint32(100, 100, false),
      /header_length a multiple of 8 from 104 to 65536, got 100/,
    ],
    ['header_length 108', (v) => v.setUint32(100, 108, false), /got 108/],
    [
      'unknown incompatible bit',
      (v) => v.setBigUint64(72, 1n << 40n, false),
      /unknown incompatible features, got bits 40/,
    ],
    ['corrupt bit', (v) => v.setBigUint64(72, 2n, false), /corrupt bit/],
    [
      'zstd bit without the field',
      (v) => v.setBigUint64(72, 8n, false),
      /compression_type non-zero with incompatible bit 3 set, got 0/,
    ],
    [
      'zstd field without the bit',
      (_, b) => {
        b[104] = 1
      },
      /compression_type 0 with incompatible bit 3 clear, got 1/,
    ],
    [
      'unknown compression type',
      (v, b) => {
        v.setBigUint64(72, 8n, false)
        b[104] = 2
      },
      /compression_type 0 \(zlib\) or 1 \(zstd\), got 2/,
    ],
    ['refcount_order 7', (v) => v.setUint32(96, 7, false), /refcount_order at most 6, got 7/],
    [
      'l1_size too small',
      (v) => v.setBigUint64(24, 2n ** 40n, false),
      /l1_size of at least 2048 for a virtual size of 1099511627776 bytes, got 1/,
    ],
    ['l1_size too large', (v) => v.setUint32(36, 0xffff_ffff, false), /l1_size at most 4194304, got 4294967295/],
    [
      'misaligned L1',
      (v) => v.setBigUint64(40, 0x30200n, false),
      /l1_table_offset aligned to the 65536-byte cluster, got 197120/,
    ],
    ['L1 at 0', (v) => v.setBigUint64(40, 0n, false), /non-zero l1_table_offset/],
    ['misaligned refcount table', (v) => v.setBigUint64(48, 7n, false), /refcount_table_offset aligned/],
    [
      'misaligned snapshots',
      (v) => {
        v.setUint32(60, 1, false)
        v.setBigUint64(64, 9n, false)
      },
      /snapshots_offset aligned/,
    ],
    [
      'backing name too long',
      (v) => {
        v.setBigUint64(8, 512n, false)
        v.setUint32(16, 1024, false)
      },
      /backing file name of at most 1023 bytes/,
    ],
    [
      'backing name past the first cluster',
      (v) => {
        v.setBigUint64(8, 65530n, false)
        v.setUint32(16, 10, false)
      },
      /inside the first cluster/,
    ],
  ]
  for (const [what, f, re] of cases) {
    const b = await edit(f)
    assert.throws(
      () => decodeQcow2Header(b),
      (e: unknown) => isQcow2Error(e) && re.test((e as Error).message),
      what,
    )
  }
})

test('decodeQcow2Header() accepts the dirty bit of lazy refcounts and reports it', async () => {
  const h = decodeQcow2Header(await edit((v) => v.setBigUint64(72, 1n, false)))
  assert.equal(h.dirty, true)
})

test('decodeL1Table() and decodeL2Table() reject reserved bits and misaligned offsets', async () => {
  const h = decodeQcow2Header(await header)
  const l1 = (e: bigint): Uint8Array => {
    const b = new Uint8Array(8)
    new DataView(b.buffer).setBigUint64(0, e, false)
    return b
  }
  const isErr =
    (re: RegExp) =>
    (e: unknown): boolean =>
      isQcow2Error(e) && re.test((e as Error).message)
  assert.deepEqual(decodeL1Table(l1((1n << 63n) | 0x50000n), h), [{ l2Offset: 0x50000n, copied: true }])
  assert.throws(() => decodeL1Table(l1(1n << 60n), h), isErr(/reserved bits clear in entry 0/))
  assert.throws(() => decodeL1Table(l1(1n), h), isErr(/reserved bits/))
  assert.throws(() => decodeL1Table(l1(0x50200n), h), isErr(/aligned to 65536 bytes, got 328192/))
  assert.throws(() => decodeL1Table(new Uint8Array(7), h), isErr(/expected 8 bytes for 1 entries, got 7/))

  const l2 = (e: bigint, at = 3): Uint8Array => {
    const b = new Uint8Array(h.clusterSize)
    new DataView(b.buffer).setBigUint64(at * 8, e, false)
    return b
  }
  assert.equal(decodeL2Table(l2(0n), h)[3]!.kind, 'unallocated')
  assert.deepEqual(decodeL2Table(l2((1n << 63n) | 0x70000n), h)[3], {
    kind: 'data',
    offset: 0x70000n,
    compressed: false,
    compressedSize: 0,
    zero: false,
    allocated: 1,
  })
  assert.deepEqual(decodeL2Table(l2(0x70001n), h)[3], {
    kind: 'zero',
    offset: 0x70000n,
    compressed: false,
    compressedSize: 0,
    zero: true,
    allocated: 0,
  })
  // Compressed, 64 KiB clusters: x = 54 offset bits, then 8 bits of extra sectors.
  assert.deepEqual(decodeL2Table(l2((1n << 62n) | (3n << 54n) | 0x12345n), h)[3], {
    kind: 'compressed',
    offset: 0x12345n,
    compressed: true,
    compressedSize: 4 * 512 - 0x145,
    zero: false,
    allocated: 0,
  })
  assert.throws(() => decodeL2Table(l2(0x70002n), h), isErr(/reserved bits clear in entry 3/))
  assert.throws(() => decodeL2Table(l2(1n << 58n), h), isErr(/reserved bits/))
  assert.throws(() => decodeL2Table(l2(0x70200n), h), isErr(/entry 3's cluster offset aligned to 65536 bytes/))
  assert.throws(() => decodeL2Table(l2((1n << 63n) | (1n << 62n)), h), isErr(/bit 63 clear on compressed entry 3/))
  assert.throws(() => decodeL2Table(l2(1n << 63n), h), isErr(/non-zero cluster offset with bit 63 set/))
  assert.throws(() => decodeL2Table(new Uint8Array(100), h), isErr(/expected one 65536-byte cluster, got 100 bytes/))
  // Version 2 has no zero flag: bit 0 is reserved there.
  assert.throws(() => decodeL2Table(l2(0x70001n), { ...h, version: 2 }), isErr(/reserved bits/))
  // 512-byte clusters: the compressed offset field has 61 bits; those past bit 55 must be 0.
  const small = { ...h, clusterBits: 9, clusterSize: 512 }
  const b = new Uint8Array(512)
  new DataView(b.buffer).setBigUint64(0, (1n << 62n) | (1n << 57n), false)
  assert.throws(() => decodeL2Table(b, small), isErr(/compressed offset below 2\^56/))
})

test('qcow2Locate() splits a guest offset into L1 index, L2 index and offset in the cluster', async () => {
  const h = decodeQcow2Header(await header)
  // 64 KiB clusters, 8192 entries per L2 table: one L2 table maps 512 MiB.
  assert.deepEqual(qcow2Locate(h, 0n), { l1Index: 0, l2Index: 0, offsetInCluster: 0 })
  assert.deepEqual(qcow2Locate(h, 65536n * 3n + 17n), { l1Index: 0, l2Index: 3, offsetInCluster: 17 })
  assert.deepEqual(qcow2Locate(h, 512n * 2n ** 20n * 5n + 65536n * 8191n + 65535n), {
    l1Index: 5,
    l2Index: 8191,
    offsetInCluster: 65535,
  })
})

// ---- properties: never anything but FORMAT_QCOW2 ----

const onlyFormatErrors = (f: () => unknown): void => {
  try {
    f()
  } catch (e) {
    if (!isQcow2Error(e)) throw e
  }
}

test('decodeQcow2Header() on a header with random bytes changed returns or throws FORMAT_QCOW2, nothing else', async () => {
  const good = await header
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat({ max: 119 }), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 6 }),
      fc.nat({ max: 400 }),
      (edits, cut) => {
        const b = new Uint8Array(good.subarray(0, 512))
        for (const [i, x] of edits) b[i] = (b[i] ?? 0) ^ x
        onlyFormatErrors(() => decodeQcow2Header(b.subarray(0, 112 + cut)))
      },
    ),
    { numRuns: 2000 },
  )
})

test('decodeQcow2Header() changes in any header byte give FORMAT_QCOW2 or a header, for every byte', async () => {
  const good = await header
  for (let i = 0; i < 112; i++) {
    for (const x of [0x01, 0x80, 0xff]) {
      const b = new Uint8Array(good.subarray(0, 65536))
      b[i] = (b[i] ?? 0) ^ x
      onlyFormatErrors(() => decodeQcow2Header(b))
    }
  }
})

test('decodeL1Table() and decodeL2Table() on random bytes return or throw FORMAT_QCOW2', async () => {
  const h = decodeQcow2Header(await header)
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 64 }),
      fc.constantFrom(9, 12, 14, 16),
      fc.constantFrom<2 | 3>(2, 3),
      fc.boolean(),
      (bytes, clusterBits, version, extended) => {
        const extendedL2 = extended && version === 3 && clusterBits >= 14
        const l2 = extendedL2
          ? { extendedL2, subclusterBits: clusterBits - 5, l2EntryBytes: 16 }
          : { extendedL2, subclusterBits: clusterBits, l2EntryBytes: 8 }
        const hh = {
          ...h,
          ...l2,
          clusterBits,
          clusterSize: 2 ** clusterBits,
          version,
          l1Size: Math.floor(bytes.length / 8) + (bytes.length % 2),
        }
        onlyFormatErrors(() => decodeL1Table(bytes, hh))
        const table = new Uint8Array(hh.clusterSize)
        table.set(bytes.subarray(0, hh.clusterSize))
        onlyFormatErrors(() => decodeL2Table(table, hh))
        onlyFormatErrors(() => decodeL2Table(bytes, hh))
      },
    ),
    { numRuns: 1000 },
  )
})
