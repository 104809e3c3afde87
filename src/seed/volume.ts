// Seed volumes written without mounting: FAT with mkfs.vfat + mcopy (dosfstools,
// mtools), ISO 9660 with xorriso's mkisofs emulation (Rock Ridge and Joliet, so
// names such as "meta-data" and "vendor_data2.json" survive as written). Each tool
// call is a pure argv builder plus a thin executor.

import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { InputError, ToolError } from '../errors.js'
import { run } from '../tools/run.js'
import type { SeedFile } from './seed-files.js'

/** The filesystems a seed volume can have. */
export type SeedFs = 'vfat' | 'iso9660'

/** FAT volume parameters. */
export interface FatOptions {
  label: string
  /** Bytes per sector: the target disk's logical sector size. */
  sectorSize: 512 | 4096
  /** Whole volume size; a multiple of the sector size and of 1 KiB. */
  sizeBytes: number
  /** 8 hex digits; derived from the content when absent, so equal inputs give equal volumes. */
  volumeId?: string
}

// mtools reads ~/.mtoolsrc and checks the boot sector against its idea of a floppy;
// neither applies to an image file we just made.
const MTOOLS_ENV = { MTOOLS_SKIP_CHECK: '1', MTOOLSRC: '/dev/null' }

/** argv of mkfs.vfat creating a FAT image file of `sizeBytes` (mkfs.fat(8): BLOCK-COUNT is in KiB). */
export function mkfsVfatArgv(path: string, o: FatOptions & { volumeId: string }): string[] {
  return [
    'mkfs.vfat',
    '-C',
    '-n',
    o.label,
    '-S',
    String(o.sectorSize),
    '-i',
    o.volumeId,
    path,
    String(o.sizeBytes / 1024),
  ]
}

/** argv of mcopy copying files and directories (recursively) into the image's root. */
export function mcopyArgv(image: string, sources: readonly string[]): string[] {
  return ['mcopy', '-s', '-D', 'o', '-i', image, ...sources, '::/']
}

/** argv of xorriso writing an ISO 9660 image of a directory, with Rock Ridge and Joliet. */
export function xorrisoArgv(out: string, dir: string, label: string): string[] {
  return ['xorriso', '-as', 'mkisofs', '-quiet', '-o', out, '-V', label, '-J', '-R', '-input-charset', 'utf-8', dir]
}

/** Writes `files` into a directory tree under `dir`. */
export async function stageFiles(files: readonly SeedFile[], dir: string): Promise<void> {
  for (const f of files) {
    if (f.path.split('/').some((p) => p === '' || p === '.' || p === '..')) {
      throw new TypeError(`stageFiles(): bad relative path "${f.path}"`)
    }
    const target = join(dir, ...f.path.split('/'))
    await mkdir(dirname(target), { recursive: true })
    await writeFile(target, f.bytes, { mode: 0o600 })
  }
}

/** Writes a FAT image file holding `files` at `out` (which must not exist). */
export async function writeFatVolume(
  files: readonly SeedFile[],
  out: string,
  o: FatOptions,
  signal?: AbortSignal,
): Promise<void> {
  if (o.sizeBytes % 1024 !== 0 || o.sizeBytes % o.sectorSize !== 0) {
    throw new TypeError(`writeFatVolume(): size ${o.sizeBytes} is not a multiple of 1 KiB and of ${o.sectorSize}`)
  }
  const payload = files.reduce((n, f) => n + f.bytes.length, 0)
  if (payload > o.sizeBytes) throw tooBig(payload, o.sizeBytes)
  const stage = await mkdtemp(join(tmpdir(), 'hwimage-seed-stage-'))
  try {
    await stageFiles(files, stage)
    const volumeId = o.volumeId ?? contentVolumeId(files)
    await run(mkfsVfatArgv(out, { ...o, volumeId }), signal ? { signal } : {})
    const tops = [...new Set(files.map((f) => f.path.split('/')[0]!))].sort().map((p) => join(stage, p))
    try {
      await run(mcopyArgv(out, tops), { env: MTOOLS_ENV, ...(signal ? { signal } : {}) })
    } catch (e) {
      if (e instanceof ToolError && /disk full|no free clusters/i.test(e.stderrTail)) throw tooBig(payload, o.sizeBytes)
      throw e
    }
  } finally {
    await rm(stage, { recursive: true, force: true })
  }
}

/** Writes an ISO 9660 image holding `files` at `out`; returns its size. */
export async function writeIsoVolume(
  files: readonly SeedFile[],
  out: string,
  label: string,
  signal?: AbortSignal,
): Promise<number> {
  const stage = await mkdtemp(join(tmpdir(), 'hwimage-seed-stage-'))
  try {
    await stageFiles(files, stage)
    await run(xorrisoArgv(out, stage, label), signal ? { signal } : {})
    return (await stat(out)).size
  } finally {
    await rm(stage, { recursive: true, force: true })
  }
}

function contentVolumeId(files: readonly SeedFile[]): string {
  const h = createHash('sha256')
  for (const f of files) h.update(f.path).update(f.bytes)
  return h.digest('hex').slice(0, 8)
}

function tooBig(payload: number, size: number): InputError {
  return new InputError(
    'SEED_INVALID',
    `Cannot write seed volume: ${payload} bytes of files do not fit in a ${size / 1024 / 1024} MiB FAT volume`,
    { hint: 'shrink user_data or vendor_data' },
  )
}
