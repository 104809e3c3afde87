// What install() is asked to do, and the one seam it offers: the seed partition (or any
// partition a caller adds at the disk's end), placed when the install is planned and
// written after the image, before the first MiB.

import type { Readable } from 'node:stream'
import type { Gpt } from '../disk/gpt.js'
import type { HttpOptions } from '../io/http-source.js'
import type { TargetDevice } from '../io/target-device.js'
import type { DiskHints } from './disk-hints.js'
import type { StepName } from './install-plan.js'

/** A partition added at the end of the disk: its place in the table and where its bytes go. */
export interface PlacedPartition {
  /** The table with the partition added. */
  gpt: Gpt
  number: number
  /** Byte offset and length on the disk. */
  offset: number
  sizeBytes: number
}

/** What the seed step is told about the install (the seed's hwimage.json records it: nothing secret). */
export interface InstallFacts {
  /** The source's file name (or URL), and the SHA-256 of its bytes as read, if computed. */
  imageName: string
  imageSha256?: string
  imageBytes: number
  targetPath: string
  targetSizeBytes: number
  model?: string
  serial?: string
  wwn?: string
}

/**
 * The seed seam (`--seed`): `place` runs when the install is planned, before anything is
 * written, so a disk without room for the seed is refused with its old content intact;
 * `write` runs after the image is on the target and the source verified, before the
 * first MiB (which makes the new table, and so the partition, visible) is written.
 */
export interface SeedStep {
  /** The table (already sized for the disk) with the partition added; throws TARGET_TOO_SMALL when it does not fit. */
  place(gpt: Gpt): PlacedPartition
  /** Renders the seed and writes it into its partition. */
  write(ctx: {
    placed: PlacedPartition
    target: TargetDevice
    facts: InstallFacts
    signal?: AbortSignal
  }): Promise<void>
}

/** What to install where. */
export interface InstallOptions {
  source: string
  /** The target path (--disk); or select by hints. */
  disk?: string
  diskHints?: DiskHints
  /** A bmap path or URL; false: use none; undefined: look beside the source. */
  bmap?: string | false
  sha256?: string
  sha256Url?: string
  /** Write the source even when it does not look like a disk image (--raw). */
  raw?: boolean
  /** Also compute the uncompressed image's SHA-256 (a full pass over the image). */
  imageDigest?: boolean
  verify?: boolean
  dryRun?: boolean
  /** Overwrite a block device that holds a partition table or any other signature without asking. */
  yes?: boolean
  /** Asks the user (TTY) whether to overwrite; absent: refuse without --yes. */
  confirm?: (question: string) => Promise<boolean>
  seed?: SeedStep
  /**
   * A 512-byte-sector image that can boot by BIOS is converted for a 4Kn disk only with
   * this (--uefi-only): BIOS cannot boot from 4096-byte sectors. No effect otherwise.
   */
  uefiOnly?: boolean
  stdin?: Readable
  http?: Omit<HttpOptions, 'signal'>
  /** Spool directory for zstd/xz (default /dev/shm or the temp dir); null: decompress through a pipe. */
  spoolDir?: string | null
  signal?: AbortSignal
  onEvent?: (name: string, fields: Record<string, unknown>) => void
  /** Progress of each stage; `resumes`: how often the download was resumed so far. */
  onProgress?: (p: { stage: string; done: number; total?: number; resumes?: number }) => void
  /**
   * Called as each step of the executor begins (after the previous one ended): for
   * orchestration, and for tests that inject a failure at every step boundary — a throw
   * here fails the install exactly as a failure of the step would.
   */
  onStep?: (step: StepName) => void | Promise<void>
}
