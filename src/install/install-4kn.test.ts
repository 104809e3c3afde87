// A 512-byte-sector image installed onto a disk with 4096-byte logical sectors (a loop
// device made with `losetup --sector-size 4096` over a sparse file): the GPT re-encoded in
// 4 KiB LBAs with the partitions at the same bytes, the ESP's and the seed's FAT made with
// 4 KiB sectors and the same files, ext4 untouched; BIOS boot refused without --uefi-only;
// a failure at any step, or inside the conversion, leaves no partition table.

import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { decodeFatBootSector } from '../disk/fat.js'
import { decodeGpt } from '../disk/gpt.js'
import { HwimageError } from '../errors.js'
import { parseSeed } from '../seed/seed-schema.js'
import { mcopyIn, mcopyOut } from '../tools/mtools.js'
import { run } from '../tools/run.js'
import { makeFixtureImage, type FixtureImage } from './image.fixture.js'
import { install, planOfRefusal } from './install.js'
import { assertNoTable, readBytes } from './install.fixture.js'
import { formatPlan, formatReport } from './install-report.js'
import { seedStep } from './seed-partition.js'

const MiB = 1 << 20
const DISK = 64 * MiB
let dir: string
let fx: FixtureImage
let n = 0
const loops: string[] = []

before(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hwimage-4kn-'))
  fx = await makeFixtureImage(dir, { formats: ['zst'], espFiles: true })
})
after(async () => {
  for (const dev of loops) await run(['losetup', '--detach', dev], { okStatus: [0, 1] })
  await fsp.rm(dir, { recursive: true, force: true })
})

/** A 4Kn disk: a loop device with 4096-byte logical sectors over a sparse file holding old garbage at both ends. */
async function disk4kn(size = DISK): Promise<string> {
  const file = path.join(dir, `disk-${++n}.raw`)
  await fsp.writeFile(file, new Uint8Array(0))
  await fsp.truncate(file, size)
  const fh = await fsp.open(file, 'r+')
  const junk = Buffer.alloc(MiB, 0x5a)
  await fh.write(junk, 0, MiB, 0)
  await fh.write(junk, 0, MiB, size - MiB)
  await fh.close()
  const dev = (await run(['losetup', '--find', '--show', '--sector-size', '4096', file])).stdout.trim()
  loops.push(dev)
  return dev
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex')
const code = (c: string, re?: RegExp) => (e: unknown) =>
  e instanceof HwimageError && e.code === c && (!re || re.test(e.message))
const seed = () => seedStep(parseSeed('hostname: metal-4kn\n', 'seed.yaml'))

/** Every file under `root` (relative path → SHA-256), directories as "dir/". */
async function tree(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const e of await fsp.readdir(root, { withFileTypes: true, recursive: true })) {
    const full = path.join(e.parentPath, e.name)
    const rel = path.relative(root, full)
    out[e.isDirectory() ? `${rel}/` : rel] = e.isDirectory() ? '' : sha(await fsp.readFile(full))
  }
  return out
}

/** A FAT volume's byte range copied out of a disk: fsck.vfat -n must be clean; returns its boot sector and files. */
async function fatOf(disk: string, offset: number, length: number, name: string) {
  const copy = path.join(dir, `${name}-${++n}.vfat`)
  await fsp.writeFile(copy, await readBytes(disk, offset, length))
  const fsck = await run(['fsck.vfat', '-n', copy], { okStatus: [0, 1] })
  assert.equal(fsck.status, 0, `fsck.vfat -n on ${name}: ${fsck.stdout}${fsck.stderr}`)
  assert.doesNotMatch(fsck.stdout, /warning|differ|fix/i, `fsck.vfat -n on ${name}: ${fsck.stdout}`)
  const files = path.join(dir, `${name}-${n}-files`)
  await fsp.mkdir(files)
  await mcopyOut(copy, 0, files)
  const rootLabel = (await run(['mlabel', '-s', '-i', copy, '::'], { env: { MTOOLS_SKIP_CHECK: '1' } })).stdout
  return { boot: decodeFatBootSector(await readBytes(copy, 0, 4096)), files: await tree(files), rootLabel }
}

test('a 512-byte image onto a 4Kn disk (--uefi-only, with a seed, --verify): GPT in 4 KiB LBAs, same bytes, ESP and seed FAT with 4 KiB sectors', async () => {
  const dev = await disk4kn()
  const events: string[] = []
  const r = await install({
    source: fx.zst,
    disk: dev,
    yes: true,
    uefiOnly: true,
    seed: seed(),
    verify: true,
    onEvent: (name) => void events.push(name),
  })
  assert.deepEqual(r.steps, [
    'zero-ends',
    'write-image',
    'check-source',
    'convert-fat',
    'finish-table',
    'add-seed',
    'write-first-mib',
    'read-back',
  ])
  assert.ok(events.includes('converted'))

  // The table: clean to sgdisk, in 4 KiB LBAs, the image's partitions at the same bytes.
  const v = await run(['sgdisk', '-v', dev])
  assert.match(v.stdout, /No problems found/, v.stdout)
  const sf = JSON.parse((await run(['sfdisk', '--json', dev])).stdout) as {
    partitiontable: { sectorsize: number; partitions: Array<{ start: number; size: number }> }
  }
  assert.equal(sf.partitiontable.sectorsize, 4096, 'sfdisk reads the table in 4096-byte sectors')
  const head = await readBytes(dev, 0, MiB)
  const tail = await readBytes(dev, DISK - MiB, MiB)
  const got = decodeGpt(head, tail, BigInt(DISK), 4096)
  assert.ok(got.primaryOk && got.backupOk, 'both 4Kn GPT copies are valid')
  assert.deepEqual(got.problems, [])
  assert.equal(got.gpt.lastUsableLba, BigInt(DISK / 4096 - 6), 'the usable space reaches the end of the disk')
  for (const p of fx.gpt.partitions) {
    const q = got.gpt.partitions.find((x) => x.number === p.number)!
    assert.equal(Number(q.firstLba) * 4096, Number(p.firstLba) * 512, `partition ${p.number} starts at the same byte`)
    assert.equal(
      Number(q.lastLba + 1n) * 4096,
      Number(p.lastLba + 1n) * 512,
      `partition ${p.number} ends at the same byte`,
    )
    assert.equal(q.uniqueGuid, p.uniqueGuid)
    assert.equal(q.name, p.name)
  }
  assert.equal(got.gpt.diskGuid, fx.gpt.diskGuid)
  assert.ok(
    !head.subarray(512, 520).equals(Buffer.from('EFI PART')),
    "the image's 512-byte table is not left at byte 512",
  )
  assert.deepEqual(head.subarray(0, 440), Buffer.from(fx.bootCode), 'MBR boot code kept (--uefi-only: unused)')
  assert.ok(
    (await readBytes(dev, fx.biosBoot.offset, 65536)).equals(await readBytes(fx.img, fx.biosBoot.offset, 65536)),
    'the BIOS boot partition is kept as the image has it',
  )

  // ext4 root: byte-identical to the image's.
  assert.equal(
    sha(await readBytes(dev, fx.root.offset, fx.root.length)),
    sha(await readBytes(fx.img, fx.root.offset, fx.root.length)),
    'the root file system is byte-identical',
  )
  const e2 = path.join(dir, 'root.ext4')
  await fsp.writeFile(e2, await readBytes(dev, fx.root.offset, fx.root.length))
  await run(['e2fsck', '-fn', e2])

  // ESP: 4 KiB sectors, same id, label and files as the image's FAT.
  const esp = await fatOf(dev, fx.esp.offset, fx.esp.length, 'esp')
  assert.equal(esp.boot.bytesPerSector, 4096)
  assert.equal(esp.boot.volumeId, '1A2B3C4D')
  assert.equal(esp.boot.label, 'ESP')
  const imageEsp = path.join(dir, 'image-esp')
  await fsp.mkdir(imageEsp)
  await mcopyOut(fx.img, fx.esp.offset, imageEsp)
  const want = await tree(imageEsp)
  assert.ok(Object.keys(want).length >= 6, `the fixture's ESP has files: ${Object.keys(want).join(' ')}`)
  assert.deepEqual(esp.files, want, "the ESP's files are the image's")
  assert.match(esp.rootLabel, /Volume label is ESP\b/, 'the root directory carries the label too')

  // Seed: the FAT the seed step made, with the disk's sector size.
  assert.ok(r.seed)
  const seedFat = await fatOf(dev, r.seed.offset, r.seed.sizeBytes, 'seed')
  assert.equal(seedFat.boot.bytesPerSector, 4096)
  assert.equal(seedFat.boot.label, 'CIDATA')
  assert.ok('meta-data' in seedFat.files && 'user-data' in seedFat.files, Object.keys(seedFat.files).join(' '))
  assert.equal(r.seed.offset % MiB, 0)

  // The report says what was converted.
  const c = r.sectorConversion!
  assert.equal(c.from, 512)
  assert.equal(c.to, 4096)
  assert.deepEqual(c.biosBootKept, { partition: 14, bootCode: true })
  assert.equal(c.converted?.length, 1)
  const f = c.converted![0]!
  assert.equal(f.partition, 15)
  assert.equal(f.from.bytesPerSector, 512)
  assert.equal(f.to.bytesPerSector, 4096)
  assert.equal(f.files, Object.values(want).filter((x) => x !== '').length)
  assert.match(formatReport(r), /converted for 4096-byte sectors: GPT re-encoded in 4096-byte LBAs; partition 15 FAT/)
  assert.ok(r.readBack && r.readBack.bytes > fx.esp.length, 'the new ESP was read back')
})

test('a dry run shows the conversion in the plan and writes nothing', async () => {
  const dev = await disk4kn()
  const before = sha(await readBytes(dev, 0, DISK))
  const plan = await install({ source: fx.zst, disk: dev, dryRun: true, uefiOnly: true })
  assert.ok(plan.steps.includes('convert-fat'))
  assert.equal(plan.sectorConversion?.fat[0]?.partition, 15)
  assert.equal(plan.gptResize?.diskSectors, String(DISK / 4096))
  const text = formatPlan(plan)
  assert.match(text, /convert for 4096-byte sectors: the GPT re-encoded in 4096-byte LBAs/)
  assert.match(text, /make partition 15 "esp"'s FAT again with 4096-byte sectors/)
  assert.match(text, /UEFI boot only: BIOS boot partition 14 and MBR boot code kept, unused/)
  assert.equal(sha(await readBytes(dev, 0, DISK)), before)
})

test('an image that boots by BIOS is refused on a 4Kn disk without --uefi-only, before anything is written', async () => {
  const dev = await disk4kn()
  const before = sha(await readBytes(dev, 0, DISK))
  await assert.rejects(
    install({ source: fx.zst, disk: dev, yes: true }),
    (e: unknown) =>
      code(
        'SECTOR_SIZE_MISMATCH',
        /for BIOS boot: .*boots by BIOS \(its BIOS boot partition 14, its MBR boot code\), which cannot boot/,
      )(e) && /--uefi-only/.test((e as HwimageError).hint ?? ''),
  )
  assert.equal(sha(await readBytes(dev, 0, DISK)), before)
  // The dry run shows the conversion it would do, then stops on the same refusal.
  const err = await install({ source: fx.zst, disk: dev, dryRun: true }).catch((e: unknown) => e)
  assert.ok(code('SECTOR_SIZE_MISMATCH')(err))
  const plan = planOfRefusal(err)
  assert.equal(plan?.refused?.code, 'SECTOR_SIZE_MISMATCH')
  assert.equal(plan?.sectorConversion?.uefiOnly, false)
})

for (const step of [
  'write-image',
  'check-source',
  'convert-fat',
  'finish-table',
  'add-seed',
  'write-first-mib',
] as const) {
  test(`on a 4Kn disk a failure as step "${step}" begins leaves no partition table`, async () => {
    const dev = await disk4kn()
    await assert.rejects(
      install({
        source: fx.zst,
        disk: dev,
        yes: true,
        uefiOnly: true,
        seed: seed(),
        onStep: (s) => {
          if (s === step) throw new HwimageError('DEVICE_IO', `injected before ${s}`)
        },
      }),
      code('DEVICE_IO', /injected before .*first and last MiB .* are zeroed/),
    )
    await assertNoTable(dev)
  })
}

test('an ESP too full for 4 KiB clusters fails inside the conversion with TARGET_TOO_SMALL, and leaves no table', async () => {
  // 1500 one-byte files: 2 KiB clusters in the image's 4 MiB FAT (3 MiB), 4 KiB each on 4Kn (6 MiB).
  const full = await makeFixtureImage(dir, { name: 'full', formats: [], espMiB: 4 })
  const files = path.join(dir, 'many')
  await fsp.mkdir(path.join(files, 'many'), { recursive: true })
  for (let i = 0; i < 1500; i++) await fsp.writeFile(path.join(files, 'many', `f${i}`), 'x')
  await mcopyIn(full.img, full.esp.offset, [path.join(files, 'many')])
  const dev = await disk4kn()
  await assert.rejects(
    install({ source: full.img, bmap: false, disk: dev, yes: true, uefiOnly: true }),
    code('TARGET_TOO_SMALL', /Cannot convert partition 15 "esp" for 4096-byte sectors: its 1500 files .* do not fit/),
  )
  await assertNoTable(dev)
})
