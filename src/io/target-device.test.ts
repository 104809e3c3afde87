import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import { DeviceError } from '../errors.js'
import { alignedBytes } from './aligned-memory.js'
import { TargetDevice } from './target-device.js'
import { blkdiscardZeroArgv, punchHoleArgv, zeroRange } from './zero-range.js'

async function withFile(size: number, fn: (file: string) => Promise<void>, where = '/var/tmp'): Promise<void> {
  const dir = await fsp.mkdtemp(path.join(where, 'hwimage-target-'))
  try {
    const file = path.join(dir, 'disk.raw')
    await fsp.writeFile(file, Buffer.alloc(size, 0xcc))
    await fn(file)
  } finally {
    await fsp.rm(dir, { recursive: true, force: true })
  }
}

test('TargetDevice writes aligned memory directly and anything else through the page cache, both readable', async () => {
  await withFile(1 << 20, async (file) => {
    const dev = await TargetDevice.open(file, 512)
    try {
      const a = alignedBytes(8192).fill(1)
      await dev.write(4096, a)
      await dev.write(100, new Uint8Array([9, 9, 9]))
      await dev.writeZeros(65536, 512)
      await dev.sync()
      const back = alignedBytes(70000 + 4096 - (70000 % 4096))
      const n = await dev.read(0, back)
      assert.equal(n, back.length)
      assert.deepEqual([...back.subarray(99, 104)], [0xcc, 9, 9, 9, 0xcc])
      assert.ok(back.subarray(4096, 12288).every((x) => x === 1))
      assert.ok(back.subarray(65536, 66048).every((x) => x === 0))
      assert.equal(back[66048], 0xcc)
    } finally {
      await dev.close()
    }
  })
})

test('TargetDevice.open() refuses a missing path and a character device', async () => {
  await assert.rejects(
    TargetDevice.open('/nonexistent/x', 512),
    (e: unknown) => e instanceof DeviceError && e.code === 'NOT_FOUND',
  )
  await assert.rejects(
    TargetDevice.open('/dev/null', 512),
    (e: unknown) => e instanceof DeviceError && e.code === 'TARGET_INVALID',
  )
})

test('zeroRange() punches a hole in a file: it reads as zeros and keeps its size', async () => {
  for (const where of ['/var/tmp', os.tmpdir(), '/dev/shm']) {
    await withFile(
      1 << 20,
      async (file) => {
        const dev = await TargetDevice.open(file, 512)
        try {
          assert.equal(await zeroRange(dev, 4096, 65536), 'punch-hole')
          const b = Buffer.alloc(1 << 20)
          await dev.read(0, b)
          assert.equal(b[4095], 0xcc)
          assert.ok(b.subarray(4096, 4096 + 65536).every((x) => x === 0))
          assert.equal(b[4096 + 65536], 0xcc)
          assert.equal((await fsp.stat(file)).size, 1 << 20)
        } finally {
          await dev.close()
        }
      },
      where,
    )
  }
})

test('the zeroing argv are BLKZEROOUT by blkdiscard --zeroout and a kept-size hole punch', () => {
  assert.deepEqual(blkdiscardZeroArgv('/dev/sdb', 1048576, 4096), [
    'blkdiscard',
    '--force',
    '--zeroout',
    '--offset',
    '1048576',
    '--length',
    '4096',
    '/dev/sdb',
  ])
  assert.deepEqual(punchHoleArgv('/x', 0, 512), [
    'fallocate',
    '--punch-hole',
    '--keep-size',
    '--offset',
    '0',
    '--length',
    '512',
    '/x',
  ])
})
