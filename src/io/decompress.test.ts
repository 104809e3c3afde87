import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { InputError } from '../errors.js'
import { run } from '../tools/run.js'
import { decompressFailure, startDecompressor, type Compression } from './decompress.js'

const MiB = 1 << 20
let dir: string
let raw: Uint8Array
const files: Record<Compression, string> = { zstd: '', xz: '', gzip: '' }

before(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hwimage-decompress-'))
  // 12 MiB: data, a long run of zeros, data, zeros at the end (the sparse case).
  raw = new Uint8Array(12 * MiB)
  raw.set(randomBytes(2 * MiB), 0)
  raw.set(randomBytes(3 * MiB), 7 * MiB)
  raw.fill(0x41, 5 * MiB + 17, 5 * MiB + 4000)
  const img = path.join(dir, 'x.img')
  await fsp.writeFile(img, raw)
  await run(['zstd', '-q', '-k', img])
  await run(['xz', '-k', '-T0', img])
  await run(['gzip', '-k', img])
  files.zstd = `${img}.zst`
  files.xz = `${img}.xz`
  files.gzip = `${img}.gz`
})
after(async () => {
  await fsp.rm(dir, { recursive: true, force: true })
})

async function* fileChunks(file: string, bytes?: Uint8Array): AsyncGenerator<Uint8Array> {
  const all = bytes ?? (await fsp.readFile(file))
  for (let i = 0; i < all.length; i += 100_000) yield all.subarray(i, i + 100_000)
}

for (const format of ['zstd', 'xz', 'gzip'] as const) {
  for (const spool of [true, false]) {
    test(`startDecompressor(${format}) through ${spool ? 'a sparse spool' : 'a pipe'} gives the image's bytes, forward reads with gaps`, async () => {
      const spoolDir = path.join(dir, `spool-${format}-${spool}`)
      await fsp.mkdir(spoolDir)
      const r = await startDecompressor(format, fileChunks(files[format]), {
        spoolDir: spool ? spoolDir : null,
        window: 2 * MiB,
      })
      try {
        for (const [offset, length] of [
          [0, 1000],
          [MiB, 3 * MiB],
          [5 * MiB, 8192],
          [7 * MiB + 5, 2 * MiB],
          [11 * MiB, MiB],
        ] as const) {
          const dst = new Uint8Array(length)
          assert.equal(await r.read(offset, dst), length)
          assert.ok(Buffer.from(dst).equals(raw.subarray(offset, offset + length)), `bytes at ${offset}`)
        }
        assert.equal(await r.read(12 * MiB, new Uint8Array(10)), 0)
        assert.equal(await r.finish(), 12 * MiB)
      } finally {
        await r.close()
      }
      assert.deepEqual(await fsp.readdir(spoolDir), [], 'the spool is removed')
    })
  }
}

test('a truncated zstd stream fails with SOURCE_TRUNCATED, naming how far it got', async () => {
  const all = await fsp.readFile(files.zstd)
  const r = await startDecompressor('zstd', fileChunks('', all.subarray(0, all.length - 5000)), {
    sourceName: 'x.img.zst',
  })
  try {
    await assert.rejects(
      (async () => {
        await r.read(0, new Uint8Array(12 * MiB))
        await r.finish()
      })(),
      (e: unknown) =>
        e instanceof InputError &&
        e.code === 'SOURCE_TRUNCATED' &&
        /x\.img\.zst/.test(e.message) &&
        /compressed bytes/.test(e.message),
    )
  } finally {
    await r.close()
  }
})

test('one flipped byte in the zstd stream fails with SOURCE_CORRUPT', async () => {
  const all = Buffer.from(await fsp.readFile(files.zstd))
  all[Math.floor(all.length / 3)]! ^= 0x10
  const r = await startDecompressor('zstd', fileChunks('', all))
  try {
    await assert.rejects(r.finish(), (e: unknown) => e instanceof InputError && e.code === 'SOURCE_CORRUPT')
  } finally {
    await r.close()
  }
})

test('truncated xz and corrupt gzip streams fail with the right codes', async () => {
  const xz = await fsp.readFile(files.xz)
  const a = await startDecompressor('xz', fileChunks('', xz.subarray(0, xz.length >> 1)))
  await assert.rejects(a.finish(), (e: unknown) => e instanceof InputError && e.code === 'SOURCE_TRUNCATED')
  await a.close()
  const gz = Buffer.from(await fsp.readFile(files.gzip))
  gz[gz.length - 6]! ^= 0xff // inside the CRC32 trailer
  const b = await startDecompressor('gzip', fileChunks('', gz))
  await assert.rejects(b.finish(), (e: unknown) => e instanceof InputError && e.code === 'SOURCE_CORRUPT')
  await b.close()
})

test('a failing source wins over the decompressor complaining about the end of its input', async () => {
  async function* broken(): AsyncGenerator<Uint8Array> {
    const all = await fsp.readFile(files.zstd)
    yield all.subarray(0, 1000)
    throw new Error('connection reset by the test')
  }
  const r = await startDecompressor('zstd', broken())
  await assert.rejects(r.finish(), /connection reset by the test/)
  await r.close()
})

test("decompressFailure() tells truncation from corruption by the program's words", () => {
  const where = { source: 's', compressedBytes: 10, imageBytes: 20 }
  assert.equal(decompressFailure('zstd', 'zstd: /*stdin*\\: unexpected end of file \n', where).code, 'SOURCE_TRUNCATED')
  assert.equal(decompressFailure('xz', 'xz: (stdin): Unexpected end of input\n', where).code, 'SOURCE_TRUNCATED')
  assert.equal(decompressFailure('gzip', 'gzip: stdin: unexpected end of file\n', where).code, 'SOURCE_TRUNCATED')
  assert.equal(
    decompressFailure('zstd', "zstd: /*stdin*\\: Restored data doesn't match checksum \n", where).code,
    'SOURCE_CORRUPT',
  )
  assert.equal(decompressFailure('xz', 'xz: (stdin): Compressed data is corrupt\n', where).code, 'SOURCE_CORRUPT')
  assert.equal(
    decompressFailure('gzip', 'gzip: stdin: invalid compressed data--crc error\n', where).code,
    'SOURCE_CORRUPT',
  )
})

test('decompressFailure() quotes the program without its name and stdin label', () => {
  const where = { source: 'x.img.zst', compressedBytes: 10, imageBytes: 20 }
  const e = decompressFailure(
    'zstd',
    "zstd: /*stdin*\\ : Decoding error (36) : Restored data doesn't match checksum \n",
    where,
  )
  assert.match(e.message, /zstd says "Decoding error \(36\) : Restored data doesn't match checksum"$/)
  assert.match(
    decompressFailure('xz', 'xz: (stdin): Unexpected end of input\n', where).message,
    /xz says "Unexpected end of input"$/,
  )
})

test('the spool stays bounded: consumed bytes are punched out and the decompressor waits for the reader', async () => {
  // In /dev/shm, where spools go: ext4 in /tmp counts speculative preallocation in st_blocks.
  const spoolDir = await fsp.mkdtemp('/dev/shm/hwimage-spool-test-')
  // Incompressible data, so the spool holds what the decompressor wrote; big enough that
  // zstd cannot finish between two 10 ms throttle checks.
  const data = randomBytes(96 * MiB)
  const r = await startDecompressor('zstd', fileChunks('', await zstdOf(data)), {
    spoolDir,
    window: 2 * MiB,
    punchStep: MiB,
  })
  try {
    const spool = await spoolOf(spoolDir)
    const dst = new Uint8Array(MiB)
    let maxAhead = 0
    for (let off = 0; off < 40 * MiB; off += MiB) {
      assert.equal(await r.read(off, dst), MiB)
      assert.ok(Buffer.from(dst).equals(data.subarray(off, off + MiB)))
      await new Promise((res) => setTimeout(res, 20))
      maxAhead = Math.max(maxAhead, (await fsp.stat(spool)).size - (off + MiB))
    }
    // The window, plus what it decompresses between two checks and what sits in the pipe.
    assert.ok(maxAhead <= 32 * MiB, `the decompressor ran at most ${maxAhead} bytes ahead of the reader`)
    // Punching happens in the helper, a little behind: give it a moment, then the spool holds
    // about the window and one step, although 40 MiB went through it.
    let allocated = Infinity
    for (let i = 0; i < 40 && allocated > 20 * MiB; i++) {
      await new Promise((res) => setTimeout(res, 50))
      allocated = (await fsp.stat(spool)).blocks * 512
    }
    assert.ok(allocated <= 20 * MiB, `the spool holds ${allocated} bytes`)
    assert.equal(await r.finish(), 96 * MiB)
  } finally {
    await r.close()
    await fsp.rm(spoolDir, { recursive: true, force: true })
  }
})

/** The spool in `spoolDir`, which has no name: found among our descriptors, as /proc/self/fd/N. */
async function spoolOf(spoolDir: string): Promise<string> {
  const open = await spoolDescriptors(spoolDir)
  assert.equal(open.length, 1, `one spool open in ${spoolDir}: ${open.join(', ')}`)
  return open[0]!
}

/** Our descriptors on files (deleted or not) in `dir`. */
async function spoolDescriptors(dir: string): Promise<string[]> {
  const found: string[] = []
  for (const fd of await fsp.readdir('/proc/self/fd')) {
    const link = await fsp.readlink(`/proc/self/fd/${fd}`).catch(() => '')
    if (link.startsWith(`${dir}/`)) found.push(`/proc/self/fd/${fd}`)
  }
  return found
}

for (const format of ['zstd', 'xz'] as const) {
  for (const input of ['fed', 'file'] as const) {
    test(`the ${format} spool (${input === 'fed' ? 'fed chunks' : 'reading a file'}) has no name while the decompressor writes it, and nothing is left once closed`, async () => {
      const spoolDir = await fsp.mkdtemp('/dev/shm/hwimage-spool-test-')
      const fh = input === 'file' ? await fsp.open(files[format], 'r') : undefined
      const r = await startDecompressor(format, fh ? { fd: fh.fd } : fileChunks(files[format]), {
        spoolDir,
        window: 2 * MiB,
        punchStep: MiB,
      })
      try {
        const spool = await spoolOf(spoolDir)
        assert.match(await fsp.readlink(spool), / \(deleted\)$/)
        for (const [offset, length] of [
          [0, MiB],
          [5 * MiB, 8192],
          [7 * MiB + 5, 3 * MiB],
          [11 * MiB, MiB],
        ] as const) {
          const dst = new Uint8Array(length)
          assert.equal(await r.read(offset, dst), length)
          assert.ok(Buffer.from(dst).equals(raw.subarray(offset, offset + length)), `bytes at ${offset}`)
          assert.deepEqual(
            await fsp.readdir(spoolDir),
            [],
            `no name in the spool directory after reading ${offset + length} bytes`,
          )
        }
        assert.equal(await r.finish(), 12 * MiB)
      } finally {
        await r.close()
        await fh?.close()
      }
      assert.deepEqual(await spoolDescriptors(spoolDir), [], 'the spool is closed')
      assert.deepEqual(await fsp.readdir(spoolDir), [])
      await fsp.rm(spoolDir, { recursive: true, force: true })
    })
  }
}

async function zstdOf(bytes: Uint8Array): Promise<Buffer> {
  const f = path.join(dir, `z-${bytes.length}`)
  await fsp.writeFile(f, bytes)
  await run(['zstd', '-q', '-f', '-1', f])
  return await fsp.readFile(`${f}.zst`)
}

test('a decompressor reading a file itself is stopped while too far ahead of the reader, and gives the right bytes', async () => {
  const spoolDir = await fsp.mkdtemp('/dev/shm/hwimage-spool-test-')
  // Big enough that zstd (1–2 GB/s on stored blocks) cannot finish between two 10 ms checks.
  const data = randomBytes(192 * MiB)
  const file = path.join(dir, 'fd-input.zst')
  await fsp.writeFile(file, await zstdOf(data))
  const fh = await fsp.open(file, 'r')
  const r = await startDecompressor('zstd', { fd: fh.fd }, { spoolDir, window: 4 * MiB, punchStep: 4 * MiB })
  try {
    const spool = await spoolOf(spoolDir)
    const dst = new Uint8Array(MiB)
    let maxAhead = 0
    for (let off = 0; off < 8 * MiB; off += MiB) {
      assert.equal(await r.read(off, dst), MiB)
      assert.ok(Buffer.from(dst).equals(data.subarray(off, off + MiB)))
      await new Promise((res) => setTimeout(res, 60))
      maxAhead = Math.max(maxAhead, (await fsp.stat(spool)).size - (off + MiB))
    }
    // Unthrottled it would have written all 192 MiB long ago; checked every 10 ms, it overshoots some.
    assert.ok(maxAhead < 96 * MiB, `the decompressor ran at most ${maxAhead} bytes ahead`)
    const last = new Uint8Array(MiB)
    assert.equal(await r.read(191 * MiB, last), MiB)
    assert.ok(Buffer.from(last).equals(data.subarray(191 * MiB)))
    assert.equal(await r.finish(), 192 * MiB)
  } finally {
    await r.close()
    await fh.close()
    await fsp.rm(spoolDir, { recursive: true, force: true })
  }
})
