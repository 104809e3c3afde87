import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ConsoleWatcher, stripControl } from './console-watch.js'
import { GOOD_UEFI_SB_BOOT, SEABIOS_NO_BOOT } from './console.fixture.js'

test("ConsoleWatcher records a good Secure Boot boot's milestones in order", () => {
  const w = new ConsoleWatcher()
  w.feed(GOOD_UEFI_SB_BOOT, 1)
  assert.deepEqual(
    w.milestones.map((m) => m.kind),
    [
      'firmware',
      'bootloader',
      'kernel',
      'secure-boot',
      'initramfs',
      'root-mounted',
      'systemd',
      'cloud-init-local',
      'network',
      'login',
      'ready',
      'cloud-init-final',
    ],
  )
  assert.equal(w.facts.secureBoot, 'enabled')
  assert.equal(w.facts.kernelVersion, '6.1.0-56-amd64')
  assert.equal(w.facts.cloudInitVersion, '22.4.2')
  assert.equal(w.facts.datasource, 'DataSourceNoCloud [seed=/dev/vdb][dsmode=net]')
  assert.equal(w.facts.hostname, 'hwimage-demo')
  assert.equal(w.facts.rootBytes, 21000351744)
  assert.deepEqual(w.facts.interfaces, ['enp0s3'])
  assert.equal(w.facts.netInfoSeen, true)
  assert.equal(w.facts.firmwareStarts, 1)
})

test('ConsoleWatcher gives the same result however the text is split', () => {
  const whole = new ConsoleWatcher()
  whole.feed(GOOD_UEFI_SB_BOOT, 0)
  const pieces = new ConsoleWatcher()
  for (let i = 0; i < GOOD_UEFI_SB_BOOT.length; i += 7) pieces.feed(GOOD_UEFI_SB_BOOT.slice(i, i + 7), 0)
  pieces.end(0)
  // Kinds and times match; a prompt seen mid-line keeps only the text seen so far.
  assert.deepEqual(
    pieces.milestones.map((m) => [m.kind, m.at]),
    whole.milestones.map((m) => [m.kind, m.at]),
  )
  assert.deepEqual(pieces.facts, whole.facts)
})

test('ConsoleWatcher stamps each milestone with the time its line arrived', () => {
  const w = new ConsoleWatcher()
  w.feed('[    0.000000] Linux version 6.1.0-28-amd64 (debian-kernel@lists.debian.org)\n', 12.5)
  w.feed(
    '[   95.051234] cloud-init[512]: Cloud-init v. 22.4.2 finished at Mon, 25 Nov 2024 21:31:00 +0000. Datasource DataSourceNoCloud [seed=/dev/vdb][dsmode=net].  Up 95.05 seconds\n',
    101,
  )
  assert.deepEqual(
    w.milestones.map((m) => [m.kind, m.at]),
    [
      ['kernel', 12.5],
      ['cloud-init-final', 101],
    ],
  )
})

test('ConsoleWatcher sees the login prompt before its line ends', () => {
  const w = new ConsoleWatcher()
  w.feed('\r\nDebian GNU/Linux 12 hwimage-demo ttyS0\r\n\r\nhwimage-demo login: ', 3)
  assert.equal(w.get('login')?.at, 3)
  assert.equal(w.facts.hostname, 'hwimage-demo')
})

test('ConsoleWatcher reads SeaBIOS through its serial console and counts firmware starts', () => {
  const w = new ConsoleWatcher()
  w.feed(SEABIOS_NO_BOOT + SEABIOS_NO_BOOT, 0)
  assert.ok(w.has('firmware'))
  assert.ok(w.has('no-boot-entry'))
  assert.equal(w.facts.firmwareStarts, 2)
})

test('ConsoleWatcher reports Secure Boot disabled from the kernel line', () => {
  const w = new ConsoleWatcher()
  w.feed('[    0.000000] secureboot: Secure boot disabled\n', 0)
  assert.equal(w.facts.secureBoot, 'disabled')
})

test("stripControl() removes OVMF's screen control sequences and carriage returns", () => {
  assert.equal(stripControl('\x1b[2J\x1b[01;01H\x1b[=3h\x1b[2J\x1b[01;01HBdsDxe: loading\r'), 'BdsDxe: loading')
  assert.equal(stripControl('\x1bc\x1b[?7l\x1b[2J\x1b[0mSeaBIOS (version 1.16.2)'), 'SeaBIOS (version 1.16.2)')
})
