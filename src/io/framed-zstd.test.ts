import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { writeSeekableZstd } from '../build/seekable-zstd.js'
import { InputError } from '../errors.js'
import { run } from '../tools/run.js'
import { readSeekTable, startFramedZstd } from './framed-zstd.js'
import { fileReadAt } from './read-fully.js'
import type { ImageReader } from './image-reader.js'

const MiB = 1 << 20
let dir: string
let raw: Uint8Array
let img: string
let zst: string

before(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hwimage-framed-'))
  // 10.5 MiB in 1 MiB frames: data, zeros, data, and a short last frame.
  raw = new Uint8Array(10 * MiB + MiB / 2)
  raw.set(randomBytes(2 * MiB + 100), 0)
  raw.set(randomBytes(3 * MiB), 6 * MiB)
  raw.set(randomBytes(1000), 10 * MiB + 5)
  img = path.join(dir, 'x.img')
  await fsp.writeFile(img, raw)
  zst = `${img}.zst`
  assert.equal(await writeSeekableZstd(img, zst, { frameBytes: MiB, jobs: 3 }), 11)
})
after(async () => {
  await fsp.rm(dir, { recursive: true, force: true })
})

/** Reads each span through `r` and compares it with the image; then the reader ends cleanly at the image's size. */
async function expectSpans(r: ImageReader, spans: Array<{ offset: number; length: number }>): Promise<void> {
  for (const s of spans) {
    const dst = new Uint8Array(s.length)
    assert.equal(await r.read(s.offset, dst), s.length)
    assert.ok(Buffer.from(dst).equals(raw.subarray(s.offset, s.offset + s.length)), `bytes at ${s.offset}`)
  }
  assert.equal(await r.finish(), raw.length)
}

const open = async (file: string) => {
  const fh = await fsp.open(file, 'r')
  return { fh, size: (await fh.stat()).size }
}

test('a seekable .zst is an ordinary .zst to zstd, and its seek table lists its frames', async () => {
  const { stdoutBytes } = await run(['zstd', '-dcq', zst], { binary: true })
  assert.ok(stdoutBytes.equals(raw), 'zstd -d gives the image back')
  const { fh, size } = await open(zst)
  try {
    const table = await readSeekTable(fileReadAt(fh), size, zst)
    assert.ok(table)
    assert.equal(table.frames.length, 11)
    assert.equal(table.imageSize, raw.length)
    assert.equal(table.frames[10]!.imageSize, MiB / 2)
  } finally {
    await fh.close()
  }
  // A plain .zst has none.
  await run(['zstd', '-q', '-f', '-o', path.join(dir, 'plain.zst'), img])
  const plain = await open(path.join(dir, 'plain.zst'))
  try {
    assert.equal(await readSeekTable(fileReadAt(plain.fh), plain.size, 'plain.zst'), undefined)
  } finally {
    await plain.fh.close()
  }
})

test('startFramedZstd: the wanted spans, read forward, with one frame or three decompressed at once; the other frames skipped', async () => {
  const { fh, size } = await open(zst)
  const spans = [
    { offset: 0, length: 4096 },
    { offset: MiB + 10, length: MiB }, // across the frame 1/2 boundary
    { offset: 6 * MiB + 4096, length: 3 * MiB - 8192 },
    { offset: 10 * MiB, length: MiB / 2 },
  ]
  try {
    const table = (await readSeekTable(fileReadAt(fh), size, zst))!
    for (const ahead of [1, 3]) {
      const r = await startFramedZstd({ file: fh }, table, { wanted: spans, ahead, sourceName: zst })
      try {
        await expectSpans(r, spans)
      } finally {
        await r.close()
      }
    }
    // Everything, in reads that cross frames (11 frames through 2 buffers).
    const whole = await startFramedZstd({ file: fh }, table, { ahead: 1 })
    try {
      await expectSpans(whole, [
        { offset: 0, length: 3 * MiB + 12345 },
        { offset: 3 * MiB + 12345, length: raw.length - 3 * MiB - 12345 },
      ])
    } finally {
      await whole.close()
    }
    // Frames 3–5 (zeros) were not wanted: asking for them is a programming error, not zeros.
    const again = await startFramedZstd({ file: fh }, table, {
      wanted: [
        { offset: 0, length: 10 },
        { offset: 6 * MiB, length: 10 },
      ],
      ahead: 2,
    })
    try {
      await assert.rejects(again.read(4 * MiB, new Uint8Array(10)), /not decompressed/)
    } finally {
      await again.close()
    }
  } finally {
    await fh.close()
  }
})

test('startFramedZstd: a corrupt frame fails with SOURCE_CORRUPT naming the frame and its bytes', async () => {
  const bytes = Buffer.from(await fsp.readFile(zst))
  const { fh: fh0, size } = await open(zst)
  const table = (await readSeekTable(fileReadAt(fh0), size, zst))!
  await fh0.close()
  const f = table.frames[7]!
  bytes[f.compressedOffset + Math.floor(f.compressedSize / 2)]! ^= 0x10
  const bad = path.join(dir, 'bad.img.zst')
  await fsp.writeFile(bad, bytes)
  const { fh } = await open(bad)
  try {
    const r = await startFramedZstd({ file: fh }, table, { ahead: 2, sourceName: bad })
    try {
      const all = async () => {
        const dst = new Uint8Array(MiB)
        for (let at = 0; at < raw.length; at += MiB) await r.read(at, dst)
        await r.finish()
      }
      await assert.rejects(
        all(),
        (e: unknown) =>
          e instanceof InputError &&
          e.code === 'SOURCE_CORRUPT' &&
          /frame 7 \(compressed bytes \d+–\d+, image bytes 7340032–8388607\)/.test(e.message),
      )
    } finally {
      await r.close()
    }
  } finally {
    await fh.close()
  }
})

test('startFramedZstd over one stream of the whole file: frames cut from it, the skipped frames read and dropped', async () => {
  const all = await fsp.readFile(zst)
  let streamed = 0
  async function* download(): AsyncGenerator<Uint8Array> {
    // Pieces that do not line up with frames.
    for (let at = 0; at < all.length; at += 70_001) {
      const piece = all.subarray(at, at + 70_001)
      streamed += piece.length
      yield piece
    }
  }
  const { fh, size } = await open(zst)
  const table = (await readSeekTable(fileReadAt(fh), size, zst))!
  await fh.close()
  const spans = [
    { offset: 0, length: 3 * MiB },
    { offset: 6 * MiB, length: 3 * MiB },
    { offset: 10 * MiB, length: MiB / 2 },
  ]
  const r = await startFramedZstd({ stream: download() }, table, { wanted: spans, ahead: 2, sourceName: zst })
  try {
    await expectSpans(r, spans)
    assert.equal(streamed, all.length, 'the stream was read to its end (the digest covers it all)')
  } finally {
    await r.close()
  }
})

test('startFramedZstd: a stream that ends inside a wanted frame fails with SOURCE_TRUNCATED naming the frame', async () => {
  const all = await fsp.readFile(zst)
  const { fh, size } = await open(zst)
  const table = (await readSeekTable(fileReadAt(fh), size, zst))!
  await fh.close()
  const f = table.frames[6]!
  async function* cut(): AsyncGenerator<Uint8Array> {
    yield all.subarray(0, f.compressedOffset + 100)
  }
  const r = await startFramedZstd({ stream: cut() }, table, { ahead: 2, sourceName: zst })
  try {
    const dst = new Uint8Array(MiB)
    for (let at = 0; at < 6 * MiB; at += MiB) await r.read(at, dst) // frames 0–5 are whole
    await assert.rejects(
      r.read(6 * MiB, dst),
      (e: unknown) =>
        e instanceof InputError &&
        e.code === 'SOURCE_TRUNCATED' &&
        /compressed byte \d+, inside frame 6 /.test(e.message),
    )
  } finally {
    await r.close()
  }
})

test('startFramedZstd: a seek table whose sizes do not match the frames fails with SOURCE_CORRUPT', async () => {
  const { fh, size } = await open(zst)
  try {
    const table = (await readSeekTable(fileReadAt(fh), size, zst))!
    for (const delta of [-1, 1]) {
      const frames = table.frames.map((f, i) => (i === 2 ? { ...f, imageSize: f.imageSize + delta } : f))
      const r = await startFramedZstd({ file: fh }, { ...table, frames }, { sourceName: zst })
      try {
        await assert.rejects(
          r.finish(),
          (e: unknown) => e instanceof InputError && e.code === 'SOURCE_CORRUPT' && /frame 2 /.test(e.message),
        )
      } finally {
        await r.close()
      }
    }
  } finally {
    await fh.close()
  }
})

test('startFramedZstd with hash: the whole file is handed over once, in order and in shared memory, while only the wanted frames are decompressed', async () => {
  const all = await fsp.readFile(zst)
  const { fh, size } = await open(zst)
  try {
    const table = (await readSeekTable(fileReadAt(fh), size, zst))!
    const pieces: Uint8Array[] = []
    const hash = async (b: Uint8Array): Promise<void> => {
      assert.ok(b.buffer instanceof SharedArrayBuffer)
      pieces.push(b.slice())
    }
    const spans = [{ offset: 6 * MiB, length: 3 * MiB }]
    const r = await startFramedZstd({ file: fh, hash }, table, { wanted: spans, ahead: 1 })
    try {
      await expectSpans(r, spans)
    } finally {
      await r.close()
    }
    assert.equal(pieces.length, table.frames.length + 1, 'every frame and the seek table')
    assert.ok(Buffer.concat(pieces).equals(all), 'the pieces are the file')
  } finally {
    await fh.close()
  }
})

test('startFramedZstd with hash: the file is read no further ahead of a slow hash than a few frames (bounded memory)', async () => {
  const { fh, size } = await open(zst)
  try {
    const table = (await readSeekTable(fileReadAt(fh), size, zst))!
    // A hash that keeps every piece until let go: the reader may not run ahead of it.
    const held: Array<() => void> = []
    const hash = (): Promise<void> => new Promise((resolve) => held.push(resolve))
    const spans = [{ offset: 10 * MiB, length: MiB / 2 }] // only the last frame: ten frames to read past it
    const r = await startFramedZstd({ file: fh, hash }, table, { wanted: spans, ahead: 1 })
    try {
      const read = r.read(spans[0]!.offset, new Uint8Array(spans[0]!.length))
      await new Promise((resolve) => setTimeout(resolve, 200))
      assert.ok(
        held.length >= 1 && held.length <= 3,
        `${held.length} frames read ahead of the hash (frames at once 1, + 2)`,
      )
      // Let the hash go on: the reader follows, to the end.
      const drain = setInterval(() => {
        for (const go of held.splice(0)) go()
      }, 5)
      try {
        assert.equal(await read, spans[0]!.length)
        assert.equal(await r.finish(), raw.length)
      } finally {
        clearInterval(drain)
      }
    } finally {
      await r.close()
    }
  } finally {
    await fh.close()
  }
})

test('startFramedZstd: closing the reader while the file waits for a slow hash ends the waiting read', async () => {
  const { fh, size } = await open(zst)
  try {
    const table = (await readSeekTable(fileReadAt(fh), size, zst))!
    const hash = (): Promise<void> => new Promise(() => {}) // never done
    const spans = [{ offset: 10 * MiB, length: MiB / 2 }]
    const r = await startFramedZstd({ file: fh, hash }, table, { wanted: spans, ahead: 1 })
    const read = r.read(spans[0]!.offset, new Uint8Array(spans[0]!.length))
    await new Promise((resolve) => setTimeout(resolve, 100))
    await r.close()
    await assert.rejects(read, /closed/)
  } finally {
    await fh.close()
  }
})
