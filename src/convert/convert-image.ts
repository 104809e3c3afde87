// `hwimage convert`: an existing Debian 12 cloud image → a hardware image, one way.
//
// Order of work:
//   1. the input made a raw sparse file (read-input.ts), checked: GPT, an ext4 root (not
//      LUKS, not LVM), Debian bookworm, amd64 (inspect-input.ts);
//   2. the root tree read out with debugfs (ext4-tree.ts) and snapshotted;
//   3. the space check: the new kernel must fit in the root file system (or --grow);
//   4. the kernel swapped in a chroot of the tree with apt (kernel-swap.ts), GRUB's boot
//      files installed where the input lacks them;
//   5. the tree written back with the build's pipeline: mke2fs -d (tools/mkfs.ts) at the
//      root partition's offset with the input's UUID, label, features and inode size, the
//      extended attributes set again with debugfs; the partition table, the other
//      partitions and their ids stay as they were (grown only with --grow);
//   6. the build's outputs (build/outputs.ts: .bmap, .zst, SHA256SUMS) and manifest.json
//      with `convertedFrom`, made in a scratch directory beside DIR and moved into DIR only
//      when everything is done: a failed conversion leaves nothing in DIR.
// Why read out and write back rather than edit the file system in place with debugfs: apt
// and dpkg must run on a real tree (maintainer scripts, initramfs-tools, update-grub), and
// a tree written by mke2fs -d is exactly what the build makes, so the image is laid out like
// a built one (no fragmentation left by removing one kernel and adding another).

import { lstat, mkdir, mkdtemp, open, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { hostname } from 'node:os'
import { basename, dirname, join, resolve } from 'node:path'
import { biosCoreLines, espGrubStub } from '../build/customize-script.js'
import { HWIMAGE_VERSION } from '../build/build-image.js'
import { ESP_FILES } from '../build/disk-image.js'
import { installedPackages, kernelInfo, type Manifest } from '../build/manifest.js'
import { writeBmap, writeSums, writeZst } from '../build/outputs.js'
import { qcow2Name, writeQcow2 } from '../build/qcow2-output.js'
import { parseSpec } from '../build/spec.js'
import { runInTreeChroot } from '../build/tree-chroot.js'
import { encodeGpt, resizeGpt, type Gpt } from '../disk/gpt.js'
import { patchBootImage, patchCoreImage } from '../disk/grub-bios.js'
import { InputError, UsageError, withContext } from '../errors.js'
import { punchHoleArgv } from '../io/zero-range.js'
import { mkfsExt4 } from '../tools/mkfs.js'
import { mcopy, mdirList, mmd } from '../tools/mtools.js'
import { quoteArgv, run } from '../tools/run.js'
import { fsDevice, readTreeOut, writeXattrs } from './ext4-tree.js'
import { inspectInput, partitionBytes, partitionOffset, type InputImage } from './inspect-input.js'
import { swapKernel, type ConvertFlavor } from './kernel-swap.js'
import { readInput } from './read-input.js'
import { addedPackagePaths, diffTrees, snapshotTree, type DiffSummary } from './tree-diff.js'

const MiB = 1 << 20
const SECTOR = 512

/**
 * Bytes the new kernel takes in the root file system, for the check before apt runs (the
 * exact figure is known only after): measured on bookworm's 6.1 kernel (docs/convert.md):
 * server 36 MiB installed + 22 MiB initrd; generic ~391 MiB installed + its initrd; with
 * room for the package files apt downloads into /var/cache/apt.
 */
export const NEW_KERNEL_BYTES: Record<ConvertFlavor, number> = {
  server: 200 * MiB,
  generic: 560 * MiB,
}

/** Options of one conversion. */
export interface ConvertOptions {
  source: string
  outDir: string
  flavor: ConvertFlavor
  /** Bytes to add to the root file system (and the image, as far as its partition lacks them). */
  growBytes?: number
  /** Name of the outputs (default: the source's name without extensions, + "-hw"). */
  name?: string
  verbose?: boolean
  signal?: AbortSignal
  onStep?: (step: string) => void
}

/** manifest.json's `convertedFrom`. */
export interface ConvertedFrom {
  name: string
  format: string
  sha256: string
  os: string
  kernel: { packages: Record<string, string>; versions: string[] }
  boot: { bios: 'kept' | 'installed' | 'absent'; uefi: 'kept' | 'installed' | 'absent' }
  rootFs: { uuid: string; label: string; features: string[]; bytesBefore: number; bytesAfter: number }
  tree: { hardLinks: number; specialFiles: number; xattrs: number }
  diff: DiffSummary
  seconds: number
}

/** A converted image's manifest: a build's, with where it came from. */
export type ConvertManifest = Manifest & { convertedFrom: ConvertedFrom }

/** The default output name for a source: "debian-12-genericcloud-amd64.qcow2" → "debian-12-genericcloud-amd64-hw". */
export function defaultName(source: string): string {
  const base = basename(source.replace(/[?#].*$/, '')) || 'image'
  return `${base.replace(/(\.(img|raw|qcow2|zst|xz|gz))+$/i, '')}-hw`
}

/** Converts; returns the manifest (also written to outDir/manifest.json). */
export async function convertImage(opts: ConvertOptions): Promise<ConvertManifest> {
  const started = Date.now()
  const step = opts.onStep ?? (() => {})
  const sig = opts.signal ? { signal: opts.signal } : {}
  if (process.getuid?.() !== 0)
    throw new UsageError(
      'Cannot convert: hwimage convert needs root (apt and dpkg run in a chroot of the image tree)',
      {
        hint: 'run it with sudo',
      },
    )
  const outDir = resolve(opts.outDir)
  const st = await lstat(outDir).catch(() => undefined)
  if (st && !st.isDirectory())
    throw new UsageError(`Cannot convert into "${opts.outDir}": it is a file, not a directory`, {
      hint: 'name a directory with -o DIR (it is made if missing)',
    })
  const parent = dirname(outDir)
  await mkdir(parent, { recursive: true })
  // Scratch beside DIR: the outputs move into DIR by rename at the very end.
  const work = await mkdtemp(join(parent, `.${basename(outDir)}.convert-`))
  const name = opts.name ?? defaultName(opts.source)
  try {
    step('input (read, checked)')
    const image = join(work, `${name}.img`)
    const raw = await readInput(opts.source, image, opts.signal)
    const input = await inspectInput(image, opts.source, raw.sizeBytes)
    const rootOffset = partitionOffset(input.root)
    const rootDevice = fsDevice(image, rootOffset)

    step('root tree (debugfs rdump)')
    const rootDir = join(work, 'root')
    const readout = await readTreeOut(rootDevice, rootDir, join(work, 'xattrs'), opts.signal)
    const before = await snapshotTree(rootDir)

    // 3. Space: what the old kernels free, what the new one takes.
    const fsBytesBefore = input.rootFs.blockCount * input.rootFs.blockSize
    const growBytes = Math.ceil((opts.growBytes ?? 0) / MiB) * MiB
    const fsBytes = fsBytesBefore + growBytes
    const oldKernel = await oldKernelBytes(rootDir)
    const used = (input.rootFs.blockCount - input.rootFs.freeBlocks) * input.rootFs.blockSize
    const needed = used - oldKernel + NEW_KERNEL_BYTES[opts.flavor]
    if (needed > fsBytes * 0.95) noSpace(opts.source, opts.flavor, needed, fsBytes)

    // 4. The kernel, and GRUB's boot files where they are missing.
    const boot = await bootState(image, input)
    const bootPackages = [
      ...(boot.bios === 'missing' ? ['grub-pc-bin'] : []),
      ...(boot.uefi === 'missing' ? ['shim-signed', 'grub-efi-amd64-signed'] : []),
    ]
    step(`kernel (${opts.flavor}: apt in a chroot of the tree, initramfs, update-grub)`)
    const swap = await swapKernel(rootDir, {
      flavor: opts.flavor,
      rootUuid: input.rootFs.uuid,
      bootPackages,
      ...sig,
      ...(opts.verbose ? { verbose: true } : {}),
    }).catch((e) => {
      throw withContext('changing the kernel in the image tree', e)
    })
    if (boot.bios === 'missing') await makeBiosCore(rootDir, input.rootFs.uuid, opts.signal)
    const after = await snapshotTree(rootDir)
    const diff = diffTrees(before, after, await addedPackagePaths(rootDir, before, after))

    // 5. The tree back, at the same place, with the same ids.
    step('root file system (mkfs.ext4 -d, same UUID, label, features)')
    let gpt = input.gpt
    let imageBytes = raw.sizeBytes
    const partBytes = partitionBytes(input.root)
    if (fsBytes > partBytes) ({ gpt, imageBytes } = growRoot(input, fsBytes, opts.source))
    const content = await treeContentBytes(rootDir)
    if (content * 1.05 + 64 * MiB > fsBytes) noSpace(opts.source, opts.flavor, content * 1.05 + 64 * MiB, fsBytes)
    const newRoot = gpt.partitions.find((p) => p.number === input.root.number)!
    await run(punchHoleArgv(image, rootOffset, partitionBytes(newRoot)), sig)
    if (imageBytes !== raw.sizeBytes) {
      const fh = await open(image, 'r+')
      try {
        await fh.truncate(imageBytes)
      } finally {
        await fh.close()
      }
    }
    await mkfsExt4(
      {
        image,
        offsetBytes: rootOffset,
        sizeBytes: fsBytes,
        uuid: input.rootFs.uuid,
        label: input.rootFs.label,
        fromDir: rootDir,
        features: input.rootFs.features.filter((f) => f !== 'needs_recovery' && f !== 'orphan_present'),
        inodeSize: input.rootFs.inodeSize,
      },
      opts.signal,
    ).catch((e) => {
      if (/No space left|Could not allocate block|not enough space/i.test(String(e?.stderrTail ?? e?.message)))
        noSpace(opts.source, opts.flavor, content * 1.1 + 64 * MiB, fsBytes)
      throw withContext('writing the root file system back (mkfs.ext4 -d)', e)
    })
    // Attributes go back onto the paths the conversion left as they were; a file apt replaced has its package's own.
    const xattrs = await writeXattrs(
      rootDevice,
      readout.xattrs,
      (p) => after.has(p) && after.get(p) === before.get(p),
      opts.signal,
    )
    if (gpt !== input.gpt || boot.bios === 'missing')
      await writeTable(image, gpt, input, rootDir, boot.bios === 'missing')
    const uefi = boot.uefi === 'missing' ? await fillEsp(image, input, rootDir) : boot.uefi

    // 6. Outputs, as a build writes them.
    step('bmap, zstd, qcow2, digests and manifest')
    const packages = await installedPackages(rootDir)
    const kernel = await kernelInfo(rootDir, opts.flavor)
    const { path: bmap, mappedBytes } = await writeBmap(image)
    const zst = await writeZst(image, opts.signal)
    // The build's qcow2 (zstd clusters), for OpenStack / Ironic whole-disk images.
    const qcow2 = await writeQcow2(image, join(work, qcow2Name(name)), 'zstd', opts.signal)
    const files = await writeSums(work, [image, zst, bmap, qcow2])
    const spec = parseSpec(`name: ${JSON.stringify(name)}\nkernel: { flavor: ${opts.flavor} }\n`, 'hwimage convert')
    const manifest: ConvertManifest = {
      hwimage: { manifestVersion: 1, version: HWIMAGE_VERSION },
      name,
      spec,
      packages,
      kernel,
      partitions: partitionRows(gpt, input),
      image: {
        file: basename(image),
        sizeBytes: imageBytes,
        mappedBytes,
        sectorSize: SECTOR,
        diskGuid: gpt.diskGuid,
      },
      files,
      build: {
        seconds: Math.round((Date.now() - started) / 100) / 10,
        date: new Date().toISOString(),
        host: hostname(),
      },
      convertedFrom: {
        name: opts.source,
        format: raw.format,
        sha256: raw.sourceSha256,
        os: input.os.prettyName,
        kernel: { packages: swap.removedPackages, versions: swap.inputVersions },
        boot: { bios: boot.bios === 'missing' ? 'installed' : boot.bios, uefi },
        rootFs: {
          uuid: input.rootFs.uuid,
          label: input.rootFs.label,
          features: input.rootFs.features,
          bytesBefore: fsBytesBefore,
          bytesAfter: fsBytes,
        },
        tree: { hardLinks: readout.hardLinks, specialFiles: readout.specialFiles, xattrs },
        diff,
        seconds: Math.round((Date.now() - started) / 100) / 10,
      },
    }
    await writeFile(join(work, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n')
    await mkdir(outDir, { recursive: true })
    for (const f of [image, zst, bmap, qcow2, join(work, 'SHA256SUMS'), join(work, 'manifest.json')])
      await rename(f, join(outDir, basename(f)))
    return manifest
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

function noSpace(source: string, flavor: string, needed: number, have: number): never {
  const more = Math.ceil((needed - have * 0.95) / MiB / 64) * 64 + 64
  throw new InputError(
    'CONVERT_NO_SPACE',
    `Cannot convert "${source}": the root file system has ${Math.floor(have / MiB)} MiB and needs about ${Math.ceil(needed / MiB)} MiB with the ${flavor} kernel`,
    { hint: `grow it: hwimage convert ${source} … --grow ${more}M` },
  )
}

/** Bytes of the input's kernels in the tree: /boot/*-VERSION and /lib/modules/VERSION. */
async function oldKernelBytes(rootDir: string): Promise<number> {
  let bytes = 0
  const versions = await readdir(join(rootDir, 'lib/modules')).catch(() => [] as string[])
  for (const v of versions) bytes += await treeContentBytesOf(join(rootDir, 'lib/modules', v))
  for (const f of await readdir(join(rootDir, 'boot')).catch(() => [] as string[])) {
    if (versions.some((v) => f.endsWith(`-${v}`))) bytes += (await lstat(join(rootDir, 'boot', f))).size
  }
  return bytes
}

async function treeContentBytesOf(dir: string): Promise<number> {
  let bytes = 0
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) bytes += 4096 + (await treeContentBytesOf(p))
    else bytes += Math.ceil((await lstat(p)).size / 4096) * 4096
  }
  return bytes
}

/** Bytes the tree takes in 4 KiB blocks (hard links counted once). */
async function treeContentBytes(dir: string): Promise<number> {
  const seen = new Set<number>()
  let bytes = 0
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name)
      const st = await lstat(p)
      if (st.nlink > 1 && !e.isDirectory()) {
        if (seen.has(st.ino)) continue
        seen.add(st.ino)
      }
      bytes += e.isDirectory() ? 4096 : Math.ceil(st.size / 4096) * 4096
      if (e.isDirectory()) await walk(p)
    }
  }
  await walk(dir)
  return bytes
}

/** Whether the input boots by BIOS and by UEFI already. */
async function bootState(
  image: string,
  input: InputImage,
): Promise<{ bios: 'kept' | 'missing' | 'absent'; uefi: 'kept' | 'missing' | 'absent' }> {
  let bios: 'kept' | 'missing' | 'absent' = 'absent'
  if (input.biosBoot) {
    const fh = await open(image, 'r')
    try {
      const core = new Uint8Array(SECTOR)
      await fh.read(core, 0, SECTOR, partitionOffset(input.biosBoot))
      const set = input.mbrBootCode.some((b) => b !== 0) && core.some((b) => b !== 0)
      bios = set ? 'kept' : 'missing'
    } finally {
      await fh.close()
    }
  }
  let uefi: 'kept' | 'missing' | 'absent' = 'absent'
  if (input.esp) {
    const names = await mdirList(image, partitionOffset(input.esp), '/EFI/BOOT').catch(() => [] as string[])
    uefi = names.some((n) => /bootx64\.efi/i.test(n)) ? 'kept' : 'missing'
  }
  return { bios, uefi }
}

/** GRUB's BIOS core image made in the tree as the build makes it (customize-script.ts). */
async function makeBiosCore(rootDir: string, rootUuid: string, signal?: AbortSignal): Promise<void> {
  await mkdir(join(rootDir, 'boot/grub/i386-pc'), { recursive: true })
  const script = biosCoreLines({ rootUuid, espVolumeId: '' })
    .map((l) => (typeof l === 'string' ? l : quoteArgv(l)))
    .join('\n')
  await runInTreeChroot(rootDir, `${script}\n`, { rootUuid, ...(signal ? { signal } : {}) })
}

/** The table grown so the root partition (the last one) holds `fsBytes`. */
function growRoot(input: InputImage, fsBytes: number, source: string): { gpt: Gpt; imageBytes: number } {
  const last = input.gpt.partitions.reduce((m, p) => (p.lastLba > m.lastLba ? p : m))
  if (last.number !== input.root.number)
    throw new InputError(
      'CONVERT_NO_SPACE',
      `Cannot grow "${source}": its root partition ${input.root.number} is not the last one on the disk (${last.number} is)`,
      { hint: 'convert without --grow, or grow the root partition of the input first' },
    )
  const rootStart = BigInt(partitionOffset(input.root) / SECTOR)
  const rootEnd = rootStart + BigInt(Math.ceil(fsBytes / MiB) * (MiB / SECTOR)) - 1n
  // The backup GPT (33 sectors) and its alignment gap take the last MiB, as in a build.
  const imageBytes = Number(rootEnd + 1n) * SECTOR + MiB
  const grown = resizeGpt(input.gpt, BigInt(imageBytes / SECTOR))
  return {
    gpt: {
      ...grown,
      partitions: grown.partitions.map((p) => (p.number === input.root.number ? { ...p, lastLba: rootEnd } : p)),
    },
    imageBytes,
  }
}

/** Writes the (grown) table, with GRUB's boot code when it was installed now (else the input's MBR boot code). */
async function writeTable(
  image: string,
  gpt: Gpt,
  input: InputImage,
  rootDir: string,
  newBios: boolean,
): Promise<void> {
  let bootCode = input.mbrBootCode
  const fh = await open(image, 'r+')
  try {
    if (newBios && input.biosBoot) {
      const coreLba = input.biosBoot.firstLba
      bootCode = patchBootImage(await readFile(join(rootDir, 'boot/grub/i386-pc/boot.img')), coreLba)
      const core = patchCoreImage(await readFile(join(rootDir, 'boot/grub/i386-pc/core.img')), coreLba)
      if (core.length > partitionBytes(input.biosBoot)) throw new Error('core.img exceeds the BIOS boot partition')
      await fh.write(core, 0, core.length, partitionOffset(input.biosBoot))
    }
    const { primary, backup, backupOffset } = encodeGpt(gpt, { bootCode })
    await fh.write(backup, 0, backup.length, Number(backupOffset))
    await fh.write(primary, 0, primary.length, 0)
    await fh.sync()
  } finally {
    await fh.close()
  }
}

/** Shim, signed GRUB and the stub config onto an ESP that lacks them, as the build fills it. */
async function fillEsp(image: string, input: InputImage, rootDir: string): Promise<'installed'> {
  const offset = partitionOffset(input.esp!)
  const have = new Set((await mdirList(image, offset, '/EFI').catch(() => [] as string[])).map((n) => n.toUpperCase()))
  const dirs = ['/EFI', '/EFI/BOOT', '/EFI/debian'].filter((d) => d !== '/EFI' || have.size === 0)
  for (const d of dirs) await mmd(image, offset, [d]).catch(() => {})
  for (const f of ESP_FILES) for (const to of f.to) await mcopy(image, offset, join(rootDir, f.from), to)
  const stub = join(rootDir, 'tmp/hwimage-esp-grub.cfg')
  await writeFile(stub, espGrubStub({ rootUuid: input.rootFs.uuid, espVolumeId: '' }))
  await mcopy(image, offset, stub, '/EFI/debian/grub.cfg')
  await mcopy(image, offset, stub, '/EFI/BOOT/grub.cfg')
  await rm(stub)
  return 'installed'
}

/** Partition rows of the manifest from the table and what each partition holds. */
function partitionRows(gpt: Gpt, input: InputImage): Manifest['partitions'] {
  return gpt.partitions.map((p) => ({
    number: p.number,
    name: p.name,
    typeGuid: p.typeGuid,
    uniqueGuid: p.uniqueGuid,
    firstLba: String(p.firstLba),
    lastLba: String(p.lastLba),
    ...(p.number === input.root.number
      ? { filesystem: 'ext4', uuid: input.rootFs.uuid, label: input.rootFs.label }
      : p.number === input.esp?.number
        ? { filesystem: 'vfat', uuid: '', label: '' }
        : { filesystem: 'none', uuid: '', label: '' }),
  }))
}
