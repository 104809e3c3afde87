import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { FormatError, InputError } from '../errors.js'
import { run } from '../tools/run.js'
import { openQcow2, type ReadAt } from './qcow2-reader.js'

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
  await run(['qemu-img', 'convert', '-c', '-f', 'raw', '-O', 'qcow2', '-o', 'cluster_size=4096', path.join(dir, 'x.img'), path.join(dir, 'small-compressed.qcow2')])
  await run(['qemu-img', 'create', '-f', 'qcow2', '-F', 'raw', '-b', path.join(dir, 'x.img'), path.join(dir, 'overlay.qcow2')])
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
    for (const [offset, length] of [[0, 3 * MiB], [4 * MiB - 7, 2 * MiB + 14], [9 * MiB - 2000, 10000]] as const) {
      const dst = new Uint8Array(length).fill(0xee)
      assert.equal(await r.read(offset, dst), Math.min(length, raw.length - offset))
      assert.ok(Buffer.from(dst.subarray(0, Math.min(length, raw.length - offset))).equals(raw.subarray(offset, offset + length)), `bytes at ${offset}`)
    }
    assert.equal(await r.finish(), raw.length)
  })
}

test('openQcow2() refuses a damaged header with FORMAT_QCOW2', async () => {
  const file = Buffer.from(await fsp.readFile(path.join(dir, 'plain.qcow2')))
  file.writeUInt32BE(99, 20) // cluster_bits
  await assert.rejects(openQcow2(fileReadAt(file), 'bad.qcow2'), (e: unknown) => e instanceof FormatError && e.code === 'FORMAT_QCOW2' && /cluster_bits/.test(e.message))
})

test('openQcow2() refuses an overlay with a backing file, naming it', async () => {
  const file = await fsp.readFile(path.join(dir, 'overlay.qcow2'))
  await assert.rejects(openQcow2(fileReadAt(file), 'overlay.qcow2'), (e: unknown) => e instanceof FormatError && /backing file ".*x\.img"/.test(e.message))
})

test('a qcow2 cut short fails with SOURCE_TRUNCATED when the data is read', async () => {
  const file = await fsp.readFile(path.join(dir, 'plain.qcow2'))
  const r = await openQcow2(fileReadAt(file.subarray(0, file.length - 200_000)), 'cut.qcow2')
  await assert.rejects(r.read(0, new Uint8Array(raw.length)), (e: unknown) => e instanceof InputError && e.code === 'SOURCE_TRUNCATED')
})
