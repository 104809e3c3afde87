// The first-boot contract end to end on an installed disk: `hwimage install --seed` puts
// the built image on a 20 GiB garbage-filled loop device with a seed partition at the
// end — NoCloud first, then a reinstall over it with a config-drive seed (a fresh
// instance-id, a new hostname) — and the reinstalled disk boots under SeaBIOS: it reports
// back as the new instance, lets the seed's user in over SSH with the seed's key, and
// stays bootable when the test runs update-grub over SSH and reboots (GRUB's configuration
// regenerated the Debian way: issue 2's upgradeability proof). The NoCloud seed's own boot
// (OVMF + Secure Boot: SSH, user-data, root grown up to the seed partition) is the Secure
// Boot network deploy's, in deploy-e2e.test.ts: the deploy agent installs with the same code.

import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { mkdtemp, open, readFile, rm, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { bootMachine, type BootResult } from '../../src/lab/boot.js'
import { listenForReports } from '../../src/seed/report-listener.js'
import { classifyNic, classifyStorage, loadDeviceCatalog } from '../../src/tools/qemu-devices.js'
import { macAddressFor, type Firmware } from '../../src/tools/qemu.js'
import { run } from '../../src/tools/run.js'
import { CLI, testImage } from './fixture.js'
import { freePort, nextReport, opsUser, ssh, sshArgv, sshKey } from './guest.js'

const image = testImage()
const MiB = 1 << 20
const GiB = 1 << 30
const DISK = 20 * GiB
const SEED_BYTES = 16 * MiB
const MS_BASIC_DATA = 'EBD0A0A2-B9E5-4433-87C0-68B6B72699C7'

/** Writes non-zero bytes over [offset, offset+length) of a file. */
async function garbage(file: string, offset: number, length: number): Promise<void> {
  const block = Buffer.alloc(8 * MiB)
  for (let i = 0; i < block.length; i++) block[i] = (((i * 167) >> 2) % 251) + 3
  const fh = await open(file, 'r+')
  try {
    for (let at = 0; at < length; at += block.length)
      await fh.write(block, 0, Math.min(block.length, length - at), offset + at)
  } finally {
    await fh.close()
  }
}

/** A sparse 20 GiB file with garbage over the image's span and the disk's last 64 MiB (where the seed partition goes). */
async function disk(dir: string): Promise<string> {
  const file = join(dir, 'disk.raw')
  await writeFile(file, '')
  await truncate(file, DISK)
  await garbage(file, 0, image.manifest.image.sizeBytes + 64 * MiB)
  await garbage(file, DISK - 64 * MiB, 64 * MiB)
  return file
}

const losetup = async (...args: string[]): Promise<string> => (await run(['losetup', ...args])).stdout.trim()

interface SfdiskPart {
  node: string
  start: number
  size: number
  type: string
  name?: string
}

/** Installs with --seed onto a fresh loop device over `backing`; returns the seed event and the table sfdisk reads. */
async function installWithSeed(
  backing: string,
  seedFile: string,
): Promise<{
  seed: { instanceId: string; label: string; partition: number }
  parts: SfdiskPart[]
  sectorSize: number
}> {
  const loop = await losetup('--find', '--show', backing)
  try {
    const r = await run([CLI, 'install', image.zst, '--disk', loop, '--seed', seedFile, '--yes', '--json'])
    const events = r.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { event: string; [k: string]: unknown })
    const seed = events.find((e) => e.event === 'seed') as unknown as
      | { instanceId: string; label: string; partition: number }
      | undefined
    assert.ok(seed, `a seed event: ${r.stderr}`)
    assert.equal(events[events.length - 1]!.event, 'done')
    assert.match((await run(['sgdisk', '-v', loop])).stdout, /No problems found/)
    const table = (
      JSON.parse((await run(['sfdisk', '--json', loop])).stdout) as {
        partitiontable: { sectorsize?: number; partitions: SfdiskPart[] }
      }
    ).partitiontable
    return { seed, parts: table.partitions, sectorSize: table.sectorsize ?? 512 }
  } finally {
    await losetup('-d', loop)
  }
}

/** The seed partition is `cidata`, Microsoft basic data, 16 MiB, the last partition, ending on the last MiB boundary before the backup GPT. */
function assertSeedPartitionAtEnd(parts: SfdiskPart[], sectorSize: number): SfdiskPart {
  const last = [...parts].sort((a, b) => b.start - a.start)[0]!
  assert.equal(last.name, 'cidata')
  assert.equal(last.type.toUpperCase(), MS_BASIC_DATA)
  assert.equal(last.size * sectorSize, SEED_BYTES)
  assert.equal(
    last.start * sectorSize,
    DISK - SEED_BYTES - MiB,
    'ends at the last 1 MiB boundary before the backup GPT',
  )
  assert.equal((last.start * sectorSize) % MiB, 0)
  return last
}

/**
 * Boots the installed disk while `whileUp` runs (the report arrives, SSH checks); the boot
 * ends when `whileUp` settles or the console shows a dead end.
 */
async function bootAnd<T>(
  dir: string,
  firmware: Firmware,
  mac: string,
  forwards: { hostPort: number; guestPort: number }[],
  name: string,
  whileUp: () => Promise<T>,
): Promise<{ boot: BootResult; value: T }> {
  const catalog = await loadDeviceCatalog()
  let settled = false
  let value: T | undefined
  let failure: unknown
  const task = whileUp()
    .then(
      (v) => void (value = v),
      (e) => void (failure = e),
    )
    .finally(() => (settled = true))
  const boot = await bootMachine({
    machine: {
      firmware,
      storage: classifyStorage(catalog, 'virtio-blk-pci'),
      nic: classifyNic(catalog, 'virtio-net-pci'),
      disks: [{ path: join(dir, 'disk.raw'), format: 'raw', role: 'boot' }],
      memoryMiB: 1536,
      cpus: 2,
      macAddress: mac,
      hostForwards: forwards,
      name,
    },
    workDir: dir,
    timeoutMs: 15 * 60_000,
    done: (c) => settled || c.has('panic') || c.has('root-missing') || c.has('no-boot-entry'),
  })
  if (!settled)
    failure ??= new Error(`boot ended (${boot.outcome}) before the checks finished; console: ${boot.serialLog}`)
  await Promise.race([task, new Promise((r) => setTimeout(r, 1000))])
  if (failure) throw failure
  return { boot, value: value as T }
}

test('install --seed writes the seed partition at the end (NoCloud, then a config-drive reinstall over it); the reinstalled disk boots under SeaBIOS as the new instance, SSH with the seed key, and stays bootable after update-grub and a reboot', async () => {
  const dir = await mkdtemp('/var/tmp/hwimage-first-boot-it-')
  const backing = await disk(dir)
  const key = join(dir, 'id_ed25519')
  const pub = await sshKey(key, 'first-boot-test')
  const listener = await listenForReports({ port: 0, host: '127.0.0.1' })
  const mac = macAddressFor(41)
  try {
    // Both seeds: the user `ops` with the test's key, and the NIC matched by MAC with DHCP.
    const opsAndNic = [...opsUser(pub), 'network:', '  ethernets:', `    - mac: "${mac}"`, '      dhcp4: true']
    // 1. NoCloud: hostname, a user with the key, the NIC matched by MAC, user-data, report URL.
    const seed1 = join(dir, 'seed-1.yaml')
    await writeFile(
      seed1,
      [
        'hostname: seeded-sb-01',
        'instance_id: first-boot-it-1',
        ...opsAndNic,
        'user_data:',
        '  runcmd: [[touch, /root/hello]]',
        'report:',
        `  url: http://10.0.2.2:${listener.port}/`,
        '',
      ].join('\n'),
    )
    const first = await installWithSeed(backing, seed1)
    assert.equal(first.seed.instanceId, 'first-boot-it-1')
    assert.equal(first.seed.label, 'CIDATA')
    const part = assertSeedPartitionAtEnd(first.parts, first.sectorSize)
    const root = [...first.parts].sort((a, b) => b.size - a.size)[0]!
    assert.ok(root.start + root.size <= part.start)

    // 2. The same disk again, config drive, no instance_id (a fresh UUID), a new hostname.
    const seed2 = join(dir, 'seed-2.yaml')
    await writeFile(
      seed2,
      [
        'format: configdrive',
        'hostname: seeded-cd-02',
        ...opsAndNic,
        'report:',
        `  url: http://10.0.2.2:${listener.port}/`,
        '',
      ].join('\n'),
    )
    const second = await installWithSeed(backing, seed2)
    assert.equal(second.seed.label, 'config-2')
    assert.match(second.seed.instanceId, /^[0-9a-f-]{36}$/)
    assertSeedPartitionAtEnd(second.parts, second.sectorSize)
    const t2 = Date.now()
    const sshPort2 = await freePort()
    const serial = join(dir, 'serial.log')
    // systemd's banner, printed once it runs from the root file system: on the second boot,
    // GRUB read the regenerated grub.cfg, loaded kernel and initramfs, and root=UUID= held.
    const systemdStarts = () => (readFileSync(serial, 'utf8').match(/Welcome to .*Debian GNU\/Linux 12/g) ?? []).length
    const two = await bootAnd(dir, 'bios', mac, [{ hostPort: sshPort2, guestPort: 22 }], 'first-boot-cd', async () => {
      const r = await nextReport(listener, 14 * 60_000)
      const reportSeconds = (Date.now() - t2) / 1000
      const hostname = await ssh(key, sshPort2, 'hostname')
      // The image stays bootable when GRUB's configuration is regenerated the Debian way on
      // the machine itself (update-grub with the real grub-probe on the real disk): regenerate,
      // reboot, and the second boot must start systemd from the root file system again.
      const grub = await ssh(key, sshPort2, `sudo sh -c 'update-grub 2>&1 && grep -c root=UUID= /boot/grub/grub.cfg'`)
      // 255: ssh's own status when the connection drops as the machine goes down.
      await run(sshArgv(key, sshPort2, ['sudo', 'systemctl', 'reboot']), { okStatus: [0, 255] })
      for (const deadline = Date.now() + 10 * 60_000; systemdStarts() < 2; ) {
        if (Date.now() > deadline)
          throw new Error(
            `no second boot into the root file system within 10 min after update-grub; console: ${serial}`,
          )
        await new Promise((res) => setTimeout(res, 1000))
      }
      return {
        report: r.report as { instance_id?: string; hostname?: string; cloud_init?: { datasource?: string } },
        reportSeconds,
        hostname,
        grub,
      }
    })
    console.log(
      `boot 2 (bios, config drive): report after ${two.value.reportSeconds.toFixed(0)} s; update-grub, reboot and systemd started again after ${two.boot.seconds.toFixed(0)} s`,
    )
    assert.equal(two.value.report.instance_id, second.seed.instanceId)
    assert.equal(two.value.report.hostname, 'seeded-cd-02')
    assert.equal(two.value.hostname, 'seeded-cd-02', 'SSH with the seed key answers the new hostname')
    assert.match(two.value.report.cloud_init?.datasource ?? '', /ConfigDrive/)
    const text2 = await readFile(serial, 'utf8')
    assert.match(text2, /SeaBIOS/)
    assert.equal(two.boot.facts.secureBoot ?? null, null, 'no EFI, no Secure Boot report')
    assert.match(two.value.grub, /Generating grub configuration file/)
    assert.ok(
      Number(two.value.grub.split('\n').pop()) > 0,
      `the regenerated grub.cfg boots root by UUID: ${two.value.grub}`,
    )
    assert.ok(two.boot.facts.firmwareStarts >= 2, 'the machine rebooted')
    await rm(dir, { recursive: true, force: true }) // kept on failure, for its serial.log
  } finally {
    await listener.close()
  }
})
