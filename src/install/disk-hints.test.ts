import assert from 'node:assert/strict'
import { test } from 'node:test'
import { DeviceError, UsageError } from '../errors.js'
import { matchesHints, parseDiskHints, parseLsblk, selectDisk, type DiskCandidate } from './disk-hints.js'

const G = 2 ** 30
const disks: DiskCandidate[] = [
  {
    name: 'sda',
    path: '/dev/sda',
    size: 480 * G,
    sectorSize: 512,
    type: 'disk',
    serial: 'S3Z9NB0K123456',
    wwn: '0x5002538e4000abcd',
    model: 'Samsung SSD 860',
    vendor: 'ATA',
    rotational: false,
  },
  {
    name: 'sdb',
    path: '/dev/sdb',
    size: 4000 * G,
    sectorSize: 4096,
    type: 'disk',
    serial: 'ZC1A2B3C',
    model: 'ST4000NM0035',
    vendor: 'ATA',
    rotational: true,
  },
  {
    name: 'nvme0n1',
    path: '/dev/nvme0n1',
    size: 960 * G,
    sectorSize: 512,
    type: 'disk',
    serial: 'PHLJ1234',
    model: 'INTEL SSDPE2KX010T8',
    rotational: false,
  },
  { name: 'loop0', path: '/dev/loop0', size: 20 * G, sectorSize: 512, type: 'loop' },
  { name: 'sr0', path: '/dev/sr0', size: 0, sectorSize: 2048, type: 'rom' },
]

test('parseDiskHints() reads key=value lists, Ironic-style names and size bounds', () => {
  assert.deepEqual(parseDiskHints(['serial=ABC,min_size=1G', 'size=>=100G', 'max-size=2T']), {
    serial: 'ABC',
    minSize: 100 * G,
    maxSize: 2 * 2 ** 40,
  })
  assert.deepEqual(parseDiskHints(['size=20G']), { minSize: 20 * G, maxSize: 20 * G })
  assert.deepEqual(parseDiskHints(['name=/dev/sdb', 'rotational=true']), { name: 'sdb', rotational: true })
  assert.throws(
    () => parseDiskHints(['colour=blue']),
    (e: unknown) => e instanceof UsageError && /unknown key "colour"/.test(e.message),
  )
  assert.throws(() => parseDiskHints(['size=big']), UsageError)
})

test('matchesHints() compares strings case-insensitively and WWNs with or without 0x', () => {
  assert.ok(matchesHints(disks[0]!, { model: 'samsung ssd 860 ' }))
  assert.ok(matchesHints(disks[0]!, { wwn: '5002538E4000ABCD' }))
  assert.ok(!matchesHints(disks[0]!, { serial: 'S3Z9NB0K12345' }))
})

test('selectDisk() returns the one disk that matches', () => {
  assert.equal(selectDisk(disks, { serial: 'ZC1A2B3C' }).path, '/dev/sdb')
  assert.equal(selectDisk(disks, { minSize: 900 * G, maxSize: 1000 * G }).path, '/dev/nvme0n1')
  assert.equal(selectDisk(disks, { name: 'loop0' }).path, '/dev/loop0')
})

test('selectDisk() refuses no match and several matches, listing the candidates', () => {
  assert.throws(
    () => selectDisk(disks, { serial: 'nope' }),
    (e: unknown) =>
      e instanceof DeviceError &&
      e.code === 'DEVICE_SELECT' &&
      /no disk matches/.test(e.message) &&
      /\/dev\/sdb/.test(e.message),
  )
  assert.throws(
    () => selectDisk(disks, { rotational: false }),
    (e: unknown) =>
      e instanceof DeviceError &&
      /2 disks match/.test(e.message) &&
      /\/dev\/sda/.test(e.message) &&
      /\/dev\/nvme0n1/.test(e.message),
  )
})

test('selectDisk() leaves loop devices out unless asked for by name or type', () => {
  assert.throws(
    () => selectDisk(disks, { maxSize: 30 * G }),
    (e: unknown) => e instanceof DeviceError && /no disk matches/.test(e.message),
  )
  assert.equal(selectDisk(disks, { type: 'loop' }).path, '/dev/loop0')
})

test('parseLsblk() reads lsblk --json output, nulls and all', () => {
  const json = JSON.stringify({
    blockdevices: [
      {
        name: 'vda',
        path: '/dev/vda',
        size: 274877906944,
        'log-sec': 512,
        type: 'disk',
        serial: null,
        wwn: null,
        model: null,
        vendor: '0x1af4',
        hctl: null,
        rota: true,
      },
      {
        name: 'sda',
        path: '/dev/sda',
        size: 1000,
        'log-sec': 4096,
        type: 'disk',
        serial: ' ABC ',
        wwn: '0x5000',
        model: 'M',
        vendor: 'V',
        hctl: '0:0:0:0',
        rota: '0',
      },
    ],
  })
  assert.deepEqual(parseLsblk(json), [
    {
      name: 'vda',
      path: '/dev/vda',
      size: 274877906944,
      sectorSize: 512,
      type: 'disk',
      vendor: '0x1af4',
      rotational: true,
    },
    {
      name: 'sda',
      path: '/dev/sda',
      size: 1000,
      sectorSize: 4096,
      type: 'disk',
      serial: 'ABC',
      wwn: '0x5000',
      model: 'M',
      vendor: 'V',
      hctl: '0:0:0:0',
      rotational: false,
    },
  ])
})
