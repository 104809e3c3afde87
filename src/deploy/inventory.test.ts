import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { readFile } from 'node:fs/promises'
import { BOOT_PARAMS, collectInventory, countRanges, SECURE_BOOT_VAR } from './inventory.js'
import { SysfsFixture } from './sysfs.fixture.js'

// A QEMU-like q35 machine: an AHCI controller with a SATA disk, an NVMe disk, a
// virtio NIC with a link and an e1000 without, loop and RAM devices, a bridge.
async function machine(): Promise<SysfsFixture> {
  const f = await SysfsFixture.create()
  const ahci = await f.pci('0000:00:1f.2', {
    vendor: '8086',
    device: '2922',
    sv: '1af4',
    sd: '1100',
    class: '010601',
    driver: 'ahci',
  })
  const scsi = `${ahci}/ata1/host0/target0:0:0/0:0:0:0`
  await f.write(scsi, { model: 'QEMU HARDDISK', wwid: 't10.ATA     QEMU HARDDISK                           QM00001' })
  await f.write(`${scsi}/block/sda`, {
    size: '41943040',
    'queue/logical_block_size': '512',
    'queue/physical_block_size': '4096',
    'queue/rotational': '1',
    removable: '0',
    'sda1/partition': '1',
  })
  await f.link(`${scsi}/block/sda/device`, scsi)
  await f.link('block/sda', `${scsi}/block/sda`)

  const nvme = await f.pci('0000:00:04.0', {
    vendor: '8086',
    device: '5845',
    sv: '1af4',
    sd: '1100',
    class: '010802',
    driver: 'nvme',
  })
  const ctrl = `${nvme}/nvme/nvme0`
  await f.write(ctrl, { model: 'QEMU NVMe Ctrl', serial: 'deadbeef' })
  await f.write(`${ctrl}/nvme0n1`, {
    size: '2097152',
    'queue/logical_block_size': '4096',
    'queue/physical_block_size': '4096',
    'queue/rotational': '0',
    removable: '0',
    wwid: 'nvme.8086-6465616462656566-51454d55204e564d65204374726c-00000001',
  })
  await f.link(`${ctrl}/nvme0n1/device`, ctrl)
  await f.link('block/nvme0n1', `${ctrl}/nvme0n1`)

  const virtio = await f.pci('0000:00:03.0', {
    vendor: '1af4',
    device: '1000',
    sv: '1af4',
    sd: '0001',
    class: '020000',
    driver: 'virtio-pci',
  })
  await f.link(`${virtio}/virtio0/driver`, 'bus/virtio/drivers/virtio_net')
  await f.write(`${virtio}/virtio0/net/ens3`, { address: '52:54:00:12:34:56', carrier: '1' })
  await f.link(`${virtio}/virtio0/net/ens3/device`, `${virtio}/virtio0`)
  await f.link('class/net/ens3', `${virtio}/virtio0/net/ens3`)

  const e1000 = await f.pci('0000:00:05.0', {
    vendor: '8086',
    device: '100e',
    sv: '1af4',
    sd: '1100',
    class: '020000',
    driver: 'e1000',
  })
  // Down: no readable carrier (the kernel answers EINVAL).
  await f.write(`${e1000}/net/ens4`, { address: '52:54:00:AB:CD:EF' })
  await f.link(`${e1000}/net/ens4/device`, e1000)
  await f.link('class/net/ens4', `${e1000}/net/ens4`)

  await f.pci('0000:00:00.0', { vendor: '8086', device: '29c0', sv: '1af4', sd: '1100', class: '060000' })
  await f.write('devices/virtual/net/lo', { address: '00:00:00:00:00:00', carrier: '1' })
  await f.link('class/net/lo', 'devices/virtual/net/lo')
  await f.write('devices/virtual/net/br0', { address: '02:42:ac:11:00:01', carrier: '1' })
  await f.link('class/net/br0', 'devices/virtual/net/br0')

  await f.write('devices/virtual/block/loop0', { size: '0', removable: '0' })
  await f.link('block/loop0', 'devices/virtual/block/loop0')
  await f.write('devices/virtual/block/loop1', {
    size: '2048',
    removable: '0',
    'loop/backing_file': '/tmp/disk.img',
    'queue/rotational': '0',
  })
  await f.link('block/loop1', 'devices/virtual/block/loop1')
  for (const n of ['ram0', 'zram0']) {
    await f.write(`devices/virtual/block/${n}`, { size: '8192' })
    await f.link(`block/${n}`, `devices/virtual/block/${n}`)
  }
  await f.write('devices/system/cpu', { online: '0-3,6' })
  await f.write('proc', {
    meminfo: 'MemTotal:        2048000 kB\nMemFree:          100000 kB',
    cpuinfo: 'processor\t: 0\nprocessor\t: 1',
  })
  return f
}

describe('collectInventory()', () => {
  let f: SysfsFixture
  before(async () => {
    f = await machine()
  })
  after(async () => {
    await f.remove()
  })
  const collect = () => collectInventory({ sysfs: f.root, procfs: `${f.root}/proc`, devfs: '/dev' })

  test('lists every PCI function with its ids, class, bound driver and modalias', async () => {
    const inv = await collect()
    assert.deepEqual(inv.pci, [
      {
        address: '0000:00:00.0',
        vendor: '8086',
        device: '29c0',
        subsystemVendor: '1af4',
        subsystemDevice: '1100',
        class: '060000',
        modalias: 'pci:v00008086d000029C0sv00001AF4sd00001100bc06sc00i00',
      },
      {
        address: '0000:00:03.0',
        vendor: '1af4',
        device: '1000',
        subsystemVendor: '1af4',
        subsystemDevice: '0001',
        class: '020000',
        driver: 'virtio-pci',
        modalias: 'pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00',
      },
      {
        address: '0000:00:04.0',
        vendor: '8086',
        device: '5845',
        subsystemVendor: '1af4',
        subsystemDevice: '1100',
        class: '010802',
        driver: 'nvme',
        modalias: 'pci:v00008086d00005845sv00001AF4sd00001100bc01sc08i02',
      },
      {
        address: '0000:00:05.0',
        vendor: '8086',
        device: '100e',
        subsystemVendor: '1af4',
        subsystemDevice: '1100',
        class: '020000',
        driver: 'e1000',
        modalias: 'pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00',
      },
      {
        address: '0000:00:1f.2',
        vendor: '8086',
        device: '2922',
        subsystemVendor: '1af4',
        subsystemDevice: '1100',
        class: '010601',
        driver: 'ahci',
        modalias: 'pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01',
      },
    ])
  })

  test('lists whole disks with sizes, sector sizes, identity and the PCI controller; skips unattached loops and RAM disks', async () => {
    const inv = await collect()
    assert.deepEqual(inv.disks, [
      {
        path: '/dev/loop1',
        name: 'loop1',
        sizeBytes: 2048 * 512,
        logicalSectorSize: 512,
        physicalSectorSize: 512,
        rotational: false,
        removable: false,
      },
      {
        path: '/dev/nvme0n1',
        name: 'nvme0n1',
        sizeBytes: 1024 ** 3,
        logicalSectorSize: 4096,
        physicalSectorSize: 4096,
        rotational: false,
        removable: false,
        model: 'QEMU NVMe Ctrl',
        serial: 'deadbeef',
        wwn: 'nvme.8086-6465616462656566-51454d55204e564d65204374726c-00000001',
        controller: '0000:00:04.0',
      },
      {
        path: '/dev/sda',
        name: 'sda',
        sizeBytes: 20 * 1024 ** 3,
        logicalSectorSize: 512,
        physicalSectorSize: 4096,
        rotational: true,
        removable: false,
        model: 'QEMU HARDDISK',
        wwn: 't10.ATA     QEMU HARDDISK                           QM00001',
        controller: '0000:00:1f.2',
      },
    ])
  })

  test('lists NICs with MAC (lower case), link, driver and PCI function; skips lo and virtual devices', async () => {
    const inv = await collect()
    assert.deepEqual(inv.nics, [
      { name: 'ens3', mac: '52:54:00:12:34:56', link: true, driver: 'virtio_net', pci: '0000:00:03.0' },
      { name: 'ens4', mac: '52:54:00:ab:cd:ef', link: false, driver: 'e1000', pci: '0000:00:05.0' },
    ])
  })

  test('counts online CPUs from their ranges and reads MemTotal in bytes', async () => {
    const inv = await collect()
    assert.equal(inv.cpus, 5)
    assert.equal(inv.memoryBytes, 2048000 * 1024)
    assert.equal(inv.version, 1)
  })

  test('falls back to /proc/cpuinfo when cpu/online is missing', async () => {
    const g = await SysfsFixture.create()
    try {
      await g.write('proc', {
        cpuinfo: 'processor\t: 0\nmodel name\t: x\n\nprocessor\t: 1\nmodel name\t: x\n\nprocessor\t: 2\n',
      })
      const inv = await collectInventory({ sysfs: g.root, procfs: `${g.root}/proc` })
      assert.equal(inv.cpus, 3)
      assert.equal(inv.memoryBytes, 0)
      assert.deepEqual([inv.pci, inv.disks, inv.nics], [[], [], []])
    } finally {
      await g.remove()
    }
  })

  test('firmware: bios without firmware/efi, uefi, uefi-secureboot when SecureBoot is 1', async () => {
    assert.equal((await collect()).firmware, 'bios')
    await f.write('firmware/efi', { systab: 'ACPI20=0x7f77e014' })
    assert.equal((await collect()).firmware, 'uefi')
    await f.write('', { [SECURE_BOOT_VAR]: new Uint8Array([0x06, 0, 0, 0, 0]) })
    assert.equal((await collect()).firmware, 'uefi')
    await f.write('', { [SECURE_BOOT_VAR]: new Uint8Array([0x06, 0, 0, 0, 1]) })
    assert.equal((await collect()).firmware, 'uefi-secureboot')
    // Attributes alone (a truncated variable) is not "enabled".
    await f.write('', { [SECURE_BOOT_VAR]: new Uint8Array([0x06, 0, 0, 0]) })
    assert.equal((await collect()).firmware, 'uefi')
    // No readable variable: the kernel's boot_params say what its EFI stub found (3 = enabled).
    const params = new Uint8Array(4096)
    params[0x1ec] = 2
    await f.write('', { [BOOT_PARAMS]: params })
    assert.equal((await collect()).firmware, 'uefi')
    params[0x1ec] = 3
    await f.write('', { [BOOT_PARAMS]: params })
    assert.equal((await collect()).firmware, 'uefi-secureboot')
  })
})

test('countRanges() counts kernel CPU lists and refuses what does not parse', () => {
  assert.equal(countRanges('0'), 1)
  assert.equal(countRanges('0-7'), 8)
  assert.equal(countRanges('0-3,6,8-9\n'), 7)
  assert.equal(countRanges('3-1'), undefined)
  assert.equal(countRanges('a'), undefined)
})

test("collectInventory() on this machine's /sys: CPUs, memory, 4-hex PCI ids, disks with sizes", async () => {
  const inv = await collectInventory()
  assert.ok(inv.cpus >= 1, `cpus ${inv.cpus}`)
  assert.ok(inv.memoryBytes > 0)
  assert.ok(['bios', 'uefi', 'uefi-secureboot'].includes(inv.firmware))
  const uptime = Number((await readFile('/proc/uptime', 'utf8')).split(' ')[0])
  assert.ok(inv.uptimeSeconds !== undefined && Math.abs(inv.uptimeSeconds - uptime) < 60, `uptime ${inv.uptimeSeconds}`)
  for (const p of inv.pci) {
    assert.match(p.vendor, /^[0-9a-f]{4}$/)
    assert.match(p.device, /^[0-9a-f]{4}$/)
    assert.match(p.class, /^[0-9a-f]{6}$/)
    assert.match(p.address, /^[0-9a-f]{4,8}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/)
  }
  const addresses = new Set(inv.pci.map((p) => p.address))
  for (const d of inv.disks) {
    assert.match(d.path, /^\/dev\//)
    assert.ok(!/^(ram|zram)\d+$/.test(d.name), d.name)
    assert.ok(d.logicalSectorSize >= 512 && d.physicalSectorSize >= d.logicalSectorSize)
    if (d.controller)
      assert.ok(addresses.has(d.controller), `${d.name}: controller ${d.controller} is a listed PCI function`)
  }
  for (const n of inv.nics) {
    assert.notEqual(n.name, 'lo')
    assert.match(n.mac, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/)
    if (n.pci) assert.ok(addresses.has(n.pci))
  }
})
