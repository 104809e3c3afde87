import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { decodeIronicConfigDrive, encodeIronicConfigDrive } from './ironic.js'
import { InputError } from '../errors.js'
import { makeSeedVolume, MAX_SEED_VOLUME_BYTES, readSeedVolume, SEED_PARTITION } from './make-seed-volume.js'
import { parseSeed } from './seed-schema.js'

const MT = { ...process.env, MTOOLS_SKIP_CHECK: '1', MTOOLSRC: '/dev/null' }
const SEED = parseSeed(`
hostname: metal-01
users: [{name: ops, sudo: true}]
network:
  ethernets: [{mac: "52:54:00:12:34:56", dhcp4: true}]
user_data: "#cloud-config\\nruncmd: [[touch, /root/hello]]\\n"
report: {url: "http://10.0.2.2:8080/"}
`)

/** The ISO 9660 primary volume descriptor's volume identifier (ECMA-119 §8.4.6: offset 40, 32 bytes). */
function isoVolumeId(iso: Uint8Array): string {
  const pvd = 16 * 2048
  assert.equal(iso[pvd], 1)
  assert.equal(new TextDecoder().decode(iso.subarray(pvd + 1, pvd + 6)), 'CD001')
  return new TextDecoder().decode(iso.subarray(pvd + 40, pvd + 72)).trimEnd()
}

test('SEED_PARTITION is 16 MiB, 1 MiB aligned, Microsoft basic data, named cidata', () => {
  assert.deepEqual(SEED_PARTITION, {
    sizeBytes: 16 * 1024 * 1024,
    alignBytes: 1024 * 1024,
    name: 'cidata',
    typeGuid: 'EBD0A0A2-B9E5-4433-87C0-68B6B72699C7',
  })
})

test('makeSeedVolume() writes a 16 MiB NoCloud FAT volume the installer can copy, and disposes of it', async () => {
  const v = await makeSeedVolume(SEED, {
    sectorSize: 4096,
    instanceId: 'iid-1',
    installReport: { target: { path: '/dev/sda' }, time: '2024-11-25T12:00:00Z' },
  })
  try {
    assert.equal(v.sizeBytes, SEED_PARTITION.sizeBytes)
    assert.equal(v.format, 'nocloud')
    assert.equal(v.label, 'CIDATA')
    assert.equal(v.instanceId, 'iid-1')
    assert.deepEqual(
      v.files.map((f) => f.path),
      ['meta-data', 'user-data', 'vendor-data', 'network-config', 'hwimage.json'],
    )
    const bytes = await readSeedVolume(v)
    assert.equal(bytes.length, 16 * 1024 * 1024)
    assert.equal(new DataView(bytes.buffer, bytes.byteOffset).getUint16(11, true), 4096)
    execFileSync('fsck.vfat', ['-n', v.path])
    const manifest = JSON.parse(execFileSync('mtype', ['-i', v.path, '::/hwimage.json'], { env: MT, encoding: 'utf8' }))
    assert.equal(manifest.install.target.path, '/dev/sda')
    assert.equal(manifest.files['meta-data'].sha256, v.files[0]!.sha256)
  } finally {
    await v.dispose()
  }
  assert.equal(existsSync(v.path), false)
})

test('makeSeedVolume() writes a config-2 ISO whose Ironic encoding decodes back to it', async () => {
  const v = await makeSeedVolume(SEED, { format: 'configdrive', fs: 'iso9660' })
  try {
    assert.equal(v.label, 'config-2')
    const iso = await readSeedVolume(v)
    assert.equal(isoVolumeId(iso), 'config-2')
    const encoded = encodeIronicConfigDrive(iso)
    assert.match(encoded, /^[A-Za-z0-9+/]+=*$/)
    assert.equal(Buffer.from(encoded, 'base64')[0], 0x1f) // gzip magic
    assert.deepEqual(decodeIronicConfigDrive(encoded + '\n'), iso)
    assert.equal(isoVolumeId(decodeIronicConfigDrive(encoded)), 'config-2')
  } finally {
    await v.dispose()
  }
})

test('decodeIronicConfigDrive() output is an ISO that xorriso lists with the config-drive files', async () => {
  const v = await makeSeedVolume(SEED, { format: 'configdrive', fs: 'iso9660' })
  const dir = await mkdtemp(join(tmpdir(), 'hwimage-ironic-'))
  try {
    const iso = join(dir, 'back.iso')
    await writeFile(iso, decodeIronicConfigDrive(encodeIronicConfigDrive(await readSeedVolume(v))))
    const names = execFileSync('xorriso', ['-indev', iso, '-find', '/', '-type', 'f'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    })
    assert.deepEqual(names.trim().split('\n').sort(), [
      "'/hwimage.json'",
      "'/openstack/latest/meta_data.json'",
      "'/openstack/latest/network_data.json'",
      "'/openstack/latest/user_data'",
      "'/openstack/latest/vendor_data2.json'",
    ])
  } finally {
    await v.dispose()
    await rm(dir, { recursive: true, force: true })
  }
})

test('makeSeedVolume() refuses a volume above MAX_SEED_VOLUME_BYTES before writing anything (SEED_INVALID)', async () => {
  const tmp = await mkdtemp(join(tmpdir(), 'hwimage-seed-max-'))
  try {
    await assert.rejects(
      makeSeedVolume(SEED, { sizeBytes: MAX_SEED_VOLUME_BYTES + 1024 * 1024, tmpDir: tmp }),
      (e: unknown) => {
        assert.ok(e instanceof InputError)
        assert.equal(e.code, 'SEED_INVALID')
        assert.match(e.message, /the largest is 256 MiB/)
        return true
      },
    )
    assert.deepEqual(await readdir(tmp), [])
  } finally {
    await rm(tmp, { recursive: true, force: true })
  }
})
