// The hardware lab on the shared test image: `hwimage test` installs the image with a
// seed partition onto a fresh disk per cell and boots the covering set (every
// firmware, storage controller and NIC of the design at least once, at most 6 boots,
// 2 at a time); every cell must pass — its first-boot report arrived over its NIC. mptsas1068 is an emulation gap (QEMU 7.2 shows Linux no disks on it) and
// is listed as not applicable with that reason instead of booted. On the `cloud` kernel
// flavor build (HWIMAGE_TEST_CLOUD_IMAGE_DIR, made by `make test`), a cell meant to fail
// must fail with the right diagnosis: no AHCI driver in the cloud
// kernel, so the initramfs gives up waiting for the root device.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, access } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { run } from '../../src/tools/run.js'
import type { MatrixResult } from '../../src/lab/matrix.js'
import { CLI, testImage } from './fixture.js'

const image = testImage()
const FIRMWARES = ['bios', 'uefi', 'uefi-sb']
const STORAGES = ['virtio-blk', 'virtio-scsi', 'ahci', 'nvme', 'megasas', 'mptsas1068']
const NICS = ['virtio-net-pci', 'e1000', 'e1000e', 'rtl8139']

test('the covering set of the default image passes: every firmware, controller and NIC reported back', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hwimage-lab-'))
  const r = await run(
    [CLI, 'test', image.dir, '--cells', 'covering', '--jobs', '2', '--timeout', '900', '--report', dir, '--json'],
    { okStatus: [0, 1] },
  )
  const result = JSON.parse(r.stdout) as MatrixResult & { reportPage: string }
  const failures = result.cells
    .filter((c) => c.status === 'fail')
    .map((c) => `${c.id}: ${c.diagnosis?.code} ${c.diagnosis?.summary} (${join(dir, c.serialLog ?? '')})`)
  assert.deepEqual(failures, [], 'no cell failed')
  assert.equal(r.status, 0)
  const boots = result.cells.filter((c) => c.status !== 'n/a')
  assert.ok(boots.length <= 6, `at most 6 boots (got ${boots.length})`)
  for (const f of FIRMWARES)
    assert.ok(
      boots.some((c) => c.firmware === f),
      `firmware ${f} covered`,
    )
  for (const s of STORAGES) {
    // A device QEMU cannot emulate for Linux (mptsas1068) is listed, with its reason, instead of booted.
    const na = result.cells.filter((c) => c.storage === s && c.status === 'n/a')
    assert.ok(
      boots.some((c) => c.storage === s) || (na.length > 0 && na.every((c) => /QEMU/.test(c.reason ?? ''))),
      `storage ${s} covered`,
    )
  }
  for (const n of NICS)
    assert.ok(
      boots.some((c) => c.nic === n),
      `NIC ${n} covered`,
    )
  for (const c of boots) {
    assert.equal(c.status, 'pass', c.id)
    const report = c.report as { event?: string; hostname?: string; cloud_init?: { status?: string } }
    assert.equal(report.event, 'first-boot', `${c.id}: the first-boot report arrived`)
    assert.match(report.hostname ?? '', /^lab-\d+$/, `${c.id}: the seed's hostname was set`)
    if (c.firmware === 'uefi-sb') assert.equal(c.secureBoot, 'enabled', `${c.id}: Secure Boot enabled`)
    // cloud-init read the seed from the installed seed partition and grew root up to it.
    assert.match(
      (report as { cloud_init?: { datasource?: string } }).cloud_init?.datasource ?? '',
      /DataSourceNoCloud \[seed=\/dev\/\w+\]/,
    )
    assert.ok((c.rootBytes ?? 0) > 7 * 1024 ** 3, `${c.id}: root grew on the 8 GiB disk (got ${c.rootBytes})`)
    await access(join(dir, c.serialLog!))
  }
  // OVMF cannot boot from MegaRAID: the covering set boots megasas under SeaBIOS.
  assert.ok(boots.filter((c) => c.storage === 'megasas').every((c) => c.firmware === 'bios'))
  const page = await readFile(result.reportPage, 'utf8')
  assert.match(page, /^\| storage \| NIC \| bios \| uefi \| uefi-sb \|$/m)
  await rm(dir, { recursive: true, force: true }) // kept on failure, for the console logs
})

test('the cloud kernel flavor on AHCI fails with the missing root device diagnosed', async () => {
  const cloud = process.env.HWIMAGE_TEST_CLOUD_IMAGE_DIR
  // Never skipped: `make test` builds this image (tests/integration/cloud-spec.yaml).
  assert.ok(
    cloud && existsSync(join(cloud, 'manifest.json')),
    'HWIMAGE_TEST_CLOUD_IMAGE_DIR names a cloud-flavor build (run the integration tier through `make test`)',
  )
  const dir = await mkdtemp(join(tmpdir(), 'hwimage-lab-cloud-'))
  const r = await run(
    [
      CLI,
      'test',
      cloud,
      '--firmware',
      'bios',
      '--storage',
      'ahci',
      '--nic',
      'virtio-net-pci',
      '--jobs',
      '1',
      '--timeout',
      '900',
      '--report',
      dir,
      '--json',
    ],
    { okStatus: [0, 1] },
  )
  assert.equal(r.status, 1, 'the run fails')
  const result = JSON.parse(r.stdout) as MatrixResult
  assert.equal(result.cells.length, 1)
  const cell = result.cells[0]!
  assert.equal(cell.status, 'fail')
  assert.equal(cell.diagnosis?.code, 'root-device-missing')
  assert.match(cell.diagnosis?.evidence ?? '', /Gave up waiting for root|ALERT! .* does not exist/)
  await rm(dir, { recursive: true, force: true })
})
