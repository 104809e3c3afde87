// A 512-byte-sector image installed onto a disk with 4096-byte logical sectors (4Kn),
// converted on the way (issue 16):
//
//  - the GPT is re-encoded in 4096-byte LBAs, partitions keeping their byte offsets
//    (disk/gpt-sector-size.ts; planned here, written by the finish-table step as the
//    table made for the disk);
//  - every FAT file system (the ESP) is made again with 4096-byte sectors, because UEFI
//    reads a FAT only when its BPB_BytsPerSec equals the disk's block size (UEFI 2.10
//    §13.3.1.1): its files copied out of the image's FAT with mtools, a new FAT made with
//    mkfs.vfat -S 4096 (same volume id and label), the files copied in, and the volume
//    written over the partition — by the convert-fat step, after the image is written and
//    verified and before the first MiB, so a failure leaves no table (install-steps.ts);
//  - ext4 with 4 KiB blocks is unaffected (it is checked: Linux mounts no ext4 whose
//    blocks are smaller than the disk's sectors); the seed partition is made for the
//    disk's sector size anyway (seed-partition.ts);
//  - BIOS boot cannot work: firmware's INT 13h and GRUB's boot.img/core.img count
//    512-byte sectors. An image that can boot by BIOS is refused unless the user asks for
//    UEFI only (--uefi-only); then its BIOS boot partition and MBR boot code stay as they
//    are, unused.

import { createHash } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { decodeExtSuperblock, isExtFilesystem } from '../disk/ext4-superblock.js'
import { decodeFatBootSector, type FatBootSector, fatBitsFor } from '../disk/fat.js'
import type { Gpt } from '../disk/gpt.js'
import { convertGptSectorSize } from '../disk/gpt-sector-size.js'
import { GUID_BIOS_BOOT, GUID_ESP, GUID_MS_BASIC_DATA } from '../disk/guid.js'
import { MBR_BOOT_CODE_SIZE } from '../disk/mbr.js'
import { FormatError, HwimageError, InputError, ToolError, withContext } from '../errors.js'
import { alignedBytes } from '../io/aligned-memory.js'
import type { TargetDevice } from '../io/target-device.js'
import { mkfsFat } from '../tools/mkfs.js'
import { mcopyIn, mcopyOut } from '../tools/mtools.js'
import type { ImageLayout } from './image-layout.js'
import type { FatConverted, SectorConversionPlan } from './install-report.js'

const CHUNK = 4 << 20

/** The conversion planned for a 512-byte image on a 4Kn disk: the new table, and why the install is refused if it is. */
export interface PlannedConversion {
  plan: SectorConversionPlan
  /** The image's table in the disk's LBAs (not yet sized for the disk). */
  gpt: Gpt
  /** BIOS boot asked for (not --uefi-only) on a disk it cannot boot from. */
  refusal?: HwimageError
}

/** Whether an image of `imageSectorSize` onto a disk of `diskSectorSize` is converted (only 512 → 4096, with a GPT). */
export function convertsSectors(layout: ImageLayout, diskSectorSize: number): boolean {
  return layout.gpt !== undefined && layout.sectorSize === 512 && diskSectorSize === 4096
}

/** Plans the conversion of the image's table and file systems for a 4Kn disk; writes nothing. */
export function planSectorConversion(
  layout: ImageLayout,
  head: Uint8Array,
  targetPath: string,
  opts: { uefiOnly?: boolean } = {},
): PlannedConversion {
  const from = layout.sectorSize!
  const to = 4096
  const { gpt, trimmed } = convertGptSectorSize(layout.gpt!, to)
  const type = (p: { typeGuid: string }) => p.typeGuid.toUpperCase()
  const fat = gpt.partitions
    .filter((p) => type(p) === GUID_ESP || type(p) === GUID_MS_BASIC_DATA)
    .map((p) => ({
      partition: p.number,
      name: p.name,
      offset: Number(p.firstLba) * to,
      sizeBytes: Number(p.lastLba - p.firstLba + 1n) * to,
      ...(type(p) === GUID_ESP ? { esp: true } : {}),
    }))
  const bios = gpt.partitions.find((p) => type(p) === GUID_BIOS_BOOT)
  const bootCode = head.subarray(0, MBR_BOOT_CODE_SIZE).some((b) => b !== 0)
  const biosBoot = bios || bootCode ? { ...(bios ? { partition: bios.number } : {}), bootCode } : undefined
  const checked = gpt.partitions
    .filter((p) => !fat.some((f) => f.partition === p.number) && p !== bios)
    .map((p) => p.number)
  const plan: SectorConversionPlan = {
    from,
    to,
    gpt: { trimmed },
    fat,
    checked,
    uefiOnly: opts.uefiOnly === true,
    ...(biosBoot && opts.uefiOnly ? { biosBootKept: biosBoot } : {}),
  }
  let refusal: HwimageError | undefined
  if (biosBoot && !opts.uefiOnly) {
    const what = [bios ? `its BIOS boot partition ${bios.number}` : '', bootCode ? 'its MBR boot code' : '']
      .filter(Boolean)
      .join(', ')
    refusal = new InputError(
      'SECTOR_SIZE_MISMATCH',
      `Cannot install onto "${targetPath}" for BIOS boot: the image is made for ${from}-byte sectors, the disk has ${to}-byte logical sectors, and the image boots by BIOS (${what}), which cannot boot from such a disk (BIOS firmware and GRUB's boot code read 512-byte sectors)`,
      {
        hint: `pass --uefi-only to convert it for UEFI boot only (GPT in ${to}-byte LBAs, ESP made again with ${to}-byte sectors; the BIOS boot code stays, unused), or use a disk with 512-byte logical sectors`,
      },
    )
  }
  return { plan, gpt, ...(refusal ? { refusal } : {}) }
}

/** What the convert-fat step did, and what --verify reads back in place of the image's bytes there. */
export interface ConvertedFilesystems {
  fat: FatConverted[]
  /** The new volumes as written: byte range and SHA-256. */
  written: Array<{ offset: number; length: number; sha256: string; label: string }>
  warnings: string[]
}

/**
 * The convert-fat step's work on the target (the image already on it, its first MiB not):
 * each FAT made again with the disk's sector size over its partition; every other
 * partition (but BIOS boot) checked to hold nothing that breaks on 4096-byte sectors.
 */
export async function convertFilesystems(
  dev: TargetDevice,
  plan: SectorConversionPlan,
  gpt: Gpt,
  opts: { signal?: AbortSignal; tmpDir?: string } = {},
): Promise<ConvertedFilesystems> {
  const out: ConvertedFilesystems = { fat: [], written: [], warnings: [] }
  const tmp = await fsp.mkdtemp(path.join(opts.tmpDir ?? os.tmpdir(), 'hwimage-4kn-'))
  try {
    for (const part of plan.fat) {
      const head = await readAt(dev, part.offset, 4096)
      let boot: FatBootSector
      try {
        boot = decodeFatBootSector(head)
      } catch (e) {
        if (!(e instanceof FormatError) || part.esp)
          throw withContext(`Cannot convert partition ${part.partition} "${part.name}" for ${plan.to}-byte sectors`, e)
        out.warnings.push(
          `partition ${part.partition} "${part.name}" holds no FAT: left as it is (it may not work on ${plan.to}-byte sectors)`,
        )
        continue
      }
      const done = await rewriteFat(dev, part, boot, plan.to, path.join(tmp, `p${part.partition}`), opts.signal)
      out.fat.push(done.fat)
      out.written.push(done.written)
    }
    for (const n of plan.checked) {
      const p = gpt.partitions.find((x) => x.number === n)!
      const offset = Number(p.firstLba) * plan.to
      const length = Number(p.lastLba - p.firstLba + 1n) * plan.to
      const head = await readAt(dev, offset, 4096)
      if (!isExtFilesystem(head)) continue
      const sb = decodeExtSuperblock(head)
      if (sb.blockSize < plan.to)
        throw new InputError(
          'SECTOR_SIZE_MISMATCH',
          `Cannot install partition ${n} "${p.name}" onto ${plan.to}-byte sectors: its ext4 file system has ${sb.blockSize}-byte blocks, which Linux does not mount on a disk whose sectors are larger`,
          { hint: 'use an image whose ext4 file systems have 4096-byte blocks (mkfs.ext4 -b 4096)' },
        )
      if (sb.sizeBytes > BigInt(length))
        throw new InputError(
          'SECTOR_SIZE_MISMATCH',
          `Cannot install partition ${n} "${p.name}" onto ${plan.to}-byte sectors: its ext4 file system spans ${sb.sizeBytes} bytes, the partition in ${plan.to}-byte sectors ${length}`,
        )
    }
  } finally {
    await fsp.rm(tmp, { recursive: true, force: true })
  }
  return out
}

/** One FAT made again with `to`-byte sectors: its files out, a new volume with the same id and label, the files in, written over the partition. */
async function rewriteFat(
  dev: TargetDevice,
  part: SectorConversionPlan['fat'][number],
  boot: FatBootSector,
  to: number,
  work: string,
  signal: AbortSignal | undefined,
): Promise<{ fat: FatConverted; written: ConvertedFilesystems['written'][number] }> {
  const what = `partition ${part.partition} "${part.name}"`
  const files = path.join(work, 'files')
  await fsp.mkdir(files, { recursive: true })
  const oldImage = path.join(work, 'old.img')
  const newImage = path.join(work, 'new.img')
  // The old volume copied out of the target (mtools reads files, not a device held open O_EXCL).
  const oldLength = Math.min(part.sizeBytes, boot.totalSectors * boot.bytesPerSector)
  await copyOut(dev, part.offset, oldLength, oldImage)
  await mcopyOut(oldImage, 0, files, signal)
  await fsp.rm(oldImage)
  const { count, bytes } = await tally(files)
  const fatBits = fatBitsFor(part.sizeBytes, to)
  await fsp.writeFile(newImage, new Uint8Array(0))
  await fsp.truncate(newImage, part.sizeBytes)
  await mkfsFat(
    {
      image: newImage,
      offsetBytes: 0,
      sizeBytes: part.sizeBytes,
      label: boot.label ?? 'NO NAME',
      volumeId: boot.volumeId,
      sectorSize: to,
      fatBits,
      // 4 KiB clusters: the smallest there are on 4Kn, so the files fit wherever they fitted before if anywhere.
      sectorsPerCluster: 1,
    },
    signal,
  )
  try {
    await mcopyIn(
      newImage,
      0,
      (await fsp.readdir(files)).map((e) => path.join(files, e)),
      signal,
    )
  } catch (e) {
    if (e instanceof ToolError && /disk full/i.test(e.stderrTail))
      throw new InputError(
        'TARGET_TOO_SMALL',
        `Cannot convert ${what} for ${to}-byte sectors: its ${count} files (${bytes} bytes) do not fit in ${part.sizeBytes} bytes of ${to}-byte clusters`,
        {
          cause: e,
          hint: `the image's FAT is too full for ${to}-byte sectors: use an image built for them, or with a larger ESP`,
        },
      )
    throw withContext(`Cannot convert ${what} for ${to}-byte sectors`, e)
  }
  const made = decodeFatBootSector(await readFileHead(newImage))
  if (made.bytesPerSector !== to || made.fatBits !== fatBits || made.volumeId !== boot.volumeId)
    throw new HwimageError(
      'INTERNAL',
      `Cannot convert ${what} for ${to}-byte sectors: mkfs.vfat made FAT${made.fatBits} with ${made.bytesPerSector}-byte sectors and id ${made.volumeId}, expected FAT${fatBits}, ${to}, ${boot.volumeId}`,
    )
  const sha256 = await copyIn(newImage, dev, part.offset, part.sizeBytes)
  return {
    fat: {
      partition: part.partition,
      name: part.name,
      volumeId: boot.volumeId,
      ...(boot.label ? { label: boot.label } : {}),
      from: { bytesPerSector: boot.bytesPerSector, fatBits: boot.fatBits, clusters: boot.clusters },
      to: { bytesPerSector: to, fatBits, clusters: made.clusters },
      files: count,
      bytes,
    },
    written: {
      offset: part.offset,
      length: part.sizeBytes,
      sha256,
      label: `${what} (FAT made again with ${to}-byte sectors)`,
    },
  }
}

async function readAt(dev: TargetDevice, offset: number, length: number): Promise<Uint8Array> {
  const buf = alignedBytes(length)
  const n = await dev.read(offset, buf)
  return buf.subarray(0, n)
}

async function readFileHead(file: string): Promise<Uint8Array> {
  const fh = await fsp.open(file, 'r')
  try {
    const b = new Uint8Array(4096)
    await fh.read(b, 0, b.length, 0)
    return b
  } finally {
    await fh.close()
  }
}

/** The target's bytes [offset, offset + length) into a new file. */
async function copyOut(dev: TargetDevice, offset: number, length: number, file: string): Promise<void> {
  const buf = alignedBytes(CHUNK)
  const fh = await fsp.open(file, 'w')
  try {
    for (let at = 0; at < length; at += CHUNK) {
      const n = Math.min(CHUNK, length - at)
      const view = buf.subarray(0, Math.ceil(n / 4096) * 4096)
      await dev.read(offset + at, view)
      await fh.write(view, 0, n, at)
    }
  } finally {
    await fh.close()
  }
}

/** A file written onto the target at `offset` (all `length` bytes: the old FAT's clusters go); returns its SHA-256. */
async function copyIn(file: string, dev: TargetDevice, offset: number, length: number): Promise<string> {
  const hash = createHash('sha256')
  const buf = alignedBytes(CHUNK)
  const fh = await fsp.open(file, 'r')
  try {
    for (let at = 0; at < length; at += CHUNK) {
      const n = Math.min(CHUNK, length - at)
      const view = buf.subarray(0, n)
      view.fill(0)
      await fh.read(view, 0, n, at)
      hash.update(view)
      await dev.write(offset + at, view)
    }
  } finally {
    await fh.close()
  }
  await dev.sync()
  return hash.digest('hex')
}

/** Files and their bytes under a directory. */
async function tally(dir: string): Promise<{ count: number; bytes: number }> {
  let count = 0
  let bytes = 0
  for (const e of await fsp.readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue
    count++
    bytes += (await fsp.stat(path.join(e.parentPath ?? e.path, e.name))).size
  }
  return { count, bytes }
}
