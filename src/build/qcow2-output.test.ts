import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, open, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { run } from '../tools/run.js'
import { sha256OfFile } from './outputs.js'
import { qcow2Argv, qcow2Name, writeQcow2 } from './qcow2-output.js'

test('qcow2Argv() converts in order (no -W), compressed, with the cluster compression named', () => {
  const argv = qcow2Argv('/o/x.img', '/o/x.qcow2', 'zstd')
  assert.deepEqual(argv.slice(0, 2), ['qemu-img', 'convert'])
  assert.ok(argv.includes('-c'))
  assert.ok(!argv.includes('-W'), 'out-of-order writes would make the file differ run to run')
  assert.equal(argv[argv.indexOf('-o') + 1], 'compression_type=zstd')
  assert.deepEqual(argv.slice(-2), ['/o/x.img', '/o/x.qcow2'])
  assert.equal(qcow2Name('debian-12-server-amd64'), 'debian-12-server-amd64.qcow2')
})

test('writeQcow2() makes a qcow2 qemu-img finds clean and equal to the raw image, the same file twice', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hwimage-qcow2-'))
  try {
    const img = join(dir, 'x.img')
    const fh = await open(img, 'w')
    // 8 MiB sparse, data at a few places: text, random-looking bytes, a block of zeros written out.
    await fh.truncate(8 * 1024 * 1024)
    await fh.write(Buffer.from('hwimage '.repeat(8192)), 0, undefined, 65536)
    const noise = Buffer.alloc(200_000)
    for (let i = 0; i < noise.length; i++) noise[i] = (i * 2654435761) >>> 24
    await fh.write(noise, 0, undefined, 3 * 1024 * 1024 + 17)
    await fh.write(Buffer.alloc(1024 * 1024), 0, undefined, 6 * 1024 * 1024)
    await fh.close()
    for (const c of ['zstd', 'zlib'] as const) {
      const a = await writeQcow2(img, join(dir, `a-${c}.qcow2`), c)
      const b = await writeQcow2(img, join(dir, `b-${c}.qcow2`), c)
      await run(['qemu-img', 'check', '-q', a])
      await run(['qemu-img', 'compare', '-q', '-f', 'raw', '-F', 'qcow2', img, a])
      const info = JSON.parse((await run(['qemu-img', 'info', '--output=json', a])).stdout)
      assert.equal(info['format-specific'].data['compression-type'], c)
      assert.equal(await sha256OfFile(a), await sha256OfFile(b), `two ${c} conversions of one image are one file`)
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
