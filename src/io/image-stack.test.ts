import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Readable } from 'node:stream'
import { after, before, test } from 'node:test'
import { openByteSource } from '../io/byte-source.js'
import { run } from '../tools/run.js'
import { openImage } from './open-image.js'

const MiB = 1 << 20
let dir: string
let raw: Buffer
let qcow2: Buffer

before(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hwimage-open-image-'))
  raw = Buffer.alloc(6 * MiB)
  randomBytes(2 * MiB).copy(raw, MiB)
  const img = path.join(dir, 'x.img')
  await fsp.writeFile(img, raw)
  await run(['qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2', img, path.join(dir, 'x.qcow2')])
  qcow2 = await fsp.readFile(path.join(dir, 'x.qcow2'))
})
after(async () => {
  await fsp.rm(dir, { recursive: true, force: true })
})

/** Our descriptors on files (deleted or not) in `dir`. */
async function descriptorsIn(d: string): Promise<string[]> {
  const found: string[] = []
  for (const fd of await fsp.readdir('/proc/self/fd')) {
    const link = await fsp.readlink(`/proc/self/fd/${fd}`).catch(() => '')
    if (link.startsWith(`${d}/`)) found.push(link)
  }
  return found
}

test('a qcow2 from stdin is spooled to a file with no name in the temp dir, read correctly, and gone once closed', async () => {
  // A temp dir of this test's own (os.tmpdir() reads TMPDIR), so that only this spool can be in it.
  const tmp = await fsp.mkdtemp(path.join(dir, 'tmp-'))
  const saved = process.env.TMPDIR
  process.env.TMPDIR = tmp
  const seen: string[][] = []
  async function* chunks(): AsyncGenerator<Buffer> {
    for (let i = 0; i < qcow2.length; i += 256 * 1024) {
      seen.push(await fsp.readdir(tmp))
      yield qcow2.subarray(i, i + 256 * 1024)
    }
    seen.push(await fsp.readdir(tmp))
  }
  try {
    const source = await openByteSource('-', { stdin: Readable.from(chunks()) })
    const opened = await openImage(source, 'qcow2', { hashSource: true })
    try {
      assert.ok(seen.length > 2)
      for (const names of seen) assert.deepEqual(names, [], 'no name in the temp dir while spooling')
      assert.deepEqual(await fsp.readdir(tmp), [])
      assert.equal((await descriptorsIn(tmp)).length, 1, 'the spool is open')
      const dst = new Uint8Array(raw.length)
      assert.equal(await opened.reader.read(0, dst), raw.length)
      assert.ok(Buffer.from(dst).equals(raw))
      await opened.reader.finish()
      assert.equal(await opened.sourceDigest(), createHash('sha256').update(qcow2).digest('hex'))
    } finally {
      await opened.reader.close()
      await source.close()
    }
    assert.deepEqual(await descriptorsIn(tmp), [], 'the spool is closed')
    assert.deepEqual(await fsp.readdir(tmp), [])
  } finally {
    if (saved === undefined) delete process.env.TMPDIR
    else process.env.TMPDIR = saved
  }
})
