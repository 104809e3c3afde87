import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import { HolePuncher, holePuncherArgv } from './hole-puncher.js'
import { openUnlinkedFile } from './unlinked-file.js'

test('holePuncherArgv() runs one fallocate per seven NUL-separated arguments, without a shell', () => {
  assert.deepEqual(holePuncherArgv(), ['xargs', '-0', '-n', '7', 'fallocate'])
})

/** Writes 8 MiB of random data, punches [0, 2) and [4, 6) MiB, and checks the file keeps its size and reads zeros there. */
async function punchAndCheck(fh: fsp.FileHandle): Promise<void> {
  const data = randomBytes(8 << 20)
  await fh.write(data, 0, data.length, 0)
  const p = new HolePuncher(fh.fd)
  p.punch(0, 2 << 20)
  p.punch(4 << 20, 2 << 20)
  await p.close()
  const back = Buffer.alloc(data.length + 1)
  assert.equal((await fh.read(back, 0, back.length, 0)).bytesRead, data.length)
  assert.ok(back.subarray(0, 2 << 20).every((x) => x === 0))
  assert.ok(back.subarray(2 << 20, 4 << 20).equals(data.subarray(2 << 20, 4 << 20)))
  assert.ok(back.subarray(4 << 20, 6 << 20).every((x) => x === 0))
  assert.ok(back.subarray(6 << 20, 8 << 20).equals(data.subarray(6 << 20, 8 << 20)))
  const st = await fh.stat()
  assert.ok(st.blocks * 512 <= (4 << 20) + 65536, `allocated ${st.blocks * 512} bytes`)
}

test('HolePuncher frees the ranges asked for in a file that has no name, by its descriptor', async () => {
  const dir = await fsp.mkdtemp('/dev/shm/hwimage-punch ')
  const fh = await openUnlinkedFile(dir, 'x-')
  try {
    assert.deepEqual(await fsp.readdir(dir), [])
    await punchAndCheck(fh)
  } finally {
    await fh.close()
    await fsp.rm(dir, { recursive: true, force: true })
  }
})

test('HolePuncher punches a named file by its descriptor, whatever its path', async () => {
  const dir = await fsp.mkdtemp('/dev/shm/hwimage-punch ')
  const fh = await fsp.open(path.join(dir, 'spool file'), 'w+')
  try {
    await punchAndCheck(fh)
  } finally {
    await fh.close()
    await fsp.rm(dir, { recursive: true, force: true })
  }
})
