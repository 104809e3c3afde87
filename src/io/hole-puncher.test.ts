import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import { HolePuncher, holePuncherArgv } from './hole-puncher.js'

test('holePuncherArgv() runs one fallocate per seven NUL-separated arguments, without a shell', () => {
  assert.deepEqual(holePuncherArgv(), ['xargs', '-0', '-n', '7', 'fallocate'])
})

test('HolePuncher frees the ranges asked for (the file keeps its size and reads zeros there), even in a path with spaces', async () => {
  const dir = await fsp.mkdtemp('/dev/shm/hwimage-punch ')
  try {
    const file = path.join(dir, 'spool file')
    const data = randomBytes(8 << 20)
    await fsp.writeFile(file, data)
    const p = new HolePuncher()
    p.punch(file, 0, 2 << 20)
    p.punch(file, 4 << 20, 2 << 20)
    await p.close()
    const back = await fsp.readFile(file)
    assert.equal(back.length, data.length)
    assert.ok(back.subarray(0, 2 << 20).every((x) => x === 0))
    assert.ok(back.subarray(2 << 20, 4 << 20).equals(data.subarray(2 << 20, 4 << 20)))
    assert.ok(back.subarray(4 << 20, 6 << 20).every((x) => x === 0))
    const st = await fsp.stat(file)
    assert.ok(st.blocks * 512 <= (4 << 20) + 65536, `allocated ${st.blocks * 512} bytes`)
  } finally {
    await fsp.rm(dir, { recursive: true, force: true })
  }
})
