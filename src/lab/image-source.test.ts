import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { resolveLabImage } from './image-source.js'
import { InputError } from '../errors.js'

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'hwimage-src-'))
  try {
    await fn(dir)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

test("resolveLabImage() finds the raw image a build directory's manifest names", async () => {
  await withDir(async (dir) => {
    await writeFile(join(dir, 'debian-12.img'), new Uint8Array(4096))
    await writeFile(
      join(dir, 'manifest.json'),
      JSON.stringify({
        name: 'debian-12',
        image: { file: 'debian-12.img' },
        kernel: { flavor: 'cloud', version: '6.1.0-28-cloud-amd64' },
        files: [{ name: 'debian-12.img.zst' }, { name: 'debian-12.img' }],
      }),
    )
    const img = await resolveLabImage(dir)
    assert.deepEqual(img, {
      path: join(dir, 'debian-12.img'),
      format: 'raw',
      name: 'debian-12',
      kernelFlavor: 'cloud',
      kernelVersion: '6.1.0-28-cloud-amd64',
    })
  })
})

test("resolveLabImage() falls back to the .img in the manifest's file list", async () => {
  await withDir(async (dir) => {
    await writeFile(join(dir, 'a.img'), new Uint8Array(512))
    await writeFile(join(dir, 'manifest.json'), JSON.stringify({ files: ['a.img.zst', 'a.img.bmap', 'a.img'] }))
    assert.equal((await resolveLabImage(dir)).path, join(dir, 'a.img'))
  })
})

test('resolveLabImage() tells qcow2 from raw by magic and refuses a zstd file', async () => {
  await withDir(async (dir) => {
    await writeFile(join(dir, 'x.qcow2'), new Uint8Array([0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 3]))
    assert.equal((await resolveLabImage(join(dir, 'x.qcow2'))).format, 'qcow2')
    await writeFile(join(dir, 'x.img.zst'), new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, 0]))
    await assert.rejects(
      resolveLabImage(join(dir, 'x.img.zst')),
      (e: unknown) => e instanceof InputError && e.code === 'FORMAT_IMAGE',
    )
  })
})

test('resolveLabImage() says what is wrong with a directory or a missing file', async () => {
  await withDir(async (dir) => {
    await assert.rejects(
      resolveLabImage(join(dir, 'nope.img')),
      (e: unknown) => e instanceof InputError && e.code === 'NOT_FOUND',
    )
    await mkdir(join(dir, 'empty'))
    await assert.rejects(
      resolveLabImage(join(dir, 'empty')),
      (e: unknown) => e instanceof InputError && /no manifest\.json/.test(e.message),
    )
    await writeFile(join(dir, 'empty', 'manifest.json'), JSON.stringify({ files: [{ name: 'SHA256SUMS' }] }))
    await assert.rejects(
      resolveLabImage(join(dir, 'empty')),
      (e: unknown) => e instanceof InputError && /names no \.img/.test(e.message),
    )
  })
})
