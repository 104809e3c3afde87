import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtemp, open, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { InputError } from '../errors.js'
import { mcopyArgv, mkfsVfatArgv, writeFatVolume, writeIsoVolume, xorrisoArgv } from './volume.js'

const MT = { ...process.env, MTOOLS_SKIP_CHECK: '1', MTOOLSRC: '/dev/null' }
const FILES = [
  { path: 'meta-data', bytes: new TextEncoder().encode('instance-id: i-1\n') },
  { path: 'openstack/latest/vendor_data2.json', bytes: new TextEncoder().encode('{"cloud-init": "x"}\n') },
]

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'hwimage-volume-'))
  try {
    await fn(dir)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/** The FAT boot sector fields a test needs (Microsoft FAT spec, BPB). */
async function bootSector(path: string): Promise<{ bytesPerSector: number; label: string; totalBytes: number }> {
  const fh = await open(path, 'r')
  try {
    const b = Buffer.alloc(512)
    await fh.read(b, 0, 512, 0)
    const bytesPerSector = b.readUInt16LE(11)
    const total16 = b.readUInt16LE(19)
    const total = total16 !== 0 ? total16 : b.readUInt32LE(32)
    const fat32 = b.readUInt16LE(22) === 0
    const label = b
      .subarray(fat32 ? 71 : 43, (fat32 ? 71 : 43) + 11)
      .toString('latin1')
      .trimEnd()
    return { bytesPerSector, label, totalBytes: total * bytesPerSector }
  } finally {
    await fh.close()
  }
}

test('mkfsVfatArgv() gives the size in KiB and the label, sector size and volume id', () => {
  assert.deepEqual(
    mkfsVfatArgv('/t/seed.img', {
      label: 'CIDATA',
      sectorSize: 4096,
      sizeBytes: 16 * 1024 * 1024,
      volumeId: '0a0b0c0d',
    }),
    ['mkfs.vfat', '-C', '-n', 'CIDATA', '-S', '4096', '-i', '0a0b0c0d', '/t/seed.img', '16384'],
  )
  assert.deepEqual(mcopyArgv('/t/seed.img', ['/s/a', '/s/b']), [
    'mcopy',
    '-s',
    '-D',
    'o',
    '-i',
    '/t/seed.img',
    '/s/a',
    '/s/b',
    '::/',
  ])
  assert.deepEqual(xorrisoArgv('/t/s.iso', '/s', 'config-2'), [
    'xorriso',
    '-as',
    'mkisofs',
    '-quiet',
    '-o',
    '/t/s.iso',
    '-V',
    'config-2',
    '-J',
    '-R',
    '-input-charset',
    'utf-8',
    '/s',
  ])
})

for (const sectorSize of [512, 4096] as const) {
  test(`writeFatVolume() makes a clean FAT with label CIDATA, ${sectorSize}-byte sectors and the files`, () =>
    withDir(async (dir) => {
      const img = join(dir, 'seed.img')
      await writeFatVolume(FILES, img, { label: 'CIDATA', sectorSize, sizeBytes: 16 * 1024 * 1024 })
      const bs = await bootSector(img)
      assert.equal(bs.bytesPerSector, sectorSize)
      assert.equal(bs.label, 'CIDATA')
      assert.equal(bs.totalBytes, 16 * 1024 * 1024)
      execFileSync('fsck.vfat', ['-n', img]) // throws on a non-zero exit
      assert.equal(
        execFileSync('mtype', ['-i', img, '::/meta-data'], { env: MT, encoding: 'utf8' }),
        'instance-id: i-1\n',
      )
      assert.equal(
        execFileSync('mtype', ['-i', img, '::/openstack/latest/vendor_data2.json'], { env: MT, encoding: 'utf8' }),
        '{"cloud-init": "x"}\n',
      )
      const blkid = execFileSync('blkid', ['-o', 'export', img], { encoding: 'utf8' })
      assert.match(blkid, /^LABEL=CIDATA$/m)
      assert.match(blkid, /^TYPE=vfat$/m)
    }))
}

test('writeFatVolume() keeps the lowercase config-2 label cloud-init looks for', () =>
  withDir(async (dir) => {
    const img = join(dir, 'seed.img')
    await writeFatVolume(FILES, img, { label: 'config-2', sectorSize: 512, sizeBytes: 4 * 1024 * 1024 })
    assert.match(execFileSync('blkid', ['-o', 'export', img], { encoding: 'utf8' }), /^LABEL=config-2$/m)
  }))

test('writeFatVolume() gives equal volumes for equal files', () =>
  withDir(async (dir) => {
    await writeFatVolume(FILES, join(dir, 'a.img'), { label: 'CIDATA', sectorSize: 512, sizeBytes: 2 * 1024 * 1024 })
    await writeFatVolume(FILES, join(dir, 'b.img'), { label: 'CIDATA', sectorSize: 512, sizeBytes: 2 * 1024 * 1024 })
    const id = (p: string) => /^UUID=(.*)$/m.exec(execFileSync('blkid', ['-o', 'export', p], { encoding: 'utf8' }))![1]
    assert.equal(id(join(dir, 'a.img')), id(join(dir, 'b.img')))
  }))

test('writeFatVolume() refuses files that do not fit, as bad input', () =>
  withDir(async (dir) => {
    const big = [{ path: 'user-data', bytes: new Uint8Array(3 * 1024 * 1024) }]
    await assert.rejects(
      writeFatVolume(big, join(dir, 'x.img'), { label: 'CIDATA', sectorSize: 512, sizeBytes: 2 * 1024 * 1024 }),
      (e: unknown) => e instanceof InputError && /do not fit/.test(e.message),
    )
    const almost = [{ path: 'user-data', bytes: new Uint8Array(2 * 1024 * 1024 - 4096) }]
    await assert.rejects(
      writeFatVolume(almost, join(dir, 'y.img'), { label: 'CIDATA', sectorSize: 512, sizeBytes: 2 * 1024 * 1024 }),
      (e: unknown) => e instanceof InputError && /do not fit/.test(e.message),
    )
  }))

test('writeIsoVolume() makes an ISO 9660 volume with the label and the files under their own names', () =>
  withDir(async (dir) => {
    const iso = join(dir, 'seed.iso')
    const size = await writeIsoVolume(FILES, iso, 'config-2')
    assert.ok(size > 0 && size % 2048 === 0)
    assert.match(execFileSync('blkid', ['-o', 'export', iso], { encoding: 'utf8' }), /^LABEL=config-2$/m)
    const names = execFileSync('xorriso', ['-indev', iso, '-find', '/', '-type', 'f'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    })
    assert.deepEqual(names.trim().split('\n').sort(), ["'/meta-data'", "'/openstack/latest/vendor_data2.json'"])
  }))
