import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { allCells, coveringCells, type Cell, type MatrixAxes } from './covering.js'

const FIRMWARES = ['bios', 'uefi', 'uefi-sb'] as const
type Fw = (typeof FIRMWARES)[number]
const STORAGES = ['virtio-blk', 'virtio-scsi', 'ahci', 'nvme', 'megasas', 'mptsas1068']
const NICS = ['virtio-net-pci', 'e1000', 'e1000e', 'rtl8139']
// OVMF has no driver for MegaRAID or the SAS1068; SeaBIOS has both.
const designAxes: MatrixAxes<Fw> = {
  firmwares: FIRMWARES,
  storages: STORAGES,
  nics: NICS,
  applicable: (f, s) => f === 'bios' || (s !== 'megasas' && s !== 'mptsas1068'),
}

function assertCovers<F extends string>(cells: Cell<F>[], axes: MatrixAxes<F>): void {
  for (const c of cells) assert.ok(axes.applicable(c.firmware, c.storage), `${c.firmware} cannot boot ${c.storage}`)
  for (const f of axes.firmwares)
    if (axes.storages.some((s) => axes.applicable(f, s)))
      assert.ok(
        cells.some((c) => c.firmware === f),
        f,
      )
  for (const s of axes.storages)
    if (axes.firmwares.some((f) => axes.applicable(f, s)))
      assert.ok(
        cells.some((c) => c.storage === s),
        s,
      )
  if (cells.length > 0)
    for (const n of axes.nics)
      assert.ok(
        cells.some((c) => c.nic === n),
        n,
      )
}

/** The smallest covering size by brute force: max(NICs, minimum edge cover of the applicable pairs). */
function bruteForceSize(axes: MatrixAxes<string>): number {
  const pairs = axes.firmwares.flatMap((f) =>
    axes.storages.filter((s) => axes.applicable(f, s)).map((s) => [f, s] as const),
  )
  if (pairs.length === 0 || axes.nics.length === 0) return 0
  const needF = axes.firmwares.filter((f) => pairs.some(([pf]) => pf === f))
  const needS = axes.storages.filter((s) => pairs.some(([, ps]) => ps === s))
  let best = Infinity
  for (let mask = 1; mask < 1 << pairs.length; mask++) {
    const chosen = pairs.filter((_, i) => mask & (1 << i))
    if (chosen.length >= best) continue
    if (needF.every((f) => chosen.some(([pf]) => pf === f)) && needS.every((s) => chosen.some(([, ps]) => ps === s)))
      best = chosen.length
  }
  return Math.max(best, axes.nics.length)
}

test("coveringCells() covers the design's matrix in 6 applicable cells", () => {
  const cells = coveringCells(designAxes)
  assert.equal(cells.length, 6)
  assertCovers(cells, designAxes)
  assert.deepEqual(
    cells.filter((c) => c.storage === 'megasas' || c.storage === 'mptsas1068').map((c) => c.firmware),
    ['bios', 'bios'],
  )
})

test('coveringCells() is stable: the same axes give the same cells', () => {
  assert.deepEqual(coveringCells(designAxes), coveringCells(designAxes))
})

test('coveringCells() adds cells when there are more NICs than controller pairs', () => {
  const axes = { ...designAxes, storages: ['virtio-blk'], firmwares: ['bios'] as Fw[] }
  const cells = coveringCells(axes)
  assert.deepEqual(
    cells.map((c) => c.nic),
    NICS,
  )
  assert.ok(cells.every((c) => c.firmware === 'bios' && c.storage === 'virtio-blk'))
})

test('coveringCells() leaves out a controller no firmware can boot, and returns nothing when nothing applies', () => {
  const axes: MatrixAxes<Fw> = { ...designAxes, applicable: (f, s) => s !== 'megasas' && designAxes.applicable(f, s) }
  const cells = coveringCells(axes)
  assert.ok(!cells.some((c) => c.storage === 'megasas'))
  assertCovers(cells, axes)
  assert.deepEqual(coveringCells({ ...designAxes, applicable: () => false }), [])
})

test('allCells() lists every combination in axis order', () => {
  const cells = allCells(designAxes)
  assert.equal(cells.length, 3 * 6 * 4)
  assert.deepEqual(cells[0], { firmware: 'bios', storage: 'virtio-blk', nic: 'virtio-net-pci' })
  assert.deepEqual(cells.at(-1), { firmware: 'uefi-sb', storage: 'mptsas1068', nic: 'rtl8139' })
})

test('coveringCells() is minimal and covers every coverable value for any applicability', () => {
  const axesArb = fc
    .record({
      f: fc.integer({ min: 1, max: 3 }),
      s: fc.integer({ min: 1, max: 4 }),
      n: fc.integer({ min: 1, max: 5 }),
      bits: fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }),
    })
    .map(({ f, s, n, bits }) => {
      const firmwares = ['f0', 'f1', 'f2'].slice(0, f)
      const storages = ['s0', 's1', 's2', 's3'].slice(0, s)
      const nics = ['n0', 'n1', 'n2', 'n3', 'n4'].slice(0, n)
      const applicable = (fw: string, st: string) => bits[firmwares.indexOf(fw) * 4 + storages.indexOf(st)]!
      return { firmwares, storages, nics, applicable } as MatrixAxes<string>
    })
  fc.assert(
    fc.property(axesArb, (axes) => {
      const cells = coveringCells(axes)
      assertCovers(cells, axes)
      assert.equal(cells.length, bruteForceSize(axes))
    }),
    { numRuns: 300 },
  )
})
