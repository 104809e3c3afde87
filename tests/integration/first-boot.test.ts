// The first-boot contract end to end on an installed disk: `hwimage install --seed` puts
// the built image on a 20 GiB garbage-filled loop device with a seed partition at the
// end, and the disk boots under QEMU. The first boot (OVMF, Secure Boot, NoCloud) must
// report back with the seed's instance-id and hostname, let the seed's user in over SSH
// with the seed's key, have run the user-data command and grown root up to the seed
// partition. A second install onto the same disk with a config-drive seed (a fresh
// instance-id, a new hostname) must boot as a new instance (BIOS this time); there the
// test runs update-grub over SSH and reboots: the image stays bootable after GRUB's
// configuration is regenerated the Debian way (issue 2's upgradeability proof).

import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { mkdtemp, open, readFile, rm, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { bootMachine, type BootResult } from '../../src/lab/boot.js'
import { listenForReports, type ReceivedReport, type ReportListener } from '../../src/seed/report-listener.js'
import { classifyNic, classifyStorage, loadDeviceCatalog } from '../../src/tools/qemu-devices.js'
import { macAddressFor, type Firmware } from '../../src/tools/qemu.js'
import { run } from '../../src/tools/run.js'
import { CLI, testImage } from './fixture.js'

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

async function freePort(): Promise<number> {
  const srv = createServer()
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve))
  const port = (srv.address() as { port: number }).port
  await new Promise<void>((resolve) => srv.close(() => resolve()))
  return port
}

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

/** Waits for the first report, or rejects after `ms`. */
async function nextReport(listener: ReportListener, ms: number): Promise<ReceivedReport> {
  const it = listener.reports[Symbol.asyncIterator]()
  let timer: NodeJS.Timeout | undefined
  try {
    const r = await Promise.race([
      it.next(),
      new Promise<never>(
        (_, reject) => (timer = setTimeout(() => reject(new Error(`no report within ${ms / 1000} s`)), ms)),
      ),
    ])
    if (r.done) throw new Error('the listener closed without a report')
    return r.value
  } finally {
    clearTimeout(timer)
  }
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

/** ssh as the seed's user `ops` to the guest's forwarded port. */
const sshArgv = (key: string, port: number, command: string[]): string[] => [
  'ssh',
  '-i',
  key,
  '-o',
  'StrictHostKeyChecking=no',
  '-o',
  'UserKnownHostsFile=/dev/null',
  '-o',
  'BatchMode=yes',
  '-o',
  'ConnectTimeout=20',
  '-o',
  'LogLevel=ERROR',
  '-p',
  String(port),
  'ops@127.0.0.1',
  ...command,
]

async function ssh(key: string, port: number, ...command: string[]): Promise<string> {
  return (await run(sshArgv(key, port, command))).stdout.trim()
}

test('install --seed writes a seed partition the installed disk boots from: report, SSH with the seed key, user-data, root grown up to it; a config-drive reinstall is a new instance', async () => {
  const dir = await mkdtemp('/var/tmp/hwimage-first-boot-it-')
  const backing = await disk(dir)
  const key = join(dir, 'id_ed25519')
  await run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'first-boot-test', '-f', key])
  const pub = (await readFile(`${key}.pub`, 'utf8')).trim()
  const listener = await listenForReports({ port: 0, host: '127.0.0.1' })
  const mac = macAddressFor(41)
  try {
    // Both seeds: the user `ops` with the test's key, and the NIC matched by MAC with DHCP.
    const opsAndNic = [
      'users:',
      '  - name: ops',
      '    sudo: true',
      `    ssh_authorized_keys: [${JSON.stringify(pub)}]`,
      'network:',
      '  ethernets:',
      `    - mac: "${mac}"`,
      '      dhcp4: true',
    ]
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

    const sshPort = await freePort()
    const t1 = Date.now()
    const one = await bootAnd(
      dir,
      'uefi-sb',
      mac,
      [{ hostPort: sshPort, guestPort: 22 }],
      'first-boot-sb',
      async () => {
        const r = await nextReport(listener, 14 * 60_000)
        const reportSeconds = (Date.now() - t1) / 1000
        const hostname = await ssh(key, sshPort, 'hostname')
        const hello = await run(sshArgv(key, sshPort, ['sudo', 'test', '-f', '/root/hello']), { okStatus: [0, 1] })
        const rootBytes = Number(
          await ssh(key, sshPort, 'df', '-B1', '--output=size', '/').then((o) => o.split('\n').pop()),
        )
        return {
          report: r.report as { instance_id?: string; hostname?: string; cloud_init?: { datasource?: string } },
          reportSeconds,
          hostname,
          hello: hello.status,
          rootBytes,
        }
      },
    )
    console.log(
      `boot 1 (uefi-sb, NoCloud): report after ${one.value.reportSeconds.toFixed(0)} s, boot ended after ${one.boot.seconds.toFixed(0)} s`,
    )
    assert.equal(one.boot.facts.secureBoot, 'enabled', 'Secure Boot enforced')
    assert.match(await readFile(join(dir, 'serial.log'), 'utf8'), /Kernel is locked down from EFI Secure Boot/)
    const ciError = one.boot.milestones.find((m) => m.kind === 'cloud-init-error')
    assert.equal(ciError, undefined, `cloud-init reported an error: ${ciError?.line}`)
    assert.equal(one.value.report.instance_id, 'first-boot-it-1')
    assert.equal(one.value.report.hostname, 'seeded-sb-01')
    assert.match(one.value.report.cloud_init?.datasource ?? '', /NoCloud/)
    assert.equal(one.value.hostname, 'seeded-sb-01', 'SSH with the seed key answers the seed hostname')
    assert.equal(one.value.hello, 0, 'the user-data command created /root/hello')
    assert.ok(one.value.rootBytes > 19 * GiB, `root grew up to the seed partition (df says ${one.value.rootBytes})`)

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
        grub,
      }
    })
    console.log(
      `boot 2 (bios, config drive): report after ${two.value.reportSeconds.toFixed(0)} s; update-grub, reboot and systemd started again after ${two.boot.seconds.toFixed(0)} s`,
    )
    assert.equal(two.value.report.instance_id, second.seed.instanceId)
    assert.equal(two.value.report.hostname, 'seeded-cd-02')
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
