import { test } from 'node:test'
import assert from 'node:assert/strict'
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { cellId } from './cell-id.js'
import { isTcgHiccup, planCells, reportOverdue, REPORT_GRACE_SECONDS, runMatrix, type DiskPreparer } from './matrix.js'
import { ConsoleWatcher } from './console-watch.js'
import { GOOD_UEFI_SB_BOOT, NO_NIC_BOOT } from './console.fixture.js'
import { classifyStorage, parseDeviceHelp } from '../tools/qemu-devices.js'
import { FIRMWARES } from '../tools/qemu.js'
import { UsageError } from '../errors.js'

const catalog = parseDeviceHelp(`Storage devices:
name "ich9-ahci", bus PCI, alias "ahci"
name "megasas", bus PCI, desc "LSI MegaRAID SAS 1078"
name "mptsas1068", bus PCI, desc "LSI SAS 1068"
name "nvme", bus PCI, desc "Non-Volatile Memory Express"
name "virtio-blk-pci", bus PCI, alias "virtio-blk"
name "virtio-scsi-pci", bus PCI, alias "virtio-scsi"
`)
const storages = ['virtio-blk', 'virtio-scsi', 'ahci', 'nvme', 'megasas', 'mptsas1068'].map((s) =>
  classifyStorage(catalog, s),
)
const nics = ['virtio-net-pci', 'e1000', 'e1000e', 'rtl8139']

test('planCells() boots the covering set and never a cell the firmware cannot boot', () => {
  const plan = planCells({ firmwares: FIRMWARES, storages, nics }, 'covering', { runGaps: true })
  assert.equal(plan.run.length, 6)
  assert.ok(plan.run.every((c) => !['megasas', 'mptsas1068'].includes(c.storage) || c.firmware === 'bios'))
  assert.deepEqual(plan.notApplicable, [])
})

test('planCells() lists a device QEMU cannot emulate for Linux as not applicable, unless asked to run it', () => {
  const plan = planCells({ firmwares: FIRMWARES, storages, nics }, 'covering')
  assert.equal(plan.run.length, 5)
  assert.ok(!plan.run.some((c) => c.storage === 'mptsas1068'))
  assert.deepEqual(
    plan.notApplicable.map((c) => [c.firmware, c.storage]),
    FIRMWARES.map((f) => [f, 'mptsas1068']),
  )
  assert.match(plan.notApplicable[0]!.reason, /QEMU 7\.2's mptsas1068/)
  for (const v of ['virtio-blk', 'virtio-scsi', 'ahci', 'nvme', 'megasas'])
    assert.ok(
      plan.run.some((c) => c.storage === v),
      v,
    )
  for (const n of nics)
    assert.ok(
      plan.run.some((c) => c.nic === n),
      n,
    )
})

test('planCells() lists every non-applicable cell of the full matrix with its reason', () => {
  const plan = planCells({ firmwares: FIRMWARES, storages, nics }, 'all', { runGaps: true })
  assert.equal(plan.run.length + plan.notApplicable.length, 72)
  assert.equal(plan.notApplicable.length, 16, 'uefi and uefi-sb × megasas and mptsas1068 × 4 NICs')
  const megasasUefi = plan.notApplicable.filter((c) => c.storage === 'megasas')
  assert.deepEqual(new Set(megasasUefi.map((c) => c.firmware)), new Set(['uefi', 'uefi-sb']))
  assert.match(megasasUefi[0]!.reason, /OVMF has no MegaRAID/)
})

test('planCells() shows a controller no chosen firmware can boot as not applicable', () => {
  const plan = planCells({ firmwares: ['uefi'], storages: [storages[0]!, storages[4]!], nics: ['e1000'] }, 'covering')
  assert.deepEqual(
    plan.run.map((c) => c.storage),
    ['virtio-blk'],
  )
  assert.deepEqual(
    plan.notApplicable.map((c) => [c.firmware, c.storage]),
    [['uefi', 'megasas']],
  )
})

test('reportOverdue() stops waiting when cloud-init finished without a network, or long ago', () => {
  const good = new ConsoleWatcher()
  good.feed(GOOD_UEFI_SB_BOOT, 100) // final stage seen 100 s after the start
  assert.equal(reportOverdue(good, 0, 100_000 + 10_000), false)
  assert.equal(reportOverdue(good, 0, 100_000 + (REPORT_GRACE_SECONDS + 1) * 1000), true)
  const noNic = new ConsoleWatcher()
  noNic.feed(
    NO_NIC_BOOT +
      '\n[   90.0] cloud-init[512]: Cloud-init v. 22.4.2 finished at Mon, 25 Nov 2024 21:31:00 +0000. Datasource DataSourceNoCloud [seed=/dev/vdb][dsmode=net].  Up 90.00 seconds\n',
    90,
  )
  assert.equal(reportOverdue(noNic, 0, 91_000), true)
  const early = new ConsoleWatcher()
  early.feed(NO_NIC_BOOT + '\n', 50)
  assert.equal(reportOverdue(early, 0, 10_000_000), false, 'no final stage yet: the timeout decides')
})

// A stand-in for QEMU: writes a boot to the serial log and, when the cell's seed
// asks for a report, POSTs it the way the first-boot script would (10.0.2.2 is the
// host's loopback in QEMU user networking). Cells on megasas stop in the initramfs.
const FAKE_QEMU = `#!/bin/sh
for a in "$@"; do case "$a" in file:*) log="\${a#file:}";; hba0*) ;; esac; done
case "$*" in *megasas*) broken=1;; esac
dir=$(dirname "$log")
printf 'SeaBIOS (version 1.16.2-debian-1.16.2-1)\\r\\n[    0.000000] Linux version 6.1.0-28-cloud-amd64 (x)\\r\\n' > "$log"
if [ -n "$broken" ]; then
  printf 'Gave up waiting for root file system device.  Common problems:\\r\\nALERT!  UUID=0 does not exist.  Dropping to a shell!\\r\\n' >> "$log"
else
  url=$(sed 's/10\\.0\\.2\\.2/127.0.0.1/' "$dir/report-url")
  curl -s -o /dev/null -H 'Content-Type: application/json' --data '{"event":"first-boot"}' "$url"
fi
while :; do sleep 0.1; done
`

/** A lab in `dir` with a stand-in QEMU: the image, the QEMU script, and a preparer that records the cells it prepares. */
async function fakeLab(
  dir: string,
  script: string,
): Promise<{ qemu: string; prepare: DiskPreparer; image: string; booted: string[] }> {
  const qemu = join(dir, 'fake-qemu')
  await writeFile(qemu, script)
  await chmod(qemu, 0o755)
  const booted: string[] = []
  const prepare: DiskPreparer = async (ctx) => {
    booted.push(cellId(ctx.cell))
    await writeFile(join(ctx.workDir, 'report-url'), ctx.seed.report!.url)
    await writeFile(join(ctx.workDir, 'disk.img'), '')
    return [{ path: join(ctx.workDir, 'disk.img'), format: 'raw', role: 'boot' }]
  }
  const image = join(dir, 'image.img')
  await writeFile(image, new Uint8Array(1024))
  return { qemu, prepare, image, booted }
}

test('runMatrix() passes cells whose report arrives and diagnoses the others from their console', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hwimage-matrix-'))
  try {
    const { qemu, prepare, image } = await fakeLab(dir, FAKE_QEMU)
    const events: string[] = []
    const r = await runMatrix({
      image,
      firmwares: ['bios', 'uefi'],
      storages: ['virtio-blk', 'megasas'],
      nics: ['e1000'],
      cells: 'covering',
      jobs: 2,
      timeoutMs: 20_000,
      memoryMiB: 256,
      reportDir: join(dir, 'report'),
      prepare,
      qemu,
      onEvent: (e) => events.push(e.type),
    })
    assert.deepEqual(r.summary, { pass: 1, fail: 1, notApplicable: 0 })
    const pass = r.cells.find((c) => c.status === 'pass')!
    assert.equal(pass.storage, 'virtio-blk')
    assert.equal(pass.firmware, 'uefi')
    assert.deepEqual(pass.report, { event: 'first-boot' })
    assert.match(pass.qemu ?? '', /-accel tcg .*-serial file:.*serial\.log/)
    assert.ok(pass.seconds! >= 0 && pass.seconds! < 20)
    const fail = r.cells.find((c) => c.status === 'fail')!
    assert.deepEqual([fail.firmware, fail.storage], ['bios', 'megasas'])
    assert.equal(fail.diagnosis?.code, 'root-device-missing')
    assert.equal(fail.serialLog, 'cells/bios--megasas--e1000/serial.log')
    assert.match(await readFile(join(dir, 'report', fail.serialLog!), 'utf8'), /Gave up waiting/)
    assert.equal(events.filter((e) => e === 'cell-done').length, 2)
    await assert.rejects(
      readFile(join(dir, 'report', 'cells', pass.id, 'disk.img')),
      'the disks are removed after the boot',
    )
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('runMatrix() with resume boots only the cells an earlier run of the same image did not finish', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hwimage-matrix-'))
  try {
    const { qemu, prepare, image, booted } = await fakeLab(dir, FAKE_QEMU)
    const reportDir = join(dir, 'report')
    const opts = {
      image,
      firmwares: ['bios'] as const,
      storages: ['virtio-blk', 'megasas', 'ahci'],
      nics: ['e1000'],
      cells: 'all' as const,
      jobs: 1,
      timeoutMs: 20_000,
      memoryMiB: 256,
      reportDir,
      prepare,
      qemu,
    }
    const first = await runMatrix({ ...opts, firmwares: [...opts.firmwares] })
    assert.deepEqual(first.summary, { pass: 2, fail: 1, notApplicable: 0 })
    // The run is cut short: one cell's result is lost, another's is half written.
    await rm(join(reportDir, 'cells', 'bios--ahci--e1000', 'result.json'))
    await writeFile(join(reportDir, 'cells', 'bios--megasas--e1000', 'result.json'), '{"image": {"pa')
    booted.length = 0
    let start: unknown
    const second = await runMatrix({
      ...opts,
      firmwares: [...opts.firmwares],
      resume: true,
      onEvent: (e) => e.type === 'start' && (start = e),
    })
    assert.deepEqual(
      booted.sort(),
      ['bios--ahci--e1000', 'bios--megasas--e1000'],
      'only the unfinished cells boot again',
    )
    assert.deepEqual(second.summary, first.summary)
    assert.ok(
      second.cells.find((c) => c.id === 'bios--virtio-blk--e1000')?.resumedFrom,
      'the kept cell says when it finished',
    )
    assert.deepEqual(
      second.cells.map((c) => c.id),
      first.cells.map((c) => c.id),
      'the same order as a whole run',
    )
    assert.deepEqual(
      start && { boots: (start as { boots: number }).boots, resumed: (start as { resumed: number }).resumed },
      { boots: 2, resumed: 1 },
    )
    // Another image (a rebuilt one) keeps nothing.
    await writeFile(image, new Uint8Array(2048))
    booted.length = 0
    await runMatrix({ ...opts, firmwares: [...opts.firmwares], resume: true })
    assert.equal(booted.length, 3, 'results of another image are not kept')
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('runMatrix() interrupted returns the cells that finished and says how many, and --resume boots the rest', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hwimage-matrix-'))
  try {
    const { qemu, prepare, image, booted } = await fakeLab(dir, FAKE_QEMU)
    const opts = {
      image,
      firmwares: ['bios' as const],
      storages: ['virtio-blk', 'ahci', 'nvme'],
      nics: ['e1000'],
      cells: 'all' as const,
      jobs: 1,
      timeoutMs: 20_000,
      memoryMiB: 256,
      reportDir: join(dir, 'report'),
      prepare,
      qemu,
    }
    const stop = new AbortController()
    const r = await runMatrix({ ...opts, signal: stop.signal, onEvent: (e) => e.type === 'cell-done' && stop.abort() })
    assert.deepEqual(r.interrupted, { finished: 1, planned: 3 })
    assert.deepEqual(
      r.cells.map((c) => [c.id, c.status]),
      [['bios--virtio-blk--e1000', 'pass']],
    )
    booted.length = 0
    const rest = await runMatrix({ ...opts, resume: true })
    assert.equal(rest.interrupted, undefined)
    assert.deepEqual(booted, ['bios--ahci--e1000', 'bios--nvme--e1000'])
    assert.equal(rest.summary.pass, 3)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

// The first boot of every cell panics the way TCG does on an overloaded host; the next one reports.
const FLAKY_QEMU = `#!/bin/sh
for a in "$@"; do case "$a" in file:*) log="\${a#file:}";; esac; done
dir=$(dirname "$log")
if [ ! -e "$dir/../../panicked-once" ]; then
  touch "$dir/../../panicked-once"
  printf "[    0.000000] Linux version 6.1.0-56-amd64 (x)\\r\\n[    0.000000] Kernel panic - not syncing: IO-APIC + timer doesn't work!  Boot with apic=debug and send a report.  Then try booting with the 'noapic' option.\\r\\n" > "$log"
else
  url=$(sed 's/10\\.0\\.2\\.2/127.0.0.1/' "$dir/report-url")
  curl -s -o /dev/null -H 'Content-Type: application/json' --data '{"event":"first-boot"}' "$url"
fi
while :; do sleep 0.1; done
`

test("runMatrix() boots a cell again when TCG's timer check panicked the kernel, and keeps the first log", async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hwimage-matrix-'))
  try {
    const { qemu, prepare, image } = await fakeLab(dir, FLAKY_QEMU)
    const r = await runMatrix({
      image,
      firmwares: ['bios'],
      storages: ['virtio-blk'],
      nics: ['e1000'],
      cells: 'covering',
      jobs: 1,
      timeoutMs: 20_000,
      memoryMiB: 256,
      reportDir: join(dir, 'report'),
      prepare,
      qemu,
    })
    const c = r.cells[0]!
    assert.equal(c.status, 'pass')
    assert.equal(c.retried?.diagnosis.code, 'kernel-panic')
    assert.equal(c.retried?.serialLog, 'cells/bios--virtio-blk--e1000.attempt1/serial.log')
    assert.match(await readFile(join(dir, 'report', c.retried!.serialLog), 'utf8'), /IO-APIC \+ timer/)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('isTcgHiccup() is only the IO-APIC timer panic', () => {
  assert.equal(
    isTcgHiccup({
      code: 'kernel-panic',
      summary: '',
      evidence: "[    0.000000] Kernel panic - not syncing: IO-APIC + timer doesn't work!  Boot with apic=debug",
    }),
    true,
  )
  assert.equal(
    isTcgHiccup({
      code: 'kernel-panic',
      summary: '',
      evidence: 'Kernel panic - not syncing: VFS: Unable to mount root fs',
    }),
    false,
  )
  assert.equal(isTcgHiccup(undefined), false)
})

test('runMatrix() refuses a device QEMU does not know before booting anything', async () => {
  await assert.rejects(
    runMatrix({
      image: '/nonexistent',
      firmwares: ['bios'],
      storages: ['megaraid9000'],
      nics: ['e1000'],
      cells: 'covering',
      jobs: 1,
      timeoutMs: 1000,
      memoryMiB: 256,
      reportDir: '/nonexistent',
    }),
    (e: unknown) => e instanceof UsageError && /megaraid9000/.test(e.message) && /megasas/.test(e.hint ?? ''),
  )
})
