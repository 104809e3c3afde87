import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, test } from 'node:test'
import { spawnCli } from '../cli.fixture.js'
import { garbageFile, makeFixtureImage, type FixtureImage } from '../../install/image.fixture.js'
import { assertNoTable, assertInstalled, fileDigest } from '../../install/install.fixture.js'

const MiB = 1 << 20
const DISK = 64 * MiB
let dir: string
let fx: FixtureImage
let n = 0

before(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hwimage-cli-install-'))
  fx = await makeFixtureImage(dir, { formats: ['zst'] })
})
after(async () => {
  await fsp.rm(dir, { recursive: true, force: true })
})

async function target(): Promise<string> {
  const file = path.join(dir, `disk-${++n}.raw`)
  await garbageFile(file, DISK, n)
  return file
}

const events = (stderr: string): Array<Record<string, unknown>> =>
  stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)

test('hwimage install --json prints JSON-lines events on stderr and one JSON report on stdout', async () => {
  const disk = await target()
  const { child, done } = hwimage(['install', fx.zst, '--disk', disk, '--json', '--verify'])
  child.stdin!.end()
  const r = await done
  assert.equal(r.status, 0, r.stderr)
  const names = events(r.stderr).map((e) => e.event)
  assert.equal(names[0], 'start')
  assert.ok(names.includes('verified'))
  assert.equal(names[names.length - 1], 'done')
  const report = JSON.parse(r.stdout) as {
    source: { format: string }
    bytes: { written: number; skipped: number; read: number }
    target: { sectorSize: number }
    seconds: Record<string, number>
    digests: { source: string }
  }
  assert.equal(report.source.format, 'zstd')
  assert.equal(report.target.sectorSize, 512)
  assert.ok(report.bytes.written > 0 && report.bytes.skipped > 0 && report.bytes.read > 0)
  for (const stage of ['prepare', 'zero', 'write', 'sync', 'finish', 'verify', 'total'])
    assert.equal(typeof report.seconds[stage], 'number')
  await assertInstalled(disk, fx, DISK, dir)
})

test('hwimage install --dry-run prints the plan and writes nothing', async () => {
  const disk = await target()
  const before = await fileDigest(disk)
  const { child, done } = hwimage(['install', fx.zst, '--disk', disk, '--dry-run'])
  child.stdin!.end()
  const r = await done
  assert.equal(r.status, 0, r.stderr)
  assert.match(r.stdout, /^plan: {4}write the mapped ranges/m)
  assert.match(r.stdout, /move the backup GPT to the end of the disk/)
  assert.equal(await fileDigest(disk), before)
})

test('hwimage install without a target, or with --bmap and --no-bmap, is a usage error (exit 2)', async () => {
  for (const args of [
    ['install', fx.zst],
    ['install', fx.zst, '--disk', '/x', '--bmap', fx.bmap, '--no-bmap'],
  ]) {
    const { child, done } = hwimage([...args, '--json'])
    child.stdin!.end()
    const r = await done
    assert.equal(r.status, 2)
    assert.equal(events(r.stderr).pop()!.code, 'USAGE')
  }
})

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  test(`${signal} during the write stops cleanly: exit 130, an INTERRUPTED error event, the first MiB zeroed`, async () => {
    const disk = await target()
    const { child, done } = hwimage(['install', '-', '--disk', disk, '--no-bmap', '--json'])
    // A raw image through stdin, of which only part ever arrives: the install is mid-write when the signal comes.
    const raw = await fsp.readFile(fx.img)
    // The killed child stops reading: the unwritten rest of this chunk gets EPIPE, which is expected.
    child.stdin!.on('error', () => {})
    child.stdin!.write(raw.subarray(0, 10 * MiB))
    let stderr = ''
    await new Promise<void>((resolve) => {
      child.stderr!.on('data', (b: Buffer) => {
        stderr += b
        if (stderr.includes('"event":"start"')) resolve()
      })
    })
    await new Promise((r) => setTimeout(r, 300))
    child.kill(signal)
    const r = await done
    child.stdin!.destroy()
    assert.equal(r.status, 130, r.stderr)
    const last = events(r.stderr).pop()!
    assert.equal(last.event, 'error')
    assert.equal(last.code, 'INTERRUPTED')
    assert.match(String(last.message), /first and last MiB .* are zeroed/)
    await assertNoTable(disk)
  })
}

test('hwimage install --dry-run exits as the install would: the plan on stdout with REFUSED, the error on stderr, exit 2', async () => {
  const copy = path.join(dir, `self-${++n}.img`)
  await fsp.copyFile(fx.img, copy)
  const { child, done } = hwimage(['install', copy, '--disk', copy, '--dry-run'])
  child.stdin!.end()
  const r = await done
  assert.equal(r.status, 2, r.stderr)
  assert.match(r.stdout, /^REFUSED: Cannot install .* is the source file itself/m)
  assert.match(r.stdout, /^steps: {3}zero-ends → zero-span → write-image/m)
  assert.match(r.stderr, /error\[TARGET_INVALID\]/)
  const j = hwimage(['install', copy, '--disk', copy, '--dry-run', '--json'])
  j.child.stdin!.end()
  const rj = await j.done
  assert.equal(rj.status, 2)
  assert.equal((JSON.parse(rj.stdout) as { refused: { code: string } }).refused.code, 'TARGET_INVALID')
  assert.equal(events(rj.stderr).at(-1)!.code, 'TARGET_INVALID')
})

test('hwimage install of a file that is no disk image is FORMAT_IMAGE (exit 2); --raw writes it', async () => {
  const notes = path.join(dir, 'notes.txt')
  await fsp.writeFile(notes, 'these are my notes\n'.repeat(100))
  const disk = await target()
  const refused = hwimage(['install', notes, '--disk', disk])
  refused.child.stdin!.end()
  const r = await refused.done
  assert.equal(r.status, 2)
  assert.match(
    r.stderr,
    /error\[FORMAT_IMAGE\]: Cannot install .*: it does not look like a disk image: text \(it starts "these are my notes/,
  )
  assert.match(r.stderr, /hint: .*--raw/)
  const forced = hwimage(['install', notes, '--disk', disk, '--raw'])
  forced.child.stdin!.end()
  assert.equal((await forced.done).status, 0)
})

/** Runs `hwimage ARGS` with stdin a pipe (the tests end it). */
function hwimage(args: string[]) {
  return spawnCli(args, { stdin: 'pipe' })
}
