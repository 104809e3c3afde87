// The built image boots on hardware firmware with a NoCloud seed disk attached:
// (a) OVMF with Secure Boot enforced (Microsoft keys), (b) SeaBIOS. Each asserts the
// firmware path, cloud-init's final stage, the seed's hostname, and that the root
// filesystem grew to fill a target disk bigger than the image. The BIOS boot also
// runs update-grub on the booted machine (the real grub-probe on the real disk) and
// boots again: the image stays bootable after GRUB's configuration is regenerated.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { run } from '../../src/tools/run.js'
import { bootMachine } from '../../src/lab/boot.js'
import { prepareLabDisks } from '../../src/lab/prepare-disk.js'
import { loadDeviceCatalog, classifyNic, classifyStorage } from '../../src/tools/qemu-devices.js'
import { macAddressFor, type Firmware } from '../../src/tools/qemu.js'
import { testImage } from './fixture.js'

const image = testImage()
const GiB = 1024 ** 3
const DISK = 4n * BigInt(GiB)

async function seedVolume(dir: string, hostname: string, extraRuncmd: string[][], extraConfig: string): Promise<string> {
  const path = join(dir, 'cidata.img')
  await writeFile(join(dir, 'meta-data'), `instance-id: ${hostname}-${Date.now()}\nlocal-hostname: ${hostname}\n`)
  const runcmd = [
    ['sh', '-c', 'echo "HWIMAGE-READY $(hostname)" > /dev/ttyS0; df -B1 / | sed "s|^|HWIMAGE-DF |" > /dev/ttyS0'],
    ...extraRuncmd,
  ]
  await writeFile(join(dir, 'user-data'), `#cloud-config\nruncmd: ${JSON.stringify(runcmd)}\n${extraConfig}`)
  await run(['mkfs.vfat', '-n', 'CIDATA', '-C', path, '2048'])
  await run(['mcopy', '-i', path, join(dir, 'meta-data'), join(dir, 'user-data'), '::'])
  return path
}

async function boot(firmware: Firmware, hostname: string, extraRuncmd: string[][], extraConfig: string, finals: number) {
  const dir = await mkdtemp(join(tmpdir(), `hwimage-boot-${firmware}-`))
  const catalog = await loadDeviceCatalog()
  const seed = await seedVolume(dir, hostname, extraRuncmd, extraConfig)
  const disks = await prepareLabDisks({ image: { path: image.img, format: 'raw' }, workDir: dir, sizeBytes: DISK, seed: { kind: 'volume', path: seed } })
  const log = join(dir, 'serial.log')
  const finalsSeen = () => (existsSync(log) ? (readFileSync(log, 'utf8').match(/Cloud-init v\. \S+ finished at/g) ?? []).length : 0)
  const result = await bootMachine({
    machine: {
      firmware,
      storage: classifyStorage(catalog, 'virtio-blk-pci'),
      nic: classifyNic(catalog, 'virtio-net-pci'),
      disks,
      memoryMiB: 1536,
      cpus: 2,
      macAddress: macAddressFor(7),
      name: `boot-${firmware}`,
    },
    workDir: dir,
    timeoutMs: 8 * 60_000,
    done: (c) => (c.has('cloud-init-final') && finalsSeen() >= finals) || c.has('panic') || c.has('root-missing') || c.has('no-boot-entry'),
  })
  const text = await readFile(log, 'utf8')
  return { result, text, dir }
}

test('the image boots under OVMF with Secure Boot enforced: SB enabled, final stage, hostname, root grown', async () => {
  const { result, text, dir } = await boot('uefi-sb', 'sb-metal-01', [], '', 1)
  assert.equal(result.outcome, 'done', `boot ended ${result.outcome}; console: ${result.serialLog}`)
  assert.equal(result.facts.secureBoot, 'enabled', 'the kernel reports Secure Boot enabled')
  assert.match(text, /Kernel is locked down from EFI Secure Boot/)
  assert.ok(result.console.has('cloud-init-final'), 'cloud-init reached its final stage')
  assert.match(result.facts.datasource ?? '', /DataSourceNoCloud/)
  assert.equal(result.facts.hostname, 'sb-metal-01')
  assert.ok((result.facts.rootBytes ?? 0) > 3.5 * GiB, `root grew to fill the 4 GiB disk (got ${result.facts.rootBytes})`)
  const ciError = result.milestones.find((m) => m.kind === 'cloud-init-error')
  assert.equal(ciError, undefined, `cloud-init reported an error: ${ciError?.line}`)
  await rm(dir, { recursive: true, force: true }) // kept on failure, for its serial.log
})

test('the image boots under SeaBIOS, and again after update-grub ran on the booted machine', async () => {
  const regen = ['sh', '-c', 'update-grub > /dev/ttyS0 2>&1 && grep -q "root=UUID=" /boot/grub/grub.cfg && echo HWIMAGE-UPDATE-GRUB-OK > /dev/ttyS0']
  // power_state reboots once cloud-init has finished the first boot (cc_power_state_change).
  const { result, text, dir } = await boot('bios', 'bios-metal-02', [regen], 'power_state: { mode: reboot, condition: true }\n', 2)
  assert.equal(result.outcome, 'done', `boot ended ${result.outcome}; console: ${result.serialLog}`)
  assert.match(text, /SeaBIOS/)
  assert.equal(result.facts.secureBoot ?? null, null, 'no EFI, no Secure Boot report')
  assert.ok(result.console.has('cloud-init-final'))
  assert.equal(result.facts.hostname, 'bios-metal-02')
  assert.ok((result.facts.rootBytes ?? 0) > 3.5 * GiB, `root grew to fill the 4 GiB disk (got ${result.facts.rootBytes})`)
  assert.match(text, /HWIMAGE-UPDATE-GRUB-OK/, 'update-grub ran on the booted machine')
  assert.ok(result.facts.firmwareStarts >= 2, 'the machine rebooted')
  assert.equal((text.match(/Cloud-init v\. \S+ finished at/g) ?? []).length, 2, 'the second boot, with the regenerated grub.cfg, reached the final stage too')
  await rm(dir, { recursive: true, force: true }) // kept on failure, for its serial.log
})
