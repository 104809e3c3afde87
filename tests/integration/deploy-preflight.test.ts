// The pre-flight hardware check against the real test images `make test` builds: the
// server kernel drives what QEMU emulates; the cloud kernel cannot drive an AHCI disk, and
// the refusal names the device and the generic kernel's module for it.

import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import { loadImageKernel } from '../../src/deploy/image-kernel.js'
import { machine, pci } from '../../src/deploy/inventory.fixture.js'
import type { PciDevice } from '../../src/deploy/inventory-types.js'
import { preflight } from '../../src/deploy/preflight.js'
import { openKernel } from '../../src/kernel/kernel-package.js'
import { testImage } from './fixture.js'

const E1000 = pci('0000:00:05.0', '8086', '100e', '020000')
const VIRTIO_NET = pci('0000:00:03.0', '1af4', '1000', '020000', ['1af4', '0001'])
const TEST_IMAGE = testImage().dir
const CLOUD_IMAGE = process.env.HWIMAGE_TEST_CLOUD_IMAGE_DIR ?? ''

// What QEMU emulates, with its real ids (hw/ide/ich.c, hw/virtio, hw/nvme, hw/scsi/megasas.c, hw/net/e1000.c).
const QEMU = {
  ahci: pci('0000:00:1f.2', '8086', '2922', '010601'),
  virtioBlkLegacy: pci('0000:00:04.0', '1af4', '1001', '010000', ['1af4', '0002']),
  virtioBlk: pci('0000:00:05.0', '1af4', '1042', '010000', ['1af4', '1100']),
  nvme: pci('0000:00:06.0', '8086', '5845', '010802'),
  megasas: pci('0000:00:07.0', '1000', '0060', '010400', ['1000', '1013']),
  lsiScsi: pci('0000:00:08.0', '1000', '0012', '010000', ['0000', '1000']),
}
const QEMU_NICS = {
  e1000: E1000,
  virtioNet: VIRTIO_NET,
  virtioNetModern: pci('0000:00:09.0', '1af4', '1041', '020000', ['1af4', '1100']),
  e1000e: pci('0000:00:0a.0', '8086', '10d3', '020000', ['8086', '0000']),
}

test("the server test image's kernel drives QEMU's disk controllers and NICs", async () => {
  const k = await loadImageKernel(TEST_IMAGE)
  assert.equal(k.flavor, 'server')
  assert.ok(k.aliases.length > 1000, `${k.aliases.length} aliases read from the image's modules.alias`)
  const want: Record<keyof typeof QEMU, string> = {
    ahci: 'ahci',
    virtioBlkLegacy: 'virtio_pci',
    virtioBlk: 'virtio_pci',
    nvme: 'nvme',
    megasas: 'megaraid_sas',
    lsiScsi: 'sym53c8xx',
  }
  for (const [name, dev] of Object.entries(QEMU) as [keyof typeof QEMU, PciDevice][]) {
    const v = preflight(machine([dev], []), k, { diskPath: '/dev/sda' })
    assert.equal(v.ok, true, `${name}: ${v.problems.map((p) => p.message).join('; ')}`)
    assert.ok(
      v.checked.devices[0]!.drivers.includes(want[name]),
      `${name} driven by ${want[name]}, got ${v.checked.devices[0]!.drivers}`,
    )
  }
  const nicWant: Record<keyof typeof QEMU_NICS, string> = {
    e1000: 'e1000',
    virtioNet: 'virtio_pci',
    virtioNetModern: 'virtio_pci',
    e1000e: 'e1000e',
  }
  for (const [name, dev] of Object.entries(QEMU_NICS) as [keyof typeof QEMU_NICS, PciDevice][]) {
    const v = preflight(machine([QEMU.ahci], [{ dev, link: true }]), k, { diskPath: '/dev/sda' })
    assert.equal(v.ok, true, name)
    assert.ok(v.checked.devices[1]!.drivers.includes(nicWant[name]), `${name}: ${v.checked.devices[1]!.drivers}`)
  }
  // The server set has no wireless drivers: an Intel Wireless 8265 (iwlwifi) as the only linked NIC is refused.
  const wifi = pci('0000:03:00.0', '8086', '24fd', '028000', ['8086', '0010'])
  const v = preflight(machine([QEMU.ahci], [{ dev: wifi, link: true }]), k, { diskPath: '/dev/sda' })
  assert.deepEqual(
    v.problems.map((p) => [p.role, p.device.address]),
    [['nic', '0000:03:00.0']],
  )
})

test("the cloud test image's kernel refuses an AHCI disk, naming 8086:2922 and ahci", async () => {
  assert.ok(
    existsSync(path.join(CLOUD_IMAGE, 'manifest.json')),
    'HWIMAGE_TEST_CLOUD_IMAGE_DIR names the cloud test image (make test)',
  )
  const k = await loadImageKernel(CLOUD_IMAGE)
  assert.equal(k.flavor, 'cloud')
  // Debian's generic kernel, which says which module would drive the device (fetched into the package cache once).
  const generic = await openKernel('apt:linux-image-amd64')
  const v = preflight(machine([QEMU.ahci], [{ dev: VIRTIO_NET, link: true }]), k, { diskPath: '/dev/sda', generic })
  assert.equal(v.ok, false)
  assert.deepEqual(
    v.problems.map((p) => [p.role, `${p.device.vendor}:${p.device.device}`]),
    [['disk-controller', '8086:2922']],
  )
  assert.match(v.problems[0]!.message, /8086:2922/)
  assert.deepEqual(v.problems[0]!.genericModules, ['ahci'])
  assert.match(v.problems[0]!.message, /\(Storage\/ata, ahci\).*use kernel\.flavor: generic$/)
  // The same cloud kernel drives the virtio disk the cloud images are made for.
  assert.equal(
    preflight(machine([QEMU.virtioBlk], [{ dev: VIRTIO_NET, link: true }]), k, { diskPath: '/dev/sda', generic }).ok,
    true,
  )
})
