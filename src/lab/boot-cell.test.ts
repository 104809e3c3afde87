import { test } from 'node:test'
import assert from 'node:assert/strict'
import { access, chmod, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { bootCell, tenths, type BootCellOptions } from './boot-cell.js'
import { GOOD_UEFI_SB_BOOT, KERNEL_PANIC } from './console.fixture.js'
import { classifyNic, classifyStorage, parseDeviceHelp } from '../tools/qemu-devices.js'
import type { Firmware } from '../tools/qemu.js'

// A stand-in for qemu-system-x86_64: copies the console the test left in the work
// directory (console.txt) to the -serial file: and lingers like a running VM.
const FAKE_QEMU = `#!/bin/sh
for a in "$@"; do case "$a" in file:*) log="\${a#file:}";; esac; done
cat "$(dirname "$log")/console.txt" > "$log"
while :; do sleep 0.1; done
`

const catalog = parseDeviceHelp(
  'Storage devices:\nname "virtio-blk-pci", bus PCI, alias "virtio-blk"\n\nNetwork devices:\nname "e1000", bus PCI\n',
)

/** Boots a fake cell whose console is `console`; returns the options used too. */
async function withCell<T>(
  console: string,
  firmware: Firmware,
  fn: (dir: string, opts: BootCellOptions<never>) => Promise<T>,
): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'hwimage-cell-'))
  try {
    const qemu = join(dir, 'fake-qemu')
    await writeFile(qemu, FAKE_QEMU)
    await chmod(qemu, 0o755)
    await writeFile(join(dir, 'console.txt'), console)
    const opts: BootCellOptions<never> = {
      machine: {
        firmware,
        storage: classifyStorage(catalog, 'virtio-blk'),
        nic: classifyNic(catalog, 'e1000'),
        memoryMiB: 256,
        cpus: 1,
        macAddress: '52:54:00:00:00:01',
      },
      prepare: async () => {
        await writeFile(join(dir, 'disk.img'), '')
        return [{ path: join(dir, 'disk.img'), format: 'raw', role: 'boot' }]
      },
      workDir: dir,
      timeoutMs: 20_000,
      until: (c) => c.has('cloud-init-final'),
      qemu,
    }
    return await fn(dir, opts)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  )

test("bootCell() boots until the caller's condition, judges the console and removes the disks", async () => {
  await withCell(GOOD_UEFI_SB_BOOT, 'uefi-sb', async (dir, opts) => {
    const { boot, verdict, report } = await bootCell(opts)
    assert.equal(boot.outcome, 'done')
    assert.equal(verdict.pass, true)
    assert.equal(report, undefined)
    assert.equal(await exists(join(dir, 'disk.img')), false, 'the disk is removed')
    assert.equal(await exists(join(dir, 'ovmf-vars.fd')), false, 'the OVMF variable store is removed')
    assert.equal(await exists(join(dir, 'serial.log')), true, 'the console log stays')
  })
})

test('bootCell() stops at a dead end without waiting for the timeout', async () => {
  await withCell(KERNEL_PANIC, 'bios', async (_dir, opts) => {
    const { boot, verdict } = await bootCell({ ...opts, until: () => false })
    assert.equal(boot.outcome, 'done')
    assert.ok(boot.seconds < 10)
    assert.equal(verdict.pass, false)
    assert.equal(verdict.diagnosis?.code, 'kernel-panic')
  })
})

test('bootCell() fails a uefi-sb cell whose kernel booted with Secure Boot off', async () => {
  const console = GOOD_UEFI_SB_BOOT.replace('Secure boot enabled', 'Secure boot disabled')
  await withCell(console, 'uefi-sb', async (_dir, opts) => {
    const { verdict } = await bootCell(opts)
    assert.equal(verdict.pass, false)
    assert.equal(verdict.secureBootOff?.code, 'secure-boot-off')
  })
})

test('bootCell() passes a cell that awaits a report only when the report arrived, and returns it', async () => {
  await withCell(GOOD_UEFI_SB_BOOT, 'bios', async (_dir, opts) => {
    const sent = { event: 'first-boot' }
    const got = await bootCell({ ...opts, report: () => sent })
    assert.equal(got.verdict.pass, true)
    assert.equal(got.report, sent)
    const lost = await bootCell({ ...opts, timeoutMs: 500, until: () => false, report: () => undefined })
    assert.equal(lost.verdict.pass, false)
    assert.equal(lost.verdict.diagnosis?.code, 'no-network')
  })
})

test('bootCell() keeps the disks when asked', async () => {
  await withCell(GOOD_UEFI_SB_BOOT, 'uefi', async (dir, opts) => {
    await bootCell({ ...opts, keepDisks: true })
    assert.equal(await exists(join(dir, 'disk.img')), true)
    assert.equal(await exists(join(dir, 'ovmf-vars.fd')), true)
  })
})

test('tenths() rounds seconds to a tenth', () => {
  assert.deepEqual([tenths(160.44), tenths(160.45), tenths(0)], [160.4, 160.5, 0])
})
