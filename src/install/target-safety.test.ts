import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import { DeviceError } from '../errors.js'
import { devParts, inspectTarget } from './target-info.js'
import { assertNotBusy, findBusy, parseMountinfo, parseSwaps } from './target-safety.js'

test('parseMountinfo() reads the device number, mount point and source, unescaping spaces', () => {
  const text = [
    '22 27 0:21 / /proc rw,relatime - proc proc rw',
    '36 27 8:17 / /mnt/my\\040disk rw,relatime shared:1 - ext4 /dev/sdb1 rw',
    '40 27 253:0 / / rw master:2 - xfs /dev/mapper/vg-root rw',
    'garbage',
  ].join('\n')
  assert.deepEqual(parseMountinfo(text), [
    { devno: '0:21', mountPoint: '/proc', source: 'proc' },
    { devno: '8:17', mountPoint: '/mnt/my disk', source: '/dev/sdb1' },
    { devno: '253:0', mountPoint: '/', source: '/dev/mapper/vg-root' },
  ])
})

test('parseSwaps() lists the swap areas after the header line', () => {
  const text =
    'Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/dev/sdb2                               partition\t8388604\t\t0\t\t-2\n/swap\\040file file 1024 0 -3\n'
  assert.deepEqual(parseSwaps(text), ['/dev/sdb2', '/swap file'])
})

test('devParts() splits a dev_t into major and minor like glibc', () => {
  assert.deepEqual(devParts(0xfe00), { major: 254, minor: 0 })
  assert.deepEqual(devParts(0x0811), { major: 8, minor: 17 })
  // major 259 (blkext), minor 300: minor's high bits live above bit 20
  assert.deepEqual(devParts((259 << 8) | (300 & 0xff) | ((300 & ~0xff) << 12)), { major: 259, minor: 300 })
})

test('findBusy() finds nothing wrong with a plain image file, and assertNotBusy() lets it pass', async () => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hwimage-safety-'))
  try {
    const file = path.join(dir, 'disk.raw')
    await fsp.writeFile(file, new Uint8Array(4096))
    const info = await inspectTarget(file)
    assert.equal(info.kind, 'file')
    assert.equal(info.sectorSize, 512)
    const busy = await findBusy(info)
    assert.deepEqual(busy, [])
    assertNotBusy(info, busy)
  } finally {
    await fsp.rm(dir, { recursive: true, force: true })
  }
})

test('findBusy() reports a file listed as active swap, and assertNotBusy() refuses it with DEVICE_BUSY', async () => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hwimage-safety-'))
  try {
    const file = path.join(dir, 'swap file')
    await fsp.writeFile(file, new Uint8Array(4096))
    const swaps = path.join(dir, 'swaps')
    await fsp.writeFile(swaps, `Filename Type Size Used Priority\n${file.replaceAll(' ', '\\040')} file 4 0 -2\n`)
    const info = await inspectTarget(file)
    const busy = await findBusy(info, { mountinfo: '/dev/null', swaps })
    assert.deepEqual(
      busy.map((b) => b.kind),
      ['swap'],
    )
    assert.throws(
      () => assertNotBusy(info, busy),
      (e: unknown) => e instanceof DeviceError && e.code === 'DEVICE_BUSY' && /active swap file/.test(e.message),
    )
  } finally {
    await fsp.rm(dir, { recursive: true, force: true })
  }
})

test('inspectTarget() refuses what is neither a block device nor a file', async () => {
  await assert.rejects(
    inspectTarget('/dev/null'),
    (e: unknown) => e instanceof DeviceError && e.code === 'TARGET_INVALID',
  )
  await assert.rejects(
    inspectTarget('/nonexistent/disk'),
    (e: unknown) => e instanceof DeviceError && e.code === 'NOT_FOUND',
  )
})

test('findBusy() names device-mapper and md holders stacked on a disk or its partitions (a sysfs tree)', async () => {
  const { SYS } = await import('./target-info.js')
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hwimage-sysfs-'))
  const saved = SYS.root
  try {
    // /sys/devices/…/sdb with sdb1 (held by dm-0, "vg-root") and sdb2 (held by md127); dm-3 sits on dm-0.
    const dev = path.join(dir, 'devices')
    const sdb = path.join(dev, 'pci/block/sdb')
    const mk = async (p: string, files: Record<string, string>): Promise<void> => {
      await fsp.mkdir(p, { recursive: true })
      for (const [k, v] of Object.entries(files)) {
        await fsp.mkdir(path.dirname(path.join(p, k)), { recursive: true })
        await fsp.writeFile(path.join(p, k), v)
      }
    }
    await mk(sdb, { dev: '8:16\n', size: '2048\n' })
    await mk(path.join(sdb, 'sdb1'), { dev: '8:17\n', partition: '1\n' })
    await mk(path.join(sdb, 'sdb2'), { dev: '8:18\n', partition: '2\n' })
    await mk(path.join(dev, 'virtual/block/dm-0'), { dev: '253:0\n', 'dm/name': 'vg-root\n' })
    await mk(path.join(dev, 'virtual/block/dm-3'), { dev: '253:3\n', 'dm/name': 'vg-root-crypt\n' })
    await mk(path.join(dev, 'virtual/block/md127'), { dev: '9:127\n' })
    for (const [from, to] of [
      ['pci/block/sdb/sdb1/holders/dm-0', 'virtual/block/dm-0'],
      ['pci/block/sdb/sdb2/holders/md127', 'virtual/block/md127'],
      ['virtual/block/dm-0/holders/dm-3', 'virtual/block/dm-3'],
    ] as const) {
      await fsp.mkdir(path.dirname(path.join(dev, from)), { recursive: true })
      await fsp.symlink(path.join(dev, to), path.join(dev, from))
    }
    await fsp.mkdir(path.join(dir, 'dev/block'), { recursive: true })
    await fsp.mkdir(path.join(dir, 'class/block'), { recursive: true })
    for (const [devno, p] of [
      ['8:16', 'pci/block/sdb'],
      ['253:0', 'virtual/block/dm-0'],
      ['253:3', 'virtual/block/dm-3'],
    ] as const) {
      await fsp.symlink(path.join(dev, p), path.join(dir, 'dev/block', devno))
      await fsp.symlink(path.join(dev, p), path.join(dir, 'class/block', path.basename(p)))
    }
    const mountinfo = path.join(dir, 'mountinfo')
    await fsp.writeFile(mountinfo, '40 27 253:3 / /srv rw - ext4 /dev/mapper/vg-root-crypt rw\n')
    SYS.root = dir
    const target = {
      path: '/dev/sdb',
      kind: 'block' as const,
      size: 1 << 20,
      sectorSize: 512,
      devno: '8:16',
      isPartition: false,
      partitions: ['sdb1', 'sdb2'],
    }
    const busy = await findBusy(target, { mountinfo, swaps: '/dev/null' })
    assert.deepEqual(
      busy.map((b) => `${b.kind}: ${b.detail}`),
      [
        'mounted: /dev/dm-3 (on sdb1) is mounted at /srv',
        'holder: /dev/dm-0 (vg-root) is built on sdb1',
        'holder: /dev/dm-3 (vg-root-crypt) is built on sdb1',
        'holder: /dev/md127 is built on sdb2',
      ],
    )
    assert.throws(
      () => assertNotBusy(target, busy),
      (e: unknown) => e instanceof DeviceError && /vgchange -an|mdadm --stop/.test(e.hint ?? ''),
    )
  } finally {
    SYS.root = saved
    await fsp.rm(dir, { recursive: true, force: true })
  }
})
