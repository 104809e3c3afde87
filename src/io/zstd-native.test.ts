import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { test } from 'node:test'
import { run } from '../tools/run.js'
import { zstdNative } from './zstd-native.js'

test('the native addon decompresses a frame made by zstd(1) into the buffer it is given', async () => {
  const z = zstdNative()
  assert.match(z.zstdVersion(), /^\d+\.\d+\.\d+$/)
  const data = Buffer.concat([randomBytes(100_000), Buffer.alloc(200_000), randomBytes(5)])
  const { stdoutBytes: frame } = await run(['zstd', '-q', '-c', '-'], { input: data, binary: true })
  const dst = new Uint8Array(new SharedArrayBuffer(data.length + 10))
  assert.equal(await z.decompressFrame(frame, dst), data.length)
  assert.ok(Buffer.from(dst.subarray(0, data.length)).equals(data))
  // Too small a buffer, a damaged frame, arguments of the wrong kind.
  await assert.rejects(
    z.decompressFrame(frame, new Uint8Array(1000)),
    (e: unknown) => (e as { code?: string }).code === 'ZSTD_ERROR' && /too small/i.test((e as Error).message),
  )
  const bad = Buffer.from(frame)
  bad[bad.length - 2]! ^= 0xff // the content checksum
  await assert.rejects(
    z.decompressFrame(bad, new Uint8Array(data.length)),
    (e: unknown) => (e as { code?: string }).code === 'ZSTD_ERROR' && /checksum/i.test((e as Error).message),
  )
  assert.throws(() => z.decompressFrame('x' as unknown as Uint8Array, dst), TypeError)
})

test('decompressFirstFrame() decompresses the first frame and ignores the bytes after it, as in a qcow2 cluster', async () => {
  const z = zstdNative()
  const data = Buffer.concat([randomBytes(30_000), Buffer.alloc(35_536, 7)])
  const { stdoutBytes: frame } = await run(['zstd', '-q', '-c', '--no-check', '-'], { input: data, binary: true })
  // Padding up to a 512-byte sector, then the start of another frame (qemu packs clusters that way).
  const padded = Buffer.concat([frame, Buffer.alloc(512 - (frame.length % 512), 0xcc), frame.subarray(0, 100)])
  const dst = new Uint8Array(data.length)
  assert.equal(await z.decompressFirstFrame(padded, dst), data.length)
  assert.ok(Buffer.from(dst).equals(data))
  await assert.rejects(
    z.decompressFrame(padded, new Uint8Array(data.length)),
    (e: unknown) => (e as { code?: string }).code === 'ZSTD_ERROR',
  )
  // A frame cut short, bytes that are no frame, a frame bigger than the buffer.
  for (const [bad, size] of [
    [frame.subarray(0, frame.length - 10), data.length],
    [Buffer.alloc(600, 0xcc), data.length],
    [padded, data.length - 1],
  ] as const) {
    await assert.rejects(
      z.decompressFirstFrame(bad, new Uint8Array(size)),
      (e: unknown) => (e as { code?: string }).code === 'ZSTD_ERROR' && e instanceof Error && e.message.length > 0,
    )
  }
  assert.throws(
    () => z.decompressFirstFrame(padded, 5 as unknown as Uint8Array),
    /decompressFirstFrame\(src: Uint8Array, dst: Uint8Array\)/,
  )
})
