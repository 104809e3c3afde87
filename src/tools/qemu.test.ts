import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm, copyFile, open } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildQemuArgs, escapeOpt, macAddressFor, qemuImgOverlayArgv, OVMF_FILES, type QemuMachine } from './qemu.js'
import { classifyNic, classifyStorage, loadDeviceCatalog, parseDeviceHelp } from './qemu-devices.js'
import { run } from './run.js'

const catalog = parseDeviceHelp(`Storage devices:
name "ich9-ahci", bus PCI, alias "ahci"
name "megasas", bus PCI, desc "LSI MegaRAID SAS 1078"
name "nvme", bus PCI, desc "Non-Volatile Memory Express"
name "piix4-ide", bus PCI
name "usb-storage", bus usb-bus
name "virtio-blk-pci", bus PCI, alias "virtio-blk"
name "virtio-scsi-pci", bus PCI, alias "virtio-scsi"

Network devices:
name "e1000", bus PCI, alias "e1000-82540em", desc "Intel Gigabit Ethernet"
name "usb-net", bus usb-bus
name "ne2k_isa", bus ISA
`)

function machine(over: Partial<QemuMachine> & { storageName?: string; nicName?: string } = {}): QemuMachine {
  const { storageName = 'virtio-blk', nicName = 'e1000', ...rest } = over
  return {
    firmware: 'bios',
    storage: classifyStorage(catalog, storageName),
    nic: classifyNic(catalog, nicName),
    disks: [
      { path: '/lab/seed.img', format: 'raw', role: 'seed' },
      { path: '/lab/boot.qcow2', format: 'qcow2', role: 'boot' },
    ],
    memoryMiB: 1024,
    cpus: 1,
    serialLog: '/lab/serial.log',
    macAddress: '52:54:00:00:00:01',
    ...rest,
  }
}

/** The values of every `flag` in an argv, in order. */
function values(args: string[], flag: string): string[] {
  return args.flatMap((a, i) => (a === flag ? [args[i + 1]!] : []))
}

test('buildQemuArgs() always uses TCG, q35, no default devices and the serial log', () => {
  const args = buildQemuArgs(machine())
  assert.deepEqual(values(args, '-accel'), ['tcg'])
  assert.deepEqual(values(args, '-machine'), ['q35,graphics=off'])
  assert.ok(args.includes('-nodefaults'))
  assert.deepEqual(values(args, '-display'), ['none'])
  assert.deepEqual(values(args, '-serial'), ['file:/lab/serial.log'])
  assert.deepEqual(values(args, '-m'), ['1024'])
  assert.ok(!args.some((a) => /kvm/.test(a)), 'never KVM')
  assert.ok(!args.includes('-bios') && !args.some((a) => a.includes('pflash')), "BIOS is QEMU's default SeaBIOS")
})

test('buildQemuArgs() boots UEFI from OVMF code and the per-boot variable store copy', () => {
  const args = buildQemuArgs(machine({ firmware: 'uefi', varsPath: '/lab/vars.fd' }))
  assert.deepEqual(values(args, '-drive').slice(0, 2), [
    `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_FILES.uefi.code}`,
    'if=pflash,format=raw,unit=1,file=/lab/vars.fd',
  ])
  assert.deepEqual(values(args, '-machine'), ['q35,graphics=off'])
  assert.deepEqual(values(args, '-global'), [])
})

test('buildQemuArgs() turns on SMM and secure flash for UEFI with Secure Boot', () => {
  const args = buildQemuArgs(machine({ firmware: 'uefi-sb', varsPath: '/lab/vars.fd' }))
  assert.equal(OVMF_FILES['uefi-sb'].code, '/usr/share/OVMF/OVMF_CODE_4M.ms.fd')
  assert.equal(OVMF_FILES['uefi-sb'].varsTemplate, '/usr/share/OVMF/OVMF_VARS_4M.ms.fd')
  assert.match(values(args, '-drive')[0]!, /OVMF_CODE_4M\.ms\.fd$/)
  assert.deepEqual(values(args, '-machine'), ['q35,smm=on,graphics=off'])
  assert.deepEqual(values(args, '-global'), ['driver=cfi.pflash01,property=secure,value=on'])
})

test('buildQemuArgs() refuses UEFI without a variable store copy', () => {
  assert.throws(() => buildQemuArgs(machine({ firmware: 'uefi' })), /varsPath/)
})

test('buildQemuArgs() wires the boot disk first with bootindex=1 and the seed after it', () => {
  const args = buildQemuArgs(machine())
  assert.deepEqual(values(args, '-drive'), [
    'if=none,id=d0,file=/lab/boot.qcow2,format=qcow2,cache=unsafe,discard=unmap',
    'if=none,id=d1,file=/lab/seed.img,format=raw,cache=unsafe,discard=unmap',
  ])
  assert.deepEqual(values(args, '-device').slice(0, 2), [
    'virtio-blk-pci,drive=d0,bootindex=1',
    'virtio-blk-pci,drive=d1',
  ])
})

test('buildQemuArgs() gives a 4Kn disk 4096-byte logical and physical blocks on virtio-blk and NVMe, and refuses it on AHCI', () => {
  const boot = { path: '/lab/disk.raw', format: 'raw', role: 'boot', blockSize: 4096 } as const
  const four = ',logical_block_size=4096,physical_block_size=4096'
  assert.deepEqual(
    values(buildQemuArgs(machine({ disks: [boot] })), '-device')[0],
    `virtio-blk-pci,drive=d0,bootindex=1${four}`,
  )
  assert.deepEqual(
    values(buildQemuArgs(machine({ storageName: 'nvme', disks: [boot] })), '-device')[0],
    `nvme,serial=hwimage0,drive=d0,bootindex=1${four}`,
  )
  assert.throws(
    () => buildQemuArgs(machine({ storageName: 'ahci', disks: [boot] })),
    /4096-byte sectors need virtio-blk/,
  )
  assert.ok(!values(buildQemuArgs(machine()), '-device').some((d) => /logical_block_size/.test(d)), 'none by default')
})

test("buildQemuArgs() puts both disks on a SCSI HBA's bus", () => {
  const args = buildQemuArgs(machine({ storageName: 'megasas' }))
  assert.deepEqual(values(args, '-device').slice(0, 3), [
    'megasas,id=hba0',
    'scsi-hd,bus=hba0.0,channel=0,scsi-id=0,lun=0,drive=d0,bootindex=1',
    'scsi-hd,bus=hba0.0,channel=0,scsi-id=1,lun=0,drive=d1',
  ])
})

test("buildQemuArgs() uses q35's built-in AHCI ports for ahci", () => {
  const args = buildQemuArgs(machine({ storageName: 'ahci' }))
  assert.deepEqual(values(args, '-device').slice(0, 2), [
    'ide-hd,bus=ide.0,drive=d0,bootindex=1',
    'ide-hd,bus=ide.1,drive=d1',
  ])
})

test('buildQemuArgs() gives each NVMe disk its own controller and serial', () => {
  const args = buildQemuArgs(machine({ storageName: 'nvme' }))
  assert.deepEqual(values(args, '-device').slice(0, 2), [
    'nvme,serial=hwimage0,drive=d0,bootindex=1',
    'nvme,serial=hwimage1,drive=d1',
  ])
})

test('buildQemuArgs() can put the seed on virtio-blk instead of the boot controller', () => {
  const args = buildQemuArgs(machine({ storageName: 'megasas', seedOn: 'virtio-blk' }))
  assert.deepEqual(values(args, '-device').slice(0, 3), [
    'megasas,id=hba0',
    'scsi-hd,bus=hba0.0,channel=0,scsi-id=0,lun=0,drive=d0,bootindex=1',
    'virtio-blk-pci,drive=d1',
  ])
})

test('buildQemuArgs() wires user networking with host forwards, the MAC and no PXE ROM', () => {
  const args = buildQemuArgs(machine({ hostForwards: [{ hostPort: 10022, guestPort: 22 }] }))
  assert.deepEqual(values(args, '-netdev'), ['user,id=n0,hostfwd=tcp:127.0.0.1:10022-:22'])
  assert.equal(values(args, '-device').at(-1), 'e1000,netdev=n0,mac=52:54:00:00:00:01,romfile=')
  const usb = buildQemuArgs(machine({ nicName: 'usb-net' }))
  assert.deepEqual(values(usb, '-device').slice(-2), [
    'qemu-xhci,id=usbnic',
    'usb-net,netdev=n0,mac=52:54:00:00:00:01,bus=usbnic.0',
  ])
})

test('buildQemuArgs() with netboot: slirp TFTP and bootfile, the NIC first, the disk second, the ROM for SeaBIOS only', () => {
  const netboot = { tftpRoot: '/srv/tftp', bootfile: 'boot.ipxe' }
  const bios = buildQemuArgs(machine({ nicName: 'e1000', netboot }))
  assert.deepEqual(values(bios, '-netdev'), ['user,id=n0,tftp=/srv/tftp,bootfile=boot.ipxe'])
  assert.equal(values(bios, '-device').at(-1), 'e1000,netdev=n0,mac=52:54:00:00:00:01,bootindex=1')
  assert.ok(
    values(bios, '-device').some((d) => d.endsWith('drive=d0,bootindex=2')),
    'the disk boots second',
  )
  const sb = buildQemuArgs(
    machine({ firmware: 'uefi-sb', varsPath: '/lab/vars.fd', netboot: { ...netboot, bootfile: 'shimx64.efi' } }),
  )
  assert.equal(values(sb, '-device').at(-1), 'e1000,netdev=n0,mac=52:54:00:00:00:01,romfile=,bootindex=1')
})

test('buildQemuArgs() with netboot on a tap device: no slirp, the NIC first, the ROM for SeaBIOS; no host forwards', () => {
  const bios = buildQemuArgs(machine({ nicName: 'e1000', netboot: { tap: 'tap0' } }))
  assert.deepEqual(values(bios, '-netdev'), ['tap,id=n0,ifname=tap0,script=no,downscript=no'])
  assert.equal(values(bios, '-device').at(-1), 'e1000,netdev=n0,mac=52:54:00:00:00:01,bootindex=1')
  assert.throws(
    () => buildQemuArgs(machine({ netboot: { tap: 'tap0' }, hostForwards: [{ hostPort: 2222, guestPort: 22 }] })),
    /hostForwards need user networking/,
  )
})

test('buildQemuArgs() doubles commas in disk paths', () => {
  assert.equal(escapeOpt('/a,b/c'), '/a,,b/c')
  const args = buildQemuArgs(machine({ disks: [{ path: '/x,y.img', format: 'raw', role: 'boot' }] }))
  assert.match(values(args, '-drive')[0]!, /file=\/x,,y\.img,/)
})

test('buildQemuArgs() requires exactly one boot disk', () => {
  assert.throws(
    () => buildQemuArgs(machine({ disks: [{ path: '/a', format: 'raw', role: 'seed' }] })),
    /exactly one boot disk/,
  )
})

test('qemuImgOverlayArgv() makes a qcow2 overlay over a raw image with a given size', () => {
  assert.deepEqual(
    qemuImgOverlayArgv({
      backing: '/img/a.img',
      backingFormat: 'raw',
      overlay: '/lab/o.qcow2',
      sizeBytes: 21474836480n,
    }),
    ['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', '/img/a.img', '-F', 'raw', '/lab/o.qcow2', '21474836480'],
  )
})

test('macAddressFor() makes distinct QEMU-prefixed addresses', () => {
  assert.equal(macAddressFor(1), '52:54:00:00:00:01')
  assert.equal(macAddressFor(0x123456), '52:54:00:12:34:56')
})

// QEMU creates every device before its monitor reads "quit", so a wiring mistake
// (wrong bus name, missing property) fails here in milliseconds, without booting.
test('QEMU accepts the command line for every storage kind, NIC bus and firmware', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hwimage-qemu-'))
  try {
    const real = await loadDeviceCatalog()
    for (const name of ['boot.img', 'seed.img']) {
      const fh = await open(join(dir, name), 'w')
      await fh.truncate(1024 * 1024)
      await fh.close()
    }
    await copyFile(OVMF_FILES['uefi-sb'].varsTemplate, join(dir, 'vars.fd'))
    const disks = [
      { path: join(dir, 'boot.img'), format: 'raw', role: 'boot' },
      { path: join(dir, 'seed.img'), format: 'raw', role: 'seed' },
    ] as const
    const cases = [
      ['virtio-blk', 'virtio-net-pci', 'bios'],
      ['virtio-scsi', 'e1000', 'uefi-sb'],
      ['ahci', 'e1000e', 'bios'],
      ['nvme', 'rtl8139', 'uefi-sb'],
      ['megasas', 'vmxnet3', 'bios'],
      ['mptsas1068', 'usb-net', 'bios'],
      ['piix4-ide', 'ne2k_isa', 'bios'],
      ['usb-storage', 'e1000', 'bios'],
      ['pvscsi', 'e1000', 'bios'],
      ['virtio-blk', 'e1000', 'uefi-sb', 4096],
      ['nvme', 'e1000', 'uefi-sb', 4096],
    ] as const
    for (const [storage, nic, firmware, blockSize] of cases) {
      const args = buildQemuArgs({
        firmware,
        storage: classifyStorage(real, storage),
        nic: classifyNic(real, nic),
        disks: blockSize ? disks.map((d) => ({ ...d, blockSize })) : disks,
        memoryMiB: 256,
        cpus: 1,
        serialLog: join(dir, 'serial.log'),
        macAddress: macAddressFor(7),
        varsPath: join(dir, 'vars.fd'),
        hostForwards: [{ hostPort: 0, guestPort: 22 }],
      })
      const r = await run(['qemu-system-x86_64', ...args, '-S', '-monitor', 'stdio'], { input: 'quit\n' })
      assert.equal(r.status, 0, `${storage} ${nic} ${firmware}${blockSize ? ` ${blockSize}-byte sectors` : ''}`)
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
