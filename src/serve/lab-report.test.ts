import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { labGrid, MAX_LAB_REPORT_BYTES, readLabGrid } from './lab-report.js'

// Two real runs of the lab, kept in the docs (docs/hardware-lab.md): the generic and the cloud kernel.
const GENERIC = new URL('../../docs/lab/generic/report.json', import.meta.url)
const CLOUD = new URL('../../docs/lab/cloud/report.json', import.meta.url)
let dir: string

before(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hwimage-lab-report-'))
})
after(async () => {
  await fsp.rm(dir, { recursive: true, force: true })
})

test("labGrid(): the axes, the summary and every cell of a real report, without consoles, milestones or the machine's report", async () => {
  const text = await fsp.readFile(GENERIC, 'utf8')
  const full = JSON.parse(text) as { cells: unknown[]; summary: unknown }
  const g = labGrid(text)
  assert.deepEqual(g.firmwares, ['bios', 'uefi', 'uefi-sb'])
  assert.equal(g.cells.length, full.cells.length)
  assert.equal(g.cells.length, g.firmwares.length * g.storages.length * g.nics.length)
  assert.deepEqual(g.summary, full.summary)
  assert.equal(g.image.kernelFlavor, 'generic')
  const cell = g.cells.find((c) => c.firmware === 'bios' && c.storage === 'virtio-blk' && c.nic === 'virtio-net-pci')!
  assert.equal(cell.status, 'pass')
  assert.ok(!('milestones' in cell) && !('report' in cell) && !('serialLog' in cell))
  assert.ok(JSON.stringify(g).length < text.length / 5, 'a fraction of the report')
})

test('labGrid(): a failed cell keeps its diagnosis, code and summary (the cloud kernel without network drivers)', async () => {
  const g = labGrid(await fsp.readFile(CLOUD, 'utf8'))
  const failed = g.cells.filter((c) => c.status === 'fail')
  assert.ok(failed.length > 0)
  assert.ok(failed.every((c) => c.diagnosis?.code && c.diagnosis.summary))
  assert.equal(failed.length, g.summary.fail)
})

test('readLabGrid(): null without a report; a corrupt, foreign or oversized one is said, not thrown', async () => {
  assert.deepEqual(await readLabGrid(dir), { lab: null })
  await fsp.mkdir(path.join(dir, 'lab-report'))
  const file = path.join(dir, 'lab-report', 'report.json')
  await fsp.writeFile(file, '{"firmwares": [')
  assert.match((await readLabGrid(dir)).error!, /^Cannot read the lab report: /)
  await fsp.writeFile(file, JSON.stringify({ firmwares: ['bios'], storages: 'ahci', nics: [], cells: [] }))
  assert.match((await readLabGrid(dir)).error!, /not a `hwimage test` report\.json/)
  const fh = await fsp.open(file, 'w')
  await fh.truncate(MAX_LAB_REPORT_BYTES + 1)
  await fh.close()
  assert.match((await readLabGrid(dir)).error!, /the limit is/)
  await fsp.copyFile(CLOUD, file)
  assert.equal((await readLabGrid(dir)).lab?.image.kernelFlavor, 'cloud')
})
