import { test } from 'node:test'
import assert from 'node:assert/strict'
import { diagnoseBoot } from './diagnose.js'
import {
  GOOD_UEFI_SB_BOOT,
  GRUB_NO_ROOT,
  OVMF_SB_REJECTED,
  INITRAMFS_NO_ROOT,
  KERNEL_PANIC,
  NO_NIC_BOOT,
  NO_SEED_BOOT,
  OVMF_NO_BOOT,
  OVMF_SHELL_NO_BOOT,
  SEABIOS_NO_BOOT,
} from './console.fixture.js'

const timedOut = { timedOut: true }

test("diagnoseBoot() finds nothing wrong with a boot that reached cloud-init's final stage", () => {
  assert.equal(diagnoseBoot(GOOD_UEFI_SB_BOOT, { timedOut: false }), null)
})

test('diagnoseBoot() passes a cell only when its report arrived', () => {
  assert.equal(diagnoseBoot(GOOD_UEFI_SB_BOOT, { timedOut: false, needReport: true, reportReceived: true }), null)
  const d = diagnoseBoot(GOOD_UEFI_SB_BOOT, { timedOut: true, needReport: true, reportReceived: false })
  assert.equal(d?.code, 'no-network')
  assert.match(d!.summary, /report never arrived.*enp0s3/)
})

test('diagnoseBoot() says the firmware found no boot entry (SeaBIOS)', () => {
  const d = diagnoseBoot(SEABIOS_NO_BOOT, timedOut)
  assert.equal(d?.code, 'no-boot-entry')
  assert.equal(d?.evidence, 'Boot failed: not a bootable disk')
})

test('diagnoseBoot() says the firmware found no boot entry (OVMF)', () => {
  const d = diagnoseBoot(OVMF_NO_BOOT, timedOut)
  assert.equal(d?.code, 'no-boot-entry')
  assert.equal(d?.evidence, 'BdsDxe: No bootable option or device was found.')
})

test('diagnoseBoot() says Secure Boot refused the bootloader when OVMF denies it', () => {
  const d = diagnoseBoot(OVMF_SB_REJECTED, timedOut)
  assert.equal(d?.code, 'bootloader-failed')
  assert.match(d!.summary, /Secure Boot verification failed/)
  assert.match(d!.evidence!, /failed to load Boot0001 "UEFI Misc Device" .*: Access Denied$/)
})

test('diagnoseBoot() says the firmware found no boot entry when OVMF falls back to its shell', () => {
  const d = diagnoseBoot(OVMF_SHELL_NO_BOOT, timedOut)
  assert.equal(d?.code, 'no-boot-entry')
  assert.equal(d!.evidence!, 'UEFI Interactive Shell v2.2')
})

test("diagnoseBoot() ignores GRUB's harmless video mode error on a machine without a display", () => {
  const log = GOOD_UEFI_SB_BOOT.replace(
    'Welcome to GRUB!',
    'Welcome to GRUB!\r\nerror: no suitable video mode found.\r\nBooting in blind mode\r',
  )
  assert.equal(diagnoseBoot(log, { timedOut: false }), null)
  const cut = log.slice(0, log.indexOf('[    0.000000] Linux version'))
  assert.equal(diagnoseBoot(cut, timedOut)?.code, 'bootloader-failed')
  assert.doesNotMatch(diagnoseBoot(cut, timedOut)?.evidence ?? '', /video mode/)
})

test('diagnoseBoot() says the bootloader failed when GRUB drops to rescue mode', () => {
  const d = diagnoseBoot(GRUB_NO_ROOT, timedOut)
  assert.equal(d?.code, 'bootloader-failed')
  assert.match(d!.evidence!, /^error: no such device/)
})

test('diagnoseBoot() says the initramfs gave up waiting for the root device', () => {
  const d = diagnoseBoot(INITRAMFS_NO_ROOT, timedOut)
  assert.equal(d?.code, 'root-device-missing')
  assert.match(d!.evidence!, /Gave up waiting for root file system device/)
  assert.equal(d?.reached, 'root-missing')
})

test('diagnoseBoot() says the kernel panicked', () => {
  const d = diagnoseBoot(KERNEL_PANIC, timedOut)
  assert.equal(d?.code, 'kernel-panic')
  assert.match(d!.evidence!, /Kernel panic - not syncing: VFS/)
})

test('diagnoseBoot() says the machine had no network when cloud-init lists only loopback', () => {
  const d = diagnoseBoot(NO_NIC_BOOT, { timedOut: true, needReport: true, reportReceived: false })
  assert.equal(d?.code, 'no-network')
  assert.match(d!.summary, /no network interface came up/)
})

test('diagnoseBoot() says cloud-init failed when it found no seed', () => {
  const d = diagnoseBoot(NO_SEED_BOOT, { timedOut: false })
  assert.equal(d?.code, 'cloud-init-error')
  assert.match(d!.summary, /no seed/)
})

test('diagnoseBoot() says how far a boot got when it timed out', () => {
  const upToSystemd = GOOD_UEFI_SB_BOOT.slice(0, GOOD_UEFI_SB_BOOT.indexOf('Welcome to \x1b'))
  const d = diagnoseBoot(upToSystemd, timedOut)
  assert.equal(d?.code, 'timeout')
  assert.equal(d?.reached, 'systemd')
  assert.equal(diagnoseBoot('', timedOut)?.summary, 'Timed out with no output from the firmware')
})

test('diagnoseBoot() reports QEMU stopping by itself with its last error line', () => {
  const d = diagnoseBoot('', {
    timedOut: false,
    qemuExit: {
      status: 1,
      signal: null,
      stderr: "qemu-system-x86_64: -device foo: 'foo' is not a valid device model name\n",
    },
  })
  assert.equal(d?.code, 'qemu-failed')
  assert.match(d!.evidence!, /not a valid device model name/)
})
