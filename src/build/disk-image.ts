// root filesystem tree → disk image, without loop devices or mounts: a sparse file,
// mkfs.ext4 -d and mkfs.vfat writing at their partitions' offsets, mtools filling
// the ESP, our GPT writer, and GRUB's BIOS boot code patched in by our own code.
// Every byte is written in place, so the file's allocation map is exactly what the
// image holds (the .bmap is made from it).

import { open, readFile, writeFile, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { encodeGpt, newGpt, type Gpt } from '../disk/gpt.js'
import { GUID_BIOS_BOOT, GUID_ESP, GUID_LINUX_ROOT_X86_64, randomGuid } from '../disk/guid.js'
import { patchBootImage, patchCoreImage } from '../disk/grub-bios.js'
import { ext4Env, mkfsExt4Argv, mkfsFatArgv } from '../tools/mkfs.js'
import { mcopyArgv, mmdArgv } from '../tools/mtools.js'
import { run } from '../tools/run.js'
import { withContext } from '../errors.js'
import { fixExt4InodeTimes } from './reproducible.js'
import { SECTOR, type ImageLayout, partitionOf } from './layout.js'
import { espGrubStub, type ImageIds } from './customize-script.js'

/** Where the ESP's files come from in the tree, and where they go (DESIGN.md "UEFI path"). */
export const ESP_FILES: readonly { from: string; to: string[] }[] = [
  // shim is the removable-media loader; it chain-loads grubx64.efi from its own directory.
  { from: 'usr/lib/shim/shimx64.efi.signed', to: ['/EFI/BOOT/BOOTX64.EFI', '/EFI/debian/shimx64.efi'] },
  {
    from: 'usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed',
    to: ['/EFI/BOOT/grubx64.efi', '/EFI/debian/grubx64.efi'],
  },
  { from: 'usr/lib/shim/mmx64.efi.signed', to: ['/EFI/BOOT/mmx64.efi', '/EFI/debian/mmx64.efi'] },
  // fallback: on first boot from the removable path it reads EFI/debian/BOOTX64.CSV and
  // creates the firmware's "debian" boot entry, as an installed Debian system has.
  { from: 'usr/lib/shim/fbx64.efi.signed', to: ['/EFI/BOOT/fbx64.efi'] },
  { from: 'usr/lib/shim/BOOTX64.CSV', to: ['/EFI/debian/BOOTX64.CSV'] },
]

/** What was written: the partition table and identifiers. */
export interface WrittenImage {
  gpt: Gpt
  ids: ImageIds
}

/** Makes the disk image file from a finished root tree. */
export async function writeDiskImage(opts: {
  image: string
  rootDir: string
  layout: ImageLayout
  ids: ImageIds
  /** SOURCE_DATE_EPOCH: every time the file systems record (reproducible.ts); the current time when absent. */
  sourceDateEpoch?: number
  signal?: AbortSignal
  onStep?: (step: string) => void
}): Promise<WrittenImage> {
  const { image, rootDir, layout, ids } = opts
  const epoch = opts.sourceDateEpoch
  const dateEnv: Record<string, string> = epoch === undefined ? {} : { SOURCE_DATE_EPOCH: String(epoch) }
  const step = opts.onStep ?? (() => {})
  const root = partitionOf(layout, 'root')
  const esp = partitionOf(layout, 'esp')
  const bios = partitionOf(layout, 'bios-boot')

  // A fresh sparse file: what is never written stays a hole.
  await writeFile(image, new Uint8Array(0))
  const fh = await open(image, 'r+')
  try {
    await fh.truncate(layout.imageBytes)
  } finally {
    await fh.close()
  }

  step('root filesystem')
  const ext4Argv = mkfsExt4Argv({
    image,
    offsetBytes: root.offset,
    sizeBytes: layout.rootFsBytes,
    uuid: ids.rootUuid,
    label: 'root',
    fromDir: rootDir,
  })
  // The directory hash seed is otherwise random (mke2fs -E hash_seed=, man mke2fs).
  if (ids.rootHashSeed) ext4Argv[ext4Argv.indexOf('-E') + 1] += `,hash_seed=${ids.rootHashSeed}`
  const fakeTime = epoch === undefined ? {} : { E2FSPROGS_FAKE_TIME: String(epoch) }
  await run(ext4Argv, { env: { ...ext4Env, ...fakeTime }, ...(opts.signal ? { signal: opts.signal } : {}) })
    .then(() => (epoch === undefined ? 0 : fixExt4InodeTimes(image, root.offset, epoch, opts.signal)))
    .catch((e) => {
      throw withContext('making the root filesystem (mkfs.ext4 -d)', e)
    })

  step('EFI system partition')
  const fatArgv = mkfsFatArgv({
    image,
    offsetBytes: esp.offset,
    sizeBytes: esp.size,
    label: 'ESP',
    volumeId: ids.espVolumeId.replace('-', ''),
    fatBits: 32,
  })
  // --invariant: no time or random value in the boot sector (the volume id stays ours, -i).
  if (epoch !== undefined) fatArgv.splice(1, 0, '--invariant')
  await run(fatArgv, { env: dateEnv, ...(opts.signal ? { signal: opts.signal } : {}) })
  await fillEsp(image, esp.offset, rootDir, ids, dateEnv).catch((e) => {
    throw withContext('filling the ESP (mtools)', e)
  })

  step('partition table and BIOS boot code')
  const gpt: Gpt = {
    ...newGpt({
      sectorSize: SECTOR,
      diskSectors: BigInt(layout.imageBytes / SECTOR),
      ...(ids.diskGuid ? { diskGuid: ids.diskGuid } : {}),
    }),
    partitions: layout.partitions
      .map((p) => ({
        number: p.number,
        typeGuid: p.role === 'root' ? GUID_LINUX_ROOT_X86_64 : p.role === 'esp' ? GUID_ESP : GUID_BIOS_BOOT,
        uniqueGuid: ids.partitionGuids?.[p.number] ?? randomGuid(),
        firstLba: BigInt(p.offset / SECTOR),
        lastLba: BigInt((p.offset + p.size) / SECTOR - 1),
        attributes: 0n,
        name: p.name,
      }))
      .sort((a, b) => a.number - b.number),
  }
  const coreLba = BigInt(bios.offset / SECTOR)
  const bootImg = await readFile(join(rootDir, 'boot/grub/i386-pc/boot.img'))
  const coreImg = await readFile(join(rootDir, 'boot/grub/i386-pc/core.img'))
  if (coreImg.length > bios.size)
    throw withContext(
      'placing GRUB core.img',
      new Error(`core.img (${coreImg.length} bytes) exceeds the BIOS boot partition`),
    )
  const { primary, backup, backupOffset } = encodeGpt(gpt, { bootCode: patchBootImage(bootImg, coreLba) })

  const out = await open(image, 'r+')
  try {
    await writeAll(out, patchCoreImage(coreImg, coreLba), bios.offset)
    await writeAll(out, backup, Number(backupOffset))
    await writeAll(out, primary, 0)
    await out.sync()
  } finally {
    await out.close()
  }
  return { gpt, ids }
}

async function fillEsp(
  image: string,
  offset: number,
  rootDir: string,
  ids: ImageIds,
  dateEnv: Record<string, string>,
): Promise<void> {
  // mtools stamps directory entries with SOURCE_DATE_EPOCH when it is set (else the current time).
  const env = { ...MTOOLS_ENV, ...dateEnv }
  const mmd = (dirs: string[]) => run(mmdArgv(image, offset, dirs), { env })
  const mcopy = (from: string, to: string) => run(mcopyArgv(image, offset, from, to), { env })
  await mmd(['/EFI', '/EFI/BOOT', '/EFI/debian'])
  for (const f of ESP_FILES) for (const to of f.to) await mcopy(join(rootDir, f.from), to)
  const tmp = await mkdtemp(join(tmpdir(), 'hwimage-esp-'))
  try {
    const stub = join(tmp, 'grub.cfg')
    await writeFile(stub, espGrubStub(ids))
    // Debian's signed GRUB reads its config from EFI/debian; EFI/BOOT gets a copy for other loaders.
    await mcopy(stub, '/EFI/debian/grub.cfg')
    await mcopy(stub, '/EFI/BOOT/grub.cfg')
  } finally {
    await rm(tmp, { recursive: true, force: true })
  }
}

// As tools/mtools.ts runs them: mtools refuses FAT geometry it finds odd unless told not to check.
const MTOOLS_ENV = { MTOOLS_SKIP_CHECK: '1', MTOOLS_NO_VFAT: undefined }

async function writeAll(fh: Awaited<ReturnType<typeof open>>, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0
  while (done < bytes.length) {
    const { bytesWritten } = await fh.write(bytes, done, bytes.length - done, position + done)
    done += bytesWritten
  }
}
