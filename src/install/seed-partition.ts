// The seed partition at the end of the installed disk (issue 4, docs/first-boot-contract.md):
// `addSeedPartition` places it in a table (pure), `seedStep` is the installer's seed step:
// placed when the install is planned (a disk without room for it is refused before
// anything is written), then rendered into a FAT volume for the target's sector size and
// written there before the first MiB (and so the new table) is written.
//
// It goes after everything, ending on the last 1 MiB boundary before the backup GPT, so
// the root partition stays the last one before it and cloud-init's growpart grows root up
// to the seed partition's start.

import { readFile } from 'node:fs/promises'
import type { Gpt, GptPartition } from '../disk/gpt.js'
import { GUID_LINUX_DATA, GUID_LINUX_ROOT_X86_64, randomGuid } from '../disk/guid.js'
import { InputError } from '../errors.js'
import { alignedBytes } from '../io/aligned-memory.js'
import { detectNetworkRenderer } from '../seed/detect-network-renderer.js'
import { makeSeedVolume, SEED_PARTITION } from '../seed/make-seed-volume.js'
import type { InstallReportSummary } from '../seed/seed-files.js'
import type { Seed, SeedFormat } from '../seed/seed-schema.js'
import type { SeedStep } from './install-options.js'

/** Where the seed partition goes and what it is (defaults: SEED_PARTITION). */
export interface SeedPartitionSpec {
  sizeBytes?: number
  alignBytes?: number
  name?: string
  typeGuid?: string
  /** The partition's unique GUID (default: a random one). */
  uniqueGuid?: string
}

/** A table with the seed partition added, and where its bytes go. */
export interface PlacedSeedPartition {
  gpt: Gpt
  partition: GptPartition
  /** Byte offset and length of the partition on the disk. */
  offset: number
  sizeBytes: number
}

/**
 * Adds the seed partition last in `gpt` (a table already sized for the disk): start and
 * end on `alignBytes` boundaries, ending at or before LastUsableLBA, after every other
 * partition; slot number one past the highest used. Fails with TARGET_TOO_SMALL when it
 * does not fit.
 */
export function addSeedPartition(gpt: Gpt, spec: SeedPartitionSpec = {}): PlacedSeedPartition {
  const size = BigInt(spec.sizeBytes ?? SEED_PARTITION.sizeBytes)
  const align = BigInt(spec.alignBytes ?? SEED_PARTITION.alignBytes)
  const ss = BigInt(gpt.sectorSize)
  if (align % ss !== 0n || size % align !== 0n || size <= 0n) {
    throw new InputError(
      'SEED_INVALID',
      `Cannot place the seed partition: its size ${size} and alignment ${align} must be multiples of the ${ss}-byte sector, the size of the alignment`,
    )
  }
  const usedEnd = gpt.partitions.reduce((m, p) => (p.lastLba > m ? p.lastLba : m), gpt.firstUsableLba - 1n)
  const endBytes = (((gpt.lastUsableLba + 1n) * ss) / align) * align
  const startBytes = endBytes - size
  const firstFree = (((usedEnd + 1n) * ss + align - 1n) / align) * align
  if (startBytes < firstFree) {
    const disk = gpt.diskSectors * ss
    throw new InputError(
      'TARGET_TOO_SMALL',
      `Cannot add the seed partition: the disk (${disk} bytes) has ${endBytes > firstFree ? endBytes - firstFree : 0n} bytes free after the image's partitions, the seed partition needs ${size}`,
      {
        hint: 'use a larger disk, or install without --seed and attach the seed as a second disk (hwimage seed)',
      },
    )
  }
  const used = new Set(gpt.partitions.map((p) => p.number))
  let number = Math.max(0, ...used) + 1
  if (number > gpt.entryCount) {
    number = 1
    while (used.has(number)) number++
  }
  if (number > gpt.entryCount)
    throw new InputError(
      'TARGET_TOO_SMALL',
      `Cannot add the seed partition: all ${gpt.entryCount} partition entries are used`,
    )
  const partition: GptPartition = {
    number,
    typeGuid: spec.typeGuid ?? SEED_PARTITION.typeGuid,
    uniqueGuid: spec.uniqueGuid ?? randomGuid(),
    firstLba: startBytes / ss,
    lastLba: endBytes / ss - 1n,
    attributes: 0n,
    name: spec.name ?? SEED_PARTITION.name,
  }
  const partitions = [...gpt.partitions, partition].sort((a, b) => a.number - b.number)
  return { gpt: { ...gpt, partitions }, partition, offset: Number(startBytes), sizeBytes: Number(size) }
}

/** The root file system's byte offset in a table: x86-64 root type, then Linux data, then the largest partition. */
export function rootPartitionOffset(gpt: Gpt): number | undefined {
  const byType = (t: string) => gpt.partitions.find((p) => p.typeGuid.toUpperCase() === t)
  const largest = [...gpt.partitions].sort((a, b) => Number(b.lastLba - b.firstLba - (a.lastLba - a.firstLba)))[0]
  const root = byType(GUID_LINUX_ROOT_X86_64) ?? byType(GUID_LINUX_DATA) ?? largest
  return root ? Number(root.firstLba) * gpt.sectorSize : undefined
}

/** Options of seedStep(). */
export interface SeedSeamOptions {
  /** Overrides the seed's `format:` (--seed-format). */
  format?: SeedFormat
  /** Called with each warning (e.g. names cloud-init will change, how the network version was chosen). */
  onWarning?: (message: string) => void
  /** Called once the volume is written. */
  onWritten?: (info: {
    offset: number
    sizeBytes: number
    label: string
    instanceId: string
    partition: number
    networkVersion: 1 | 2
  }) => void
  now?: () => Date
}

/**
 * The installer's seed step for `--seed`: places the seed partition in the table, then
 * renders the seed (network config version detected from the image's root file system,
 * already on the target) into a FAT volume with the target's sector size, and writes it
 * into the partition.
 */
export function seedStep(seed: Seed, opts: SeedSeamOptions = {}): SeedStep {
  return {
    place: (gpt) => {
      if (gpt.sectorSize !== 512 && gpt.sectorSize !== 4096) {
        throw new InputError(
          'SEED_INVALID',
          `Cannot add the seed partition: ${gpt.sectorSize}-byte sectors are neither 512 nor 4096 bytes`,
        )
      }
      const placed = addSeedPartition(gpt)
      return { gpt: placed.gpt, number: placed.partition.number, offset: placed.offset, sizeBytes: placed.sizeBytes }
    },
    write: async ({ placed, target, signal, facts }) => {
      const sectorSize = placed.gpt.sectorSize as 512 | 4096 // place() accepts no other
      const rootOffset = rootPartitionOffset(placed.gpt)
      // The target has no partition table yet (its first MiB is written last), so the root
      // file system is read at its offset in the table about to be written.
      const net = await detectNetworkRenderer(target.path, rootOffset, signal ? { signal } : {})
      const installReport: InstallReportSummary = {
        image: {
          ...(facts?.imageName ? { name: facts.imageName } : {}),
          ...(facts?.imageSha256 ? { sha256: facts.imageSha256 } : {}),
          ...(facts?.imageBytes !== undefined ? { sizeBytes: facts.imageBytes } : {}),
        },
        target: {
          path: target.path,
          ...(facts?.serial ? { serial: facts.serial } : {}),
          ...(facts?.model ? { model: facts.model } : {}),
          ...(facts?.wwn ? { wwn: facts.wwn } : {}),
          ...(facts ? { sizeBytes: facts.targetSizeBytes } : {}),
          logicalSectorSize: sectorSize,
        },
        time: (opts.now?.() ?? new Date()).toISOString(),
        tool: 'hwimage install',
      }
      const volume = await makeSeedVolume(seed, {
        ...(opts.format ? { format: opts.format } : {}),
        fs: 'vfat',
        sectorSize,
        sizeBytes: placed.sizeBytes,
        networkVersion: net.networkVersion,
        networkReason: net.reason,
        installReport,
        ...(signal ? { signal } : {}),
      })
      try {
        const bytes = await readFile(volume.path)
        if (bytes.length !== placed.sizeBytes)
          throw new InputError(
            'SEED_INVALID',
            `Cannot write the seed partition: the volume is ${bytes.length} bytes, the partition ${placed.sizeBytes}`,
          )
        const buf = alignedBytes(bytes.length)
        buf.set(bytes)
        await target.write(placed.offset, buf)
        await target.sync()
        for (const w of volume.warnings) opts.onWarning?.(`seed: ${w}`)
        opts.onWritten?.({
          offset: placed.offset,
          sizeBytes: placed.sizeBytes,
          label: volume.label,
          instanceId: volume.instanceId,
          partition: placed.number,
          networkVersion: volume.networkVersion,
        })
      } finally {
        await volume.dispose()
      }
    },
  }
}

/** Reads and validates a seed file for --seed. */
export async function readSeedFile(path: string): Promise<Seed> {
  const { parseSeed } = await import('../seed/seed-schema.js')
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (e) {
    throw new InputError('SEED_INVALID', `Cannot read the seed "${path}": ${(e as Error).message}`, { cause: e })
  }
  return parseSeed(text, path)
}
