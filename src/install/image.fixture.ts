// Small disk images for the installer's tests and the benchmark's fallback, made the way
// the image builder makes the real one (so the zeroing contract holds for them too): our
// GPT encoder, mkfs.ext4 -d with explicit zero writes (tools/mkfs.ts), mkfs.vfat, a BIOS
// boot partition with bytes standing in for GRUB's core.img, 440 bytes of "boot code" in
// the MBR, a sparse file whose allocation map is the bmap (build/outputs.ts writeBmap),
// and its .zst/.xz/.gz/.qcow2 and SHA256SUMS beside it.

import { randomBytes } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { writeBmap, writeSums } from '../build/outputs.js'
import { writeSeekableZstd } from '../build/seekable-zstd.js'
import { encodeGpt, newGpt, type Gpt } from '../disk/gpt.js'
import { GUID_BIOS_BOOT, GUID_ESP, GUID_LINUX_ROOT_X86_64 } from '../disk/guid.js'
import { mkfsExt4, mkfsFat } from '../tools/mkfs.js'
import { mcopyIn } from '../tools/mtools.js'
import { run } from '../tools/run.js'

const MiB = 1 << 20

/** A fixture image and its companions. */
export interface FixtureImage {
  dir: string
  /** The raw sparse image, NAME.img. */
  img: string
  bmap: string
  zst: string
  xz: string
  gz: string
  qcow2: string
  sums: string
  size: number
  gpt: Gpt
  /** The 440 bytes of MBR boot code written into it. */
  bootCode: Uint8Array
  root: { offset: number; length: number }
  esp: { offset: number; length: number }
  biosBoot: { offset: number; length: number }
}

/** Options for makeFixtureImage. */
export interface FixtureOptions {
  /** File name without extension (default "fixture"). */
  name?: string
  /** Total size in MiB (default 24). */
  sizeMiB?: number
  /** Bytes of file data in the root file system (default 3 MiB, half random, half text). */
  rootDataBytes?: number
  /** Which companions to make (default all). */
  formats?: Array<'zst' | 'xz' | 'gz' | 'qcow2'>
  /** Files in the ESP (default none): a boot loader's worth of random bytes, a config, a long name, an empty directory. */
  espFiles?: boolean
  /** The ESP's size in MiB (default 8; the root partition follows it). */
  espMiB?: number
}

/** Makes NAME.img (+ .bmap, .zst, .xz, .gz, .qcow2, SHA256SUMS) in `dir`. */
export async function makeFixtureImage(dir: string, opts: FixtureOptions = {}): Promise<FixtureImage> {
  const name = opts.name ?? 'fixture'
  const size = (opts.sizeMiB ?? 24) * MiB
  const img = path.join(dir, `${name}.img`)
  const biosBoot = { offset: 1 * MiB, length: 1 * MiB }
  const espMiB = opts.espMiB ?? 8
  const esp = { offset: 2 * MiB, length: espMiB * MiB }
  const root = { offset: (2 + espMiB) * MiB, length: size - (3 + espMiB) * MiB }

  let gpt = newGpt({ sectorSize: 512, diskSectors: BigInt(size / 512) })
  const part = (number: number, typeGuid: string, r: { offset: number; length: number }, partName: string) => ({
    number,
    typeGuid,
    uniqueGuid: globalThis.crypto.randomUUID().toUpperCase(),
    firstLba: BigInt(r.offset / 512),
    lastLba: BigInt((r.offset + r.length) / 512 - 1),
    attributes: 0n,
    name: partName,
  })
  gpt = {
    ...gpt,
    partitions: [
      part(1, GUID_LINUX_ROOT_X86_64, root, 'root'),
      part(14, GUID_BIOS_BOOT, biosBoot, 'bios'),
      part(15, GUID_ESP, esp, 'esp'),
    ],
  }
  const bootCode = new Uint8Array(440)
  for (let i = 0; i < bootCode.length; i++) bootCode[i] = (i * 7 + 0x33) & 0xff
  const { primary, backup, backupOffset } = encodeGpt(gpt, { bootCode })

  await fsp.writeFile(img, new Uint8Array(0))
  await fsp.truncate(img, size)
  const fh = await fsp.open(img, 'r+')
  try {
    await fh.write(primary, 0, primary.length, 0)
    await fh.write(backup, 0, backup.length, Number(backupOffset))
    const core = randomBytes(64 * 1024)
    await fh.write(core, 0, core.length, biosBoot.offset)
  } finally {
    await fh.close()
  }

  const tree = path.join(dir, `${name}-root`)
  await fsp.mkdir(path.join(tree, 'etc'), { recursive: true })
  await fsp.mkdir(path.join(tree, 'data'), { recursive: true })
  await fsp.writeFile(path.join(tree, 'etc/hostname'), 'fixture\n')
  const dataBytes = opts.rootDataBytes ?? 3 * MiB
  const chunk = 256 * 1024
  for (let i = 0; i * chunk < dataBytes; i++) {
    const bytes =
      i % 2 === 0
        ? randomBytes(chunk)
        : Buffer.from(`line ${i} of a text file that compresses well\n`.repeat(Math.ceil(chunk / 48)).slice(0, chunk))
    await fsp.writeFile(path.join(tree, 'data', `f${i}`), bytes)
  }
  await mkfsExt4({
    image: img,
    offsetBytes: root.offset,
    sizeBytes: root.length,
    uuid: globalThis.crypto.randomUUID(),
    label: 'root',
    fromDir: tree,
  })
  await mkfsFat({ image: img, offsetBytes: esp.offset, sizeBytes: esp.length, label: 'ESP', volumeId: '1A2B3C4D' })
  await fsp.rm(tree, { recursive: true, force: true })
  if (opts.espFiles) {
    const files = path.join(dir, `${name}-esp`)
    await fsp.mkdir(path.join(files, 'EFI/BOOT'), { recursive: true })
    await fsp.mkdir(path.join(files, 'EFI/debian'), { recursive: true })
    await fsp.mkdir(path.join(files, 'empty'), { recursive: true })
    await fsp.writeFile(path.join(files, 'EFI/BOOT/BOOTX64.EFI'), randomBytes(300 * 1024))
    await fsp.writeFile(
      path.join(files, 'EFI/debian/grub.cfg'),
      'search --fs-uuid --set=root 0000\nconfigfile ($root)/boot/grub/grub.cfg\n',
    )
    await fsp.writeFile(path.join(files, 'EFI/debian/A file with a long name.txt'), randomBytes(5000))
    await mcopyIn(
      img,
      esp.offset,
      ['EFI', 'empty'].map((e) => path.join(files, e)),
    )
    await fsp.rm(files, { recursive: true, force: true })
  }

  const bmap = (await writeBmap(img)).path
  const want = new Set(opts.formats ?? ['zst', 'xz', 'gz', 'qcow2'])
  const outs = [img]
  // As `hwimage build` writes it: seekable, here in 1 MiB frames so that a test image has
  // many (frames skipped, several decompressed at once).
  if (want.has('zst')) outs.push((await writeSeekableZstd(img, `${img}.zst`, { frameBytes: MiB }), `${img}.zst`))
  if (want.has('xz')) outs.push((await run(['xz', '-f', '-k', '-T0', img]), `${img}.xz`))
  if (want.has('gz')) outs.push((await run(['gzip', '-f', '-k', img]), `${img}.gz`))
  const qcow2 = path.join(dir, `${name}.qcow2`)
  if (want.has('qcow2')) outs.push((await run(['qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2', img, qcow2]), qcow2))
  await writeSums(dir, outs)
  return {
    dir,
    img,
    bmap,
    zst: `${img}.zst`,
    xz: `${img}.xz`,
    gz: `${img}.gz`,
    qcow2,
    sums: path.join(dir, 'SHA256SUMS'),
    size,
    gpt,
    bootCode,
    root,
    esp,
    biosBoot,
  }
}

/** Fills a file (made or extended to `size` bytes) with non-zero garbage: what an old disk looks like. */
export async function garbageFile(file: string, size: number, seed = 0xa5): Promise<void> {
  const block = Buffer.alloc(MiB)
  for (let i = 0; i < block.length; i++) block[i] = (seed + i * 31 + (i >> 9)) & 0xff || 1
  const fh = await fsp.open(file, 'w')
  try {
    for (let at = 0; at < size; at += MiB) await fh.write(block, 0, Math.min(MiB, size - at), at)
  } finally {
    await fh.close()
  }
}
