import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { FormatError } from '../errors.js'
import { run } from '../tools/run.js'
import { decodeExtSuperblock, isExtFilesystem } from './ext4-superblock.js'

let dir: string
before(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hwimage-ext4sb-'))
})
after(async () => {
  await fsp.rm(dir, { recursive: true, force: true })
})

async function ext4(blockSize: number, blocks: number): Promise<Uint8Array> {
  const image = path.join(dir, `fs-${blockSize}.img`)
  await fsp.writeFile(image, new Uint8Array(0))
  await fsp.truncate(image, blockSize * blocks + 65536)
  await run(['mkfs.ext4', '-F', '-q', '-b', String(blockSize), image, String(blocks)])
  const fh = await fsp.open(image, 'r')
  const b = new Uint8Array(4096)
  await fh.read(b, 0, b.length, 0)
  await fh.close()
  return b
}

test("decodeExtSuperblock() reads mkfs.ext4's block size and block count", async () => {
  for (const [bs, blocks] of [
    [4096, 4096],
    [1024, 8192],
  ] as const) {
    const head = await ext4(bs, blocks)
    assert.ok(isExtFilesystem(head))
    assert.deepEqual(decodeExtSuperblock(head), {
      blockSize: bs,
      blocksCount: BigInt(blocks),
      sizeBytes: BigInt(bs * blocks),
    })
  }
})

test('decodeExtSuperblock() rejects a wrong magic and a short buffer with FORMAT_IMAGE', async () => {
  const head = await ext4(4096, 4096)
  const bad = new Uint8Array(head)
  bad[1024 + 0x38] = 0
  assert.equal(isExtFilesystem(bad), false)
  assert.throws(
    () => decodeExtSuperblock(bad),
    (e: unknown) => e instanceof FormatError && e.code === 'FORMAT_IMAGE' && /magic 0xEF53/.test(e.message),
  )
  assert.throws(
    () => decodeExtSuperblock(head.subarray(0, 1500)),
    (e: unknown) => e instanceof FormatError,
  )
})
