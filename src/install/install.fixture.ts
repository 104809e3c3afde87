// Checks shared by the installer's tests: is a disk (file) a sane, bootable-looking copy of
// a fixture image on a bigger disk, and is its first MiB zeroed after a failure.

import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { decodeGpt } from '../disk/gpt.js'
import { run } from '../tools/run.js'
import type { FixtureImage } from './image.fixture.js'

const MiB = 1 << 20

/** Reads `length` bytes at `offset` of a file or device. */
export async function readBytes(file: string, offset: number, length: number): Promise<Buffer> {
  const fh = await fsp.open(file, 'r')
  try {
    const b = Buffer.alloc(length)
    const { bytesRead } = await fh.read(b, 0, length, offset)
    return b.subarray(0, bytesRead)
  } finally {
    await fh.close()
  }
}

/** SHA-256 of a whole file (to show a refused install left it untouched). */
export async function fileDigest(file: string): Promise<string> {
  return createHash('sha256')
    .update(await fsp.readFile(file))
    .digest('hex')
}

/** Asserts the first MiB is all zeros: no partition table, nothing to boot. */
/** Asserts a failed install left no partition table: the first and last MiB zeroed, and wipefs sees no GPT or MBR. */
export async function assertNoTable(file: string): Promise<void> {
  const size = (await fsp.stat(file)).size || Number((await run(['blockdev', '--getsize64', file])).stdout.trim())
  const head = await readBytes(file, 0, MiB)
  assert.ok(
    head.every((x) => x === 0),
    'the first MiB is zeroed',
  )
  const tail = await readBytes(file, Math.max(0, size - MiB), MiB)
  assert.ok(
    tail.every((x) => x === 0),
    'the last MiB is zeroed',
  )
  const sigs = JSON.parse((await run(['wipefs', '--no-act', '--json', file])).stdout || '{"signatures":[]}') as {
    signatures: Array<{ type: string }>
  }
  assert.deepEqual(
    sigs.signatures.filter((x) => /gpt|PMBR|dos/.test(x.type)),
    [],
    'wipefs finds no partition table',
  )
}

/**
 * Asserts the disk holds the fixture's image, grown to the disk: sgdisk -v clean, backup
 * GPT at the disk's end, boot code kept, e2fsck -fn clean on the root file system and
 * fsck.vfat -n clean on the ESP (each checked on a copy of its byte range).
 */
export async function assertInstalled(
  disk: string,
  fx: FixtureImage,
  diskBytes: number,
  scratch: string,
): Promise<void> {
  const v = await run(['sgdisk', '-v', disk])
  assert.match(v.stdout, /No problems found/, v.stdout)
  const head = await readBytes(disk, 0, MiB)
  const tail = await readBytes(disk, diskBytes - MiB, MiB)
  const gpt = decodeGpt(head, tail, BigInt(diskBytes), 512)
  assert.ok(gpt.primaryOk && gpt.backupOk, 'both GPT copies are valid')
  assert.deepEqual(gpt.problems, [])
  assert.equal(gpt.gpt.lastUsableLba, BigInt(diskBytes / 512 - 34), 'the usable space reaches the end of the disk')
  assert.deepEqual(head.subarray(0, 440), Buffer.from(fx.bootCode), "the MBR boot code is the image's")
  const core = await readBytes(fx.img, fx.biosBoot.offset, 65536)
  assert.ok(
    (await readBytes(disk, fx.biosBoot.offset, 65536)).equals(core),
    "the BIOS boot partition holds the image's core.img",
  )
  for (const [name, part, argv] of [
    ['root', fx.root, ['e2fsck', '-fn']],
    ['esp', fx.esp, ['fsck.vfat', '-n']],
  ] as const) {
    const copy = path.join(scratch, `${name}.part`)
    await fsp.writeFile(copy, await readBytes(disk, part.offset, part.length))
    const r = await run([...argv, copy], { okStatus: [0, 1, 4, 8] })
    assert.equal(r.status, 0, `${argv[0]} on ${name}: ${r.stdout}${r.stderr}`)
    await fsp.rm(copy)
  }
}
