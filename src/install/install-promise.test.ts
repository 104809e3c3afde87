// The installer's promise, step by step: a failure or an interrupt at every boundary of
// the executor's steps leaves no partition table (primary or backup); and the refusals
// found by trying it as a new user and as a hostile one (issue 12): the image onto itself,
// a file that is no disk image, a seed that does not fit, a checksums file that is not
// there — each refused with its code before anything is written.

import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { HwimageError } from '../errors.js'
import { parseSeed } from '../seed/seed-schema.js'
import { run } from '../tools/run.js'
import { garbageFile, makeFixtureImage, type FixtureImage } from './image.fixture.js'
import { install, planOfRefusal } from './install.js'
import { STEP_NAMES, type StepName } from './install-plan.js'
import { assertInstalled, assertNoTable, fileDigest } from './install.fixture.js'
import { seedStep } from './seed-partition.js'

const MiB = 1 << 20
const DISK = 64 * MiB
let dir: string
let fx: FixtureImage
let n = 0

before(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hwimage-promise-'))
  fx = await makeFixtureImage(dir, { formats: ['zst'] })
})
after(async () => {
  await fsp.rm(dir, { recursive: true, force: true })
})

async function target(size = DISK): Promise<string> {
  const file = path.join(dir, `disk-${++n}.raw`)
  await garbageFile(file, size, n)
  return file
}

const code = (c: string, re?: RegExp) => (e: unknown) =>
  e instanceof HwimageError && e.code === c && (!re || re.test(e.message))
const seed = () => seedStep(parseSeed('hostname: metal-01\n', 'seed.yaml'))

// Every step of an install with a seed and --verify, the longest plan.
const ALL: StepName[] = [
  'zero-ends',
  'write-image',
  'check-source',
  'finish-table',
  'add-seed',
  'write-first-mib',
  'read-back',
]

test('the plan lists the steps the executor runs, and each announces itself', async () => {
  const disk = await target()
  const steps: StepName[] = []
  const r = await install({ source: fx.zst, disk, seed: seed(), verify: true, onStep: (s) => void steps.push(s) })
  assert.deepEqual(r.steps, ALL)
  assert.deepEqual(steps, ALL)
  assert.ok(ALL.every((s) => STEP_NAMES.includes(s)))
})

test('a failure before the first step leaves the target as it was: nothing was written', async () => {
  const disk = await target()
  const before = await fileDigest(disk)
  await assert.rejects(
    install({
      source: fx.zst,
      disk,
      onStep: () => {
        throw new HwimageError('DEVICE_IO', 'injected')
      },
    }),
    (e) => code('DEVICE_IO')(e) && !/zeroed/.test((e as Error).message),
  )
  assert.equal(await fileDigest(disk), before)
})

for (const step of ALL.slice(1)) {
  test(`a failure as step "${step}" begins leaves neither the primary nor the backup GPT, and names its step's error`, async () => {
    const disk = await target()
    await assert.rejects(
      install({
        source: fx.zst,
        disk,
        seed: seed(),
        verify: true,
        onStep: (s) => {
          if (s === step) throw new HwimageError('DEVICE_IO', `injected before ${s}`)
        },
      }),
      code('DEVICE_IO', /injected before .*first and last MiB .* are zeroed/),
    )
    await assertNoTable(disk)
    // sgdisk rebuilds a table from a backup header when the primary is gone: there must be none.
    const v = await run(['sgdisk', '-v', disk], { okStatus: [0, 2, 3] })
    assert.doesNotMatch(v.stdout + v.stderr, /Caution: invalid main GPT header, but valid backup/i)
  })

  test(`an interrupt as step "${step}" begins ends in INTERRUPTED with both ends zeroed`, async () => {
    const disk = await target()
    const ac = new AbortController()
    await assert.rejects(
      install({
        source: fx.zst,
        disk,
        seed: seed(),
        verify: true,
        signal: ac.signal,
        onStep: (s) => void (s === step && ac.abort()),
      }),
      code('INTERRUPTED', /first and last MiB .* are zeroed/),
    )
    await assertNoTable(disk)
  })
}

test('a late failure (after the backup table was written) used to leave a valid backup GPT: now none', async () => {
  // Issue 12 item 3: sgdisk regenerated the main header from the backup, inspect said "UEFI yes".
  const disk = await target()
  await assert.rejects(
    install({
      source: fx.zst,
      disk,
      onStep: (s) => {
        if (s === 'write-first-mib') throw new Error('power cut')
      },
    }),
    /power cut/,
  )
  const sigs = JSON.parse((await run(['wipefs', '--no-act', '--json', disk])).stdout || '{"signatures":[]}') as {
    signatures: unknown[]
  }
  assert.deepEqual(sigs.signatures, [], 'wipefs sees nothing at either end')
})

test('an image installed onto itself is refused before anything is written (it used to be punched to 1 MiB)', async () => {
  const copy = path.join(dir, `self-${++n}.img`)
  await fsp.copyFile(fx.img, copy)
  const before = await fileDigest(copy)
  await assert.rejects(
    install({ source: copy, disk: copy, yes: true }),
    (e) => code('TARGET_INVALID', /is the source file itself/)(e) && (e as HwimageError).exitCode === 2,
  )
  // The dry run exits as the install would, after showing its plan.
  const refused = await install({ source: copy, disk: copy, dryRun: true }).catch((e: unknown) => e)
  assert.ok(code('TARGET_INVALID')(refused))
  assert.equal(planOfRefusal(refused)?.refused?.code, 'TARGET_INVALID')
  // A hard link is the same inode under another name.
  const link = path.join(dir, `self-link-${n}.img`)
  await fsp.link(copy, link)
  await assert.rejects(install({ source: copy, disk: link, yes: true }), code('TARGET_INVALID'))
  assert.equal(await fileDigest(copy), before, 'the image is untouched')
})

test('a file that is no disk image is refused as FORMAT_IMAGE naming what it is; --raw writes it anyway', async () => {
  const json = path.join(dir, 'inventory.json')
  await fsp.writeFile(
    json,
    JSON.stringify({ machines: Array.from({ length: 800 }, (_, i) => ({ name: `m${i}`, mac: '52:54:00:12:34:56' })) }),
  )
  const disk = await target()
  const before = await fileDigest(disk)
  await assert.rejects(
    install({ source: json, disk }),
    (e) => code('FORMAT_IMAGE', /JSON text \(it starts "\{"machines"/)(e) && (e as HwimageError).exitCode === 2,
  )
  await run(['gzip', '-k', '-f', json])
  await assert.rejects(install({ source: `${json}.gz`, disk }), code('FORMAT_IMAGE', /its gzip content is JSON text/))
  const elf = process.execPath
  await assert.rejects(install({ source: elf, disk }), code('FORMAT_IMAGE', /ELF/))
  assert.equal(await fileDigest(disk), before, 'nothing was written')
  // A file system made on a whole disk is a disk image; an odd size is not.
  const odd = path.join(dir, 'odd.img')
  await fsp.copyFile(fx.img, odd)
  await fsp.appendFile(odd, Buffer.alloc(100, 1))
  await assert.rejects(
    install({ source: odd, disk, bmap: false }),
    code('FORMAT_IMAGE', /not a whole number of 512-byte sectors/),
  )
  const r = await install({ source: json, disk, raw: true })
  assert.equal(r.bytes.image, (await fsp.stat(json)).size)
})

test('a disk with room for the image but not the seed is refused before the first write (it used to be refused after the image was written)', async () => {
  // The image is 24 MiB; the seed needs 16 MiB more at the end, plus the backup GPT.
  const disk = await target(fx.size + 8 * MiB)
  const before = await fileDigest(disk)
  await assert.rejects(install({ source: fx.zst, disk, seed: seed() }), code('TARGET_TOO_SMALL', /seed partition/))
  assert.equal(await fileDigest(disk), before, 'the old content is intact')
  const refused = await install({ source: fx.zst, disk, seed: seed(), dryRun: true }).catch((e: unknown) => e)
  assert.ok(code('TARGET_TOO_SMALL')(refused), 'the dry run refuses too')
  // With room, the seed is where the plan said.
  const big = await target()
  const r = await install({ source: fx.zst, disk: big, seed: seed() })
  assert.equal(r.seed!.offset + r.seed!.sizeBytes, DISK - MiB)
  await assertInstalled(big, fx, DISK, dir)
})

test('--sha256-url naming a missing file is NOT_FOUND (exit 2), not INTERNAL', async () => {
  const disk = await target()
  await assert.rejects(
    install({ source: fx.zst, disk, sha256Url: path.join(dir, 'nope', 'SHA256SUMS') }),
    (e) => code('NOT_FOUND', /checksums file .* no such file/)(e) && (e as HwimageError).exitCode === 2,
  )
  await assert.rejects(install({ source: fx.zst, disk, sha256Url: dir }), code('USAGE', /is a directory/))
})

test('the dry run names every signature the install would destroy', async () => {
  const disk = await target()
  await install({ source: fx.zst, disk })
  const plan = await install({ source: fx.zst, disk, dryRun: true })
  const types = plan.target.signatures.map((s) => s.type).sort()
  assert.deepEqual(types, ['PMBR', 'gpt', 'gpt'])
})
