// The ISO 9660 reader against images made by xorriso (as `hwimage seed --ironic` makes the
// config drive; Ironic's genisoimage writes the same structures), with and without Rock
// Ridge, and the vfat CONFIG-2 volume the agent writes on a disk with 4096-byte sectors,
// read back with mtools.

import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { stageFiles } from '../seed/volume.js'
import { run } from '../tools/run.js'
import { configDriveVfat } from './config-drive.js'
import { IsoError, readIsoFiles } from './iso9660.js'

const FILES = [
  { path: 'openstack/latest/meta_data.json', bytes: Buffer.from('{"uuid": "u-1", "hostname": "node-4kn"}\n') },
  { path: 'openstack/latest/network_data.json', bytes: Buffer.from('{"links": [], "networks": []}\n') },
  { path: 'openstack/latest/user_data', bytes: Buffer.from('#cloud-config\nhostname: node-4kn\n') },
  { path: 'openstack/content/0000', bytes: Buffer.alloc(5000, 7) },
  { path: 'ec2/latest/meta-data.json', bytes: Buffer.from('{}') },
]

async function iso(rockRidge: boolean): Promise<{ bytes: Uint8Array; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'hwimage-iso-test-'))
  const tree = join(dir, 'tree')
  await stageFiles(FILES, tree)
  const out = join(dir, 'cd.iso')
  await run([
    'xorriso',
    '-as',
    'mkisofs',
    '-quiet',
    '-o',
    out,
    '-V',
    'config-2',
    ...(rockRidge ? ['-R', '-J'] : ['-l', '-allow-lowercase']),
    tree,
  ])
  return { bytes: new Uint8Array(await readFile(out)), dir }
}

const byPath = (files: { path: string; bytes: Uint8Array }[]) =>
  Object.fromEntries(files.map((f) => [f.path, Buffer.from(f.bytes).toString('hex')]))

test('readIsoFiles(): every file of a Rock Ridge ISO with its name and bytes; without Rock Ridge the ISO names', async () => {
  const rr = await iso(true)
  try {
    assert.deepEqual(byPath(readIsoFiles(rr.bytes)), byPath(FILES))
  } finally {
    await rm(rr.dir, { recursive: true, force: true })
  }
  const plain = await iso(false)
  try {
    const names = readIsoFiles(plain.bytes)
      .map((f) => f.path)
      .sort()
    // -l keeps long names (31 characters); ISO 9660 names have no "-" but xorriso keeps lower case.
    assert.ok(names.includes('openstack/latest/meta_data.json'), names.join(' '))
    assert.equal(names.length, FILES.length)
  } finally {
    await rm(plain.dir, { recursive: true, force: true })
  }
})

test('readIsoFiles(): a truncated or damaged image is an IsoError naming the problem, not a crash', async () => {
  const { bytes, dir } = await iso(true)
  try {
    assert.throws(() => readIsoFiles(bytes.subarray(0, 20000)), IsoError)
    assert.throws(() => readIsoFiles(new Uint8Array(40000)), /no ISO 9660 primary volume descriptor/)
    // Cut inside the 5000-byte file's extent (xorriso pads the image's end, so the end itself is free).
    const at = Buffer.from(bytes).indexOf(Buffer.alloc(5000, 7))
    assert.ok(at > 0)
    const cut = bytes.slice(0, at + 100)
    assert.throws(() => readIsoFiles(cut), /ends past the image/)
    const bad = bytes.slice()
    // The root directory record's extent far past the end.
    new DataView(bad.buffer).setUint32(16 * 2048 + 156 + 2, 0x7fffffff, true)
    assert.throws(() => readIsoFiles(bad), IsoError)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('configDriveVfat(): a FAT volume with 4096-byte sectors labelled CONFIG-2 holding the ISO files, as mtools reads it', async () => {
  const { bytes, dir } = await iso(true)
  try {
    const size = 64 * 1024 * 1024 - 4096 * 6
    const fat = await configDriveVfat(bytes, 4096, size)
    assert.equal(fat.length, size)
    const view = new DataView(fat.buffer, fat.byteOffset, fat.byteLength)
    assert.equal(view.getUint16(11, true), 4096, 'bytes per sector in the boot sector')
    const img = join(dir, 'fat.img')
    await writeFile(img, fat)
    const env = { MTOOLS_SKIP_CHECK: '1', MTOOLSRC: '/dev/null' }
    const label = (await run(['blkid', '-o', 'value', '-s', 'LABEL', img])).stdout.trim()
    assert.equal(label, 'CONFIG-2')
    const meta = (await run(['mtype', '-i', img, '::/openstack/latest/meta_data.json'], { env })).stdout
    assert.equal(meta, FILES[0]!.bytes.toString())
    const content = await run(['mtype', '-i', img, '::/openstack/content/0000'], { env })
    assert.equal(content.stdout.length, 5000)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
