import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { FormatError, InputError } from '../errors.js'
import { run } from '../tools/run.js'
import { openQcow2 } from './qcow2-reader.js'
import type { ReadAt } from './read-fully.js'

const MiB = 1 << 20
let dir: string
let raw: Uint8Array

before(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hwimage-qcow2-'))
  raw = new Uint8Array(9 * MiB + 4096)
  raw.set(randomBytes(MiB + 300), 100)
  raw.fill(0x5a, 4 * MiB, 6 * MiB) // compressible
  raw.set(randomBytes(5000), 9 * MiB - 1000)
  await fsp.writeFile(path.join(dir, 'x.img'), raw)
  await run(['qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2', path.join(dir, 'x.img'), path.join(dir, 'plain.qcow2')])
  await run([
    'qemu-img',
    'convert',
    '-c',
    '-f',
    'raw',
    '-O',
    'qcow2',
    '-o',
    'cluster_size=4096',
    path.join(dir, 'x.img'),
    path.join(dir, 'small-compressed.qcow2'),
  ])
  await run([
    'qemu-img',
    'create',
    '-f',
    'qcow2',
    '-F',
    'raw',
    '-b',
    path.join(dir, 'x.img'),
    path.join(dir, 'overlay.qcow2'),
  ])
})
after(async () => {
  await fsp.rm(dir, { recursive: true, force: true })
})

function fileReadAt(bytes: Uint8Array): ReadAt {
  return async (offset, length) => bytes.subarray(offset, Math.min(bytes.length, offset + length))
}

for (const name of ['plain.qcow2', 'small-compressed.qcow2']) {
  test(`openQcow2() reads ${name} as the disk it describes, forward with gaps`, async () => {
    const file = await fsp.readFile(path.join(dir, name))
    const r = await openQcow2(fileReadAt(file), name)
    assert.equal(r.knownSize, raw.length)
    for (const [offset, length] of [
      [0, 3 * MiB],
      [4 * MiB - 7, 2 * MiB + 14],
      [9 * MiB - 2000, 10000],
    ] as const) {
      const dst = new Uint8Array(length).fill(0xee)
      assert.equal(await r.read(offset, dst), Math.min(length, raw.length - offset))
      assert.ok(
        Buffer.from(dst.subarray(0, Math.min(length, raw.length - offset))).equals(
          raw.subarray(offset, offset + length),
        ),
        `bytes at ${offset}`,
      )
    }
    assert.equal(await r.finish(), raw.length)
  })
}

test('openQcow2() refuses a damaged header with FORMAT_QCOW2', async () => {
  const file = Buffer.from(await fsp.readFile(path.join(dir, 'plain.qcow2')))
  file.writeUInt32BE(99, 20) // cluster_bits
  await assert.rejects(
    openQcow2(fileReadAt(file), 'bad.qcow2'),
    (e: unknown) => e instanceof FormatError && e.code === 'FORMAT_QCOW2' && /cluster_bits/.test(e.message),
  )
})

test('openQcow2() refuses an overlay with a backing file, naming it', async () => {
  const file = await fsp.readFile(path.join(dir, 'overlay.qcow2'))
  await assert.rejects(
    openQcow2(fileReadAt(file), 'overlay.qcow2'),
    (e: unknown) => e instanceof FormatError && /backing file ".*x\.img"/.test(e.message),
  )
})

test('a qcow2 cut short fails with SOURCE_TRUNCATED when the data is read', async () => {
  const file = await fsp.readFile(path.join(dir, 'plain.qcow2'))
  const r = await openQcow2(fileReadAt(file.subarray(0, file.length - 200_000)), 'cut.qcow2')
  await assert.rejects(
    r.read(0, new Uint8Array(raw.length)),
    (e: unknown) => e instanceof InputError && e.code === 'SOURCE_TRUNCATED',
  )
})

// ---- zstd clusters and extended L2 entries, read back against qemu-img convert -O raw ----

/** What qemu-img itself reads from a qcow2 file. */
async function qemuRaw(file: string): Promise<Buffer> {
  const out = `${file}.raw`
  await run(['qemu-img', 'convert', '-f', 'qcow2', '-O', 'raw', file, out])
  return await fsp.readFile(out)
}

/** Reads the whole image through openQcow2() in uneven pieces (across cluster and subcluster edges). */
async function readAll(file: Uint8Array, name: string): Promise<Uint8Array> {
  const r = await openQcow2(fileReadAt(file), name)
  const out = new Uint8Array(r.knownSize!)
  let at = 0
  for (let step = 1; at < out.length; step++) {
    const piece = out.subarray(at, at + ((step * 77_777) % (3 * MiB)) + 1)
    at += await r.read(at, piece)
  }
  assert.equal(await r.finish(), out.length)
  return out
}

/** qemu-img convert of x.img with `args`, then qemu-io commands on the result. */
async function made(name: string, args: string[], io: string[] = []): Promise<{ file: Buffer; expected: Buffer }> {
  const out = path.join(dir, name)
  await run(['qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2', ...args, path.join(dir, 'x.img'), out])
  if (io.length > 0) await run(['qemu-io', '-f', 'qcow2', ...io.flatMap((c) => ['-c', c]), out])
  return { file: await fsp.readFile(out), expected: await qemuRaw(out) }
}

// Partial writes into 64 KiB clusters of 2 KiB subclusters: data in some subclusters of an
// unallocated cluster, zeros in some of an allocated one, and both across a cluster edge.
const SUBCLUSTER_WRITES = [
  'write -P 0xab 4k 4k',
  'write -P 0x17 7m 2k',
  'write -z 100k 6k',
  'write -P 0xcd 8190k 6k',
  'write -z 8258k 2k',
]

for (const [name, args, io] of [
  ['zstd.qcow2', ['-c', '-o', 'compression_type=zstd'], []],
  ['zstd-4k.qcow2', ['-c', '-o', 'compression_type=zstd,cluster_size=4096'], []],
  ['extended.qcow2', ['-o', 'extended_l2=on,cluster_size=64k'], SUBCLUSTER_WRITES],
  ['extended-zlib.qcow2', ['-c', '-o', 'extended_l2=on,cluster_size=64k'], SUBCLUSTER_WRITES],
  ['extended-zstd.qcow2', ['-c', '-o', 'extended_l2=on,cluster_size=64k,compression_type=zstd'], SUBCLUSTER_WRITES],
] as const) {
  test(`openQcow2() reads ${name} (${args.join(' ')}${io.length ? ', then partial writes' : ''}) byte for byte as qemu-img convert -O raw does`, async () => {
    const { file, expected } = await made(name, [...args], [...io])
    const info = JSON.parse((await run(['qemu-img', 'info', '--output=json', path.join(dir, name)])).stdout) as {
      'format-specific': { data: { 'compression-type': string; 'extended-l2'?: boolean } }
    }
    const got = await readAll(file, name)
    assert.equal(got.length, expected.length)
    assert.ok(Buffer.from(got).equals(expected), 'differs from qemu-img convert -O raw')
    if (args.join(' ').includes('zstd')) assert.equal(info['format-specific'].data['compression-type'], 'zstd')
    if (io.length > 0) {
      assert.equal(info['format-specific'].data['extended-l2'], true)
      assert.ok(got.subarray(4096, 8192).every((b) => b === 0xab))
      assert.ok(
        got.subarray(100 * 1024, 106 * 1024).every((b) => b === 0),
        'zero subclusters read as zeros',
      )
    }
  })
}

/** The host offsets of the compressed clusters of a qcow2 file, found with our own decoders. */
async function compressedClusters(file: Uint8Array): Promise<Array<{ offset: number; size: number }>> {
  const { decodeQcow2Header, decodeL1Table, decodeL2Table } = await import('../disk/qcow2.js')
  const h = decodeQcow2Header(file)
  const out: Array<{ offset: number; size: number }> = []
  for (const e1 of decodeL1Table(file.subarray(Number(h.l1TableOffset)), h)) {
    if (e1.l2Offset === 0n) continue
    for (const e2 of decodeL2Table(file.subarray(Number(e1.l2Offset)), h))
      if (e2.compressed) out.push({ offset: Number(e2.offset), size: e2.compressedSize })
  }
  return out
}

const isQcow2Format = (e: unknown): boolean => e instanceof FormatError && e.code === 'FORMAT_QCOW2'

test("a damaged zstd cluster fails with FORMAT_QCOW2 (never a TypeError), naming the cluster and zstd's error", async () => {
  const { file } = await made('zstd-bad.qcow2', ['-c', '-o', 'compression_type=zstd'])
  const clusters = await compressedClusters(file)
  assert.ok(clusters.length > 10)
  const c = clusters[3]!
  // The frame's magic, its header, a block header: each must be refused.
  for (const at of [0, 4, 6]) {
    const bad = Buffer.from(file)
    bad[c.offset + at]! ^= 0xff
    await assert.rejects(
      readAll(bad, 'zstd-bad.qcow2'),
      (e: unknown) =>
        isQcow2Format(e) && /compressed cluster \d+ of "zstd-bad\.qcow2" \(host byte \d+\)/.test((e as Error).message),
      `byte ${at}`,
    )
  }
  // Any byte of the cluster: the read fails with FORMAT_QCOW2 or gives bytes (zstd has no checksum
  // in qemu's frames, so a damaged literal can go unseen: the bmap or --sha256 catches that).
  for (let at = 0; at < Math.min(c.size, 400); at += 7) {
    const bad = Buffer.from(file)
    bad[c.offset + at]! ^= 0x5a
    try {
      await readAll(bad, 'zstd-bad.qcow2')
    } catch (e) {
      assert.ok(isQcow2Format(e), `byte ${at}: ${String(e)}`)
    }
  }
})

test('a zstd cluster whose frame holds less than a cluster is refused, as qemu does', async () => {
  const { file } = await made('zstd-short.qcow2', ['-c', '-o', 'compression_type=zstd'])
  const c = (await compressedClusters(file))[2]!
  // A frame of 100 zero bytes in the cluster's place (zstd(1) writes a frame qemu would also read).
  const { stdoutBytes: frame } = await run(['zstd', '-q', '-c', '-'], { input: Buffer.alloc(100), binary: true })
  assert.ok(frame.length <= c.size)
  const bad = Buffer.from(file)
  bad.set(frame, c.offset)
  await assert.rejects(
    readAll(bad, 'zstd-short.qcow2'),
    (e: unknown) => isQcow2Format(e) && /its zstd frame holds 100 bytes, expected 65536/.test((e as Error).message),
  )
})
