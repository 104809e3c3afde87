// A 4Kn disk end to end (issue 16): `hwimage install --seed --uefi-only` puts the built
// (512-byte-sector) image onto a loop device with 4096-byte logical sectors, converting
// it on the way (GPT in 4 KiB LBAs, the ESP's FAT with 4 KiB sectors); the table and both
// FATs are clean to sgdisk and fsck.vfat; and the disk boots under OVMF with Secure Boot
// from a virtio-blk disk with logical_block_size=4096,physical_block_size=4096, where
// cloud-init reads the seed (it reports back with the seed's instance-id and hostname,
// and lets the seed's user in with the seed's key), and the guest sees 4096-byte sectors.

import assert from 'node:assert/strict'
import { mkdtemp, open, rm, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { bootMachine } from '../../src/lab/boot.js'
import { listenForReports } from '../../src/seed/report-listener.js'
import { classifyNic, classifyStorage, loadDeviceCatalog } from '../../src/tools/qemu-devices.js'
import { macAddressFor } from '../../src/tools/qemu.js'
import { run } from '../../src/tools/run.js'
import { CLI, testImage } from '../integration/fixture.js'
import { freePort, nextReport, opsUser, sshArgv, sshKey } from '../integration/guest.js'

const image = testImage()
const DISK = 8 * 2 ** 30

/** fsck.vfat -n on a copy of a FAT's byte range of the disk; returns its bytes per sector. */
async function fsckFat(disk: string, offset: number, length: number, copy: string): Promise<number> {
  const fh = await open(disk, 'r')
  const bytes = Buffer.alloc(length)
  try {
    await fh.read(bytes, 0, length, offset)
  } finally {
    await fh.close()
  }
  await writeFile(copy, bytes)
  const r = await run(['fsck.vfat', '-n', copy], { okStatus: [0, 1] })
  assert.equal(r.status, 0, `fsck.vfat -n ${copy}: ${r.stdout}${r.stderr}`)
  await rm(copy)
  return bytes.readUInt16LE(11)
}

test('install --seed --uefi-only onto a 4Kn loop device converts the image; it boots under OVMF Secure Boot from a 4096-byte-sector virtio-blk disk and cloud-init reads the seed', async () => {
  const dir = await mkdtemp('/var/tmp/hwimage-4kn-it-')
  const file = join(dir, 'disk.raw')
  await writeFile(file, '')
  await truncate(file, DISK)
  const key = join(dir, 'id_ed25519')
  const pub = await sshKey(key, '4kn-test')
  const listener = await listenForReports({ port: 0, host: '127.0.0.1' })
  const mac = macAddressFor(44)
  try {
    const seedFile = join(dir, 'seed.yaml')
    await writeFile(
      seedFile,
      [
        'hostname: metal-4kn-01',
        'instance_id: install-4kn-it-1',
        ...opsUser(pub),
        'network:',
        '  ethernets:',
        `    - mac: "${mac}"`,
        '      dhcp4: true',
        'report:',
        `  url: http://10.0.2.2:${listener.port}/`,
        '',
      ].join('\n'),
    )

    // 1. The install onto a 4Kn loop device.
    const loop = (await run(['losetup', '--find', '--show', '--sector-size', '4096', file])).stdout.trim()
    let report: {
      sectorConversion?: { to: number; converted?: Array<{ partition: number; to: { bytesPerSector: number } }> }
      seed?: { offset: number; sizeBytes: number }
      seconds: { total: number }
      stepSeconds?: Record<string, number>
    }
    try {
      const t0 = Date.now()
      const r = await run([
        CLI,
        'install',
        image.zst,
        '--disk',
        loop,
        '--seed',
        seedFile,
        '--uefi-only',
        '--yes',
        '--json',
      ])
      console.log(`install onto 4Kn: ${((Date.now() - t0) / 1000).toFixed(1)} s`)
      report = JSON.parse(r.stdout)
      const events = r.stderr
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { event: string; [k: string]: unknown })
      assert.ok(
        events.some((e) => e.event === 'converted' && e.partition === 15 && e.to === 4096),
        r.stderr,
      )
      console.log(`steps: ${JSON.stringify(report.stepSeconds)}`)
      assert.equal(report.sectorConversion?.to, 4096)
      assert.equal(report.sectorConversion?.converted?.[0]?.to.bytesPerSector, 4096)
      assert.match((await run(['sgdisk', '-v', loop])).stdout, /No problems found/)
      const table = (
        JSON.parse((await run(['sfdisk', '--json', loop])).stdout) as {
          partitiontable: { sectorsize: number; partitions: Array<{ start: number; size: number; name?: string }> }
        }
      ).partitiontable
      assert.equal(table.sectorsize, 4096)
      // The partitions are where the image has them, in bytes (the manifest counts 512-byte LBAs).
      for (const p of image.manifest.partitions) {
        const got = table.partitions.find((q) => q.name === p.name)
        assert.equal(got?.start === undefined ? undefined : got.start * 4096, Number(p.firstLba) * 512, p.name)
        assert.equal(got!.size * 4096, (Number(p.lastLba) - Number(p.firstLba) + 1) * 512, p.name)
      }
      const esp = table.partitions.find((p) => p.name === 'esp')!
      assert.equal(await fsckFat(loop, esp.start * 4096, esp.size * 4096, join(dir, 'esp.vfat')), 4096)
      assert.ok(report.seed)
      assert.equal(await fsckFat(loop, report.seed.offset, report.seed.sizeBytes, join(dir, 'seed.vfat')), 4096)
    } finally {
      await run(['losetup', '--detach', loop])
    }

    // 2. The boot: OVMF with Secure Boot, the disk as a 4Kn virtio-blk disk.
    const catalog = await loadDeviceCatalog()
    const sshPort = await freePort()
    let settled = false
    let failure: unknown
    let value:
      | { report: { instance_id?: string; hostname?: string }; blockSize: string; hostname: string; seconds: number }
      | undefined
    const t1 = Date.now()
    const task = (async () => {
      const r = await nextReport(listener, 14 * 60_000)
      const seconds = (Date.now() - t1) / 1000
      const ssh = async (...c: string[]) => (await run(sshArgv(key, sshPort, c))).stdout.trim()
      return {
        report: r.report as { instance_id?: string; hostname?: string },
        seconds,
        hostname: await ssh('hostname'),
        blockSize: await ssh('cat', '/sys/block/vda/queue/logical_block_size'),
      }
    })()
      .then(
        (v) => void (value = v),
        (e) => void (failure = e),
      )
      .finally(() => (settled = true))
    const boot = await bootMachine({
      machine: {
        firmware: 'uefi-sb',
        storage: classifyStorage(catalog, 'virtio-blk-pci'),
        nic: classifyNic(catalog, 'virtio-net-pci'),
        disks: [{ path: file, format: 'raw', role: 'boot', blockSize: 4096 }],
        memoryMiB: 1536,
        cpus: 2,
        macAddress: mac,
        hostForwards: [{ hostPort: sshPort, guestPort: 22 }],
        name: 'install-4kn',
      },
      workDir: dir,
      timeoutMs: 15 * 60_000,
      done: (c) => settled || c.has('panic') || c.has('root-missing') || c.has('no-boot-entry'),
    })
    await Promise.race([task, new Promise((r) => setTimeout(r, 1000))])
    if (!settled) failure ??= new Error(`boot ended (${boot.outcome}) before the checks; console: ${boot.serialLog}`)
    if (failure) throw failure
    console.log(`4Kn boot (uefi-sb, virtio-blk 4096): report after ${value!.seconds.toFixed(0)} s`)
    assert.ok(boot.argv.some((a) => /logical_block_size=4096,physical_block_size=4096/.test(a)))
    assert.equal(boot.facts.secureBoot, 'enabled', 'Secure Boot enforced')
    const ciError = boot.milestones.find((m) => m.kind === 'cloud-init-error')
    assert.equal(ciError, undefined, `cloud-init reported an error: ${ciError?.line}`)
    assert.equal(value!.report.instance_id, 'install-4kn-it-1', "cloud-init read the seed's instance-id")
    assert.equal(value!.report.hostname, 'metal-4kn-01')
    assert.equal(value!.hostname, 'metal-4kn-01', 'SSH with the seed key answers the seed hostname')
    assert.equal(value!.blockSize, '4096', 'the guest sees a 4Kn disk')
    await rm(dir, { recursive: true, force: true }) // kept on failure, for its serial.log
  } finally {
    await listener.close()
  }
})
