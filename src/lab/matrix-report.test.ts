import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { cellText, formatDuration, renderMatrixMarkdown, renderSideBySide, writeMatrixReport } from './matrix-report.js'
import type { CellResult } from './cell-results.js'
import type { MatrixResult } from './matrix.js'

const cells: CellResult[] = [
  {
    firmware: 'uefi-sb',
    storage: 'virtio-blk',
    nic: 'virtio-net-pci',
    id: 'uefi-sb--virtio-blk--virtio-net-pci',
    status: 'pass',
    seconds: 141.6,
    serialLog: 'cells/uefi-sb--virtio-blk--virtio-net-pci/serial.log',
  },
  {
    firmware: 'bios',
    storage: 'megasas',
    nic: 'e1000',
    id: 'bios--megasas--e1000',
    status: 'fail',
    seconds: 214.2,
    serialLog: 'cells/bios--megasas--e1000/serial.log',
    diagnosis: {
      code: 'root-device-missing',
      summary: 'The initramfs gave up waiting for the root device',
      evidence: 'Gave up waiting for root file system device.  Common problems:',
    },
  },
  {
    firmware: 'uefi',
    storage: 'megasas',
    nic: 'virtio-net-pci',
    id: 'uefi--megasas--virtio-net-pci',
    status: 'n/a',
    reason: 'OVMF has no MegaRAID SAS driver',
  },
  {
    firmware: 'uefi-sb',
    storage: 'megasas',
    nic: 'virtio-net-pci',
    id: 'uefi-sb--megasas--virtio-net-pci',
    status: 'n/a',
    reason: 'OVMF has no MegaRAID SAS driver',
  },
]

const result: MatrixResult = {
  image: {
    path: '/img/debian-12-cloud-amd64.img',
    name: 'debian-12-cloud-amd64',
    kernelFlavor: 'cloud',
    kernelVersion: '6.1.0-56-cloud-amd64',
  },
  mode: 'covering',
  firmwares: ['bios', 'uefi', 'uefi-sb'],
  storages: ['virtio-blk', 'megasas'],
  nics: ['virtio-net-pci', 'e1000'],
  jobs: 2,
  memoryMiB: 1024,
  timeoutSeconds: 900,
  started: '2026-11-25T21:00:00.000Z',
  seconds: 845,
  summary: { pass: 1, fail: 1, notApplicable: 2 },
  cells,
}

test('cellText() shows pass with its time, failure with its code, and links the console log', () => {
  assert.equal(cellText(cells[0]), 'pass 142 s [log](cells/uefi-sb--virtio-blk--virtio-net-pci/serial.log)')
  assert.equal(
    cellText(cells[1], '../lab/'),
    '**FAIL** root-device-missing 214 s [log](../lab/cells/bios--megasas--e1000/serial.log)',
  )
  assert.equal(cellText(cells[2]), 'n/a')
  assert.equal(cellText(undefined), '·')
})

test('renderMatrixMarkdown() lays out rows storage × NIC and columns firmware', () => {
  const md = renderMatrixMarkdown(result)
  assert.match(md, /^# Hardware lab: debian-12-cloud-amd64 \(cloud 6\.1\.0-56-cloud-amd64\)$/m)
  assert.match(md, /Covering set: 2 boots — 1 pass, 1 fail, 2 not applicable\. 14 min 5 s with 2 jobs/)
  const table = md.split('\n').filter((l) => l.startsWith('|'))
  assert.deepEqual(table.slice(0, 2), ['| storage | NIC | bios | uefi | uefi-sb |', '| --- | --- | --- | --- | --- |'])
  assert.equal(
    table[2],
    '| virtio-blk | virtio-net-pci | · | · | pass 142 s [log](cells/uefi-sb--virtio-blk--virtio-net-pci/serial.log) |',
  )
  assert.equal(table[3], '| megasas | virtio-net-pci | · | n/a | n/a |')
  assert.match(table[4]!, /^\| megasas \| e1000 \| \*\*FAIL\*\* root-device-missing 214 s/)
  assert.equal(table.length, 5, 'rows with no cell are left out')
})

test('renderMatrixMarkdown() explains each failure and groups non-applicable cells by reason', () => {
  const md = renderMatrixMarkdown(result)
  assert.match(
    md,
    /## Failures\n\n- \*\*bios · megasas · e1000\*\* — `root-device-missing`: The initramfs gave up waiting for the root device\. Console: `Gave up waiting for root file system device\. {2}Common problems:` \(\[log\]\(cells\/bios--megasas--e1000\/serial\.log\)\)/,
  )
  assert.match(md, /## Not applicable\n\n- uefi × megasas, uefi-sb × megasas: OVMF has no MegaRAID SAS driver\./)
})

test('renderMatrixMarkdown() marks a cell booted twice and keeps the first console log', () => {
  const again: CellResult = {
    ...cells[0]!,
    retried: {
      diagnosis: {
        code: 'kernel-panic',
        summary: 'The kernel panicked',
        evidence: "Kernel panic - not syncing: IO-APIC + timer doesn't work!",
      },
      serialLog: 'cells/x.attempt1/serial.log',
    },
  }
  assert.match(cellText(again), /^pass 142 s \(2nd boot\) \[log\]/)
  const md = renderMatrixMarkdown({ ...result, cells: [again] })
  assert.match(
    md,
    /## Booted twice\n\n.*\n\n- \*\*uefi-sb · virtio-blk · virtio-net-pci\*\* — first boot: `Kernel panic - not syncing: IO-APIC \+ timer doesn't work!` \(\[log\]\(cells\/x\.attempt1\/serial\.log\)\)/,
  )
})

test('renderSideBySide() puts runs next to each other, one column per run and firmware', () => {
  const md = renderSideBySide([
    { label: 'generic', result: { ...result, cells: [cells[0]!] } },
    { label: 'cloud', result, linkBase: 'cloud/' },
  ])
  const lines = md.trim().split('\n')
  assert.equal(
    lines[0],
    '| storage | NIC | generic bios | generic uefi | generic uefi-sb | cloud bios | cloud uefi | cloud uefi-sb |',
  )
  assert.match(
    lines[2]!,
    /^\| virtio-blk \| virtio-net-pci \| · \| · \| pass 142 s .* \| · \| · \| pass 142 s \[log\]\(cloud\/cells/,
  )
})

test('writeMatrixReport() writes report.json that reads back as the result, and report.md', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hwimage-report-'))
  try {
    const paths = await writeMatrixReport(dir, result)
    assert.deepEqual(JSON.parse(await readFile(paths.json, 'utf8')), result)
    assert.equal(await readFile(paths.page, 'utf8'), renderMatrixMarkdown(result))
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('formatDuration() shows minutes and seconds', () => {
  assert.equal(formatDuration(845), '14 min 5 s')
  assert.equal(formatDuration(42.4), '42 s')
})

test('renderMatrixMarkdown() says when a run was interrupted and how to finish it', () => {
  const md = renderMatrixMarkdown({ ...result, interrupted: { finished: 1, planned: 3 } })
  assert.match(md, /\*\*Interrupted\*\*: 1 of 3 boots finished; the same command with `--resume` boots the rest\./)
  assert.doesNotMatch(renderMatrixMarkdown(result), /Interrupted/)
})
