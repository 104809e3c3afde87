// `hwimage inspect`: what an image (or disk) holds — partition table, alignment,
// boot capabilities (GRUB BIOS boot code, ESP with shim and GRUB), kernel — and
// the problems found. Reads only: the table through our GPT codec, the ESP
// through mtools, the root filesystem through debugfs, all at byte offsets.

import { open, readFile, realpath, stat } from 'node:fs/promises'
import { decodeGpt, validateGpt, type Gpt, type GptProblem } from '../disk/gpt.js'
import { GUID_BIOS_BOOT, GUID_ESP, GUID_LINUX_ROOT_X86_64, GUID_LINUX_DATA } from '../disk/guid.js'
import { FormatError, InputError } from '../errors.js'
import { mdirList } from '../tools/mtools.js'
import { run } from '../tools/run.js'

const MiB = 1024 * 1024

/** What inspect reports. */
export interface Inspection {
  path: string
  sizeBytes: number
  sectorSize: number
  table: {
    diskGuid: string
    primaryOk: boolean
    backupOk: boolean
    partitions: {
      number: number
      name: string
      type: string
      typeGuid: string
      firstLba: string
      lastLba: string
      sizeBytes: number
      aligned: boolean
    }[]
  }
  boot: { bios: boolean; biosDetail: string; uefi: boolean; uefiDetail: string; secureBootChain: boolean }
  kernel: { versions: string[] } | null
  problems: GptProblem[]
}

const TYPE_NAMES: Record<string, string> = {
  [GUID_BIOS_BOOT]: 'BIOS boot',
  [GUID_ESP]: 'EFI System',
  [GUID_LINUX_ROOT_X86_64]: 'Linux root (x86-64)',
  [GUID_LINUX_DATA]: 'Linux filesystem',
  'EBD0A0A2-B9E5-4433-87C0-68B6B72699C7': 'Microsoft basic data',
}

const MAGICS: [string, number[]][] = [
  ['zstd', [0x28, 0xb5, 0x2f, 0xfd]],
  ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ['gzip', [0x1f, 0x8b]],
  ['qcow2', [0x51, 0x46, 0x49, 0xfb]],
]

async function sizeOf(path: string): Promise<number> {
  const st = await stat(path)
  if (st.isFile()) return st.size
  if (st.isBlockDevice()) {
    // A block device's stat size is 0; sysfs gives its size in 512-byte units.
    const name = (await realpath(path)).split('/').pop()!
    return Number((await readFile(`/sys/class/block/${name}/size`, 'utf8')).trim()) * 512
  }
  throw new InputError('FORMAT_IMAGE', `Cannot inspect "${path}": not a regular file or block device`)
}

async function readAt(path: string, offset: number, length: number): Promise<Uint8Array> {
  const fh = await open(path, 'r')
  try {
    const buf = new Uint8Array(length)
    const { bytesRead } = await fh.read(buf, 0, length, offset)
    return buf.subarray(0, bytesRead)
  } finally {
    await fh.close()
  }
}

/** Inspects a raw image file or block device. */
export async function inspectImage(path: string): Promise<Inspection> {
  const sizeBytes = await sizeOf(path).catch((e: NodeJS.ErrnoException) => {
    if (e instanceof InputError) throw e
    throw new InputError('NOT_FOUND', `Cannot inspect "${path}": ${e.code === 'ENOENT' ? 'no such file' : e.message}`)
  })
  const head = await readAt(path, 0, Math.min(sizeBytes, MiB))
  for (const [name, magic] of MAGICS) {
    if (magic.every((b, i) => head[i] === b)) {
      throw new InputError('FORMAT_IMAGE', `Cannot inspect "${path}": it is ${name}-compressed, not a raw image`, {
        hint:
          name === 'qcow2'
            ? 'convert it: qemu-img convert -O raw IMAGE out.img'
            : `decompress it first, or inspect the .img beside it`,
      })
    }
  }
  const tail = await readAt(path, Math.max(0, sizeBytes - MiB), Math.min(sizeBytes, MiB))
  let decoded: ReturnType<typeof decodeGpt> | undefined
  let sectorSize = 512
  let firstError: unknown
  for (const ss of [512, 4096]) {
    try {
      decoded = decodeGpt(head, tail, BigInt(sizeBytes), ss)
      sectorSize = ss
      break
    } catch (e) {
      firstError ??= e
    }
  }
  if (!decoded) {
    throw new FormatError('FORMAT_GPT', `Cannot inspect "${path}": no usable GPT (${(firstError as Error).message})`, {
      hint: 'the image has no valid primary or backup GPT; rebuild it or restore the table with sgdisk',
    })
  }
  const { gpt } = decoded
  const problems = [...decoded.problems, ...validateGpt(gpt)]
  const ss = BigInt(sectorSize)
  const partitions = gpt.partitions.map((p) => ({
    number: p.number,
    name: p.name,
    type: TYPE_NAMES[p.typeGuid] ?? 'unknown',
    typeGuid: p.typeGuid,
    firstLba: String(p.firstLba),
    lastLba: String(p.lastLba),
    sizeBytes: Number((p.lastLba - p.firstLba + 1n) * ss),
    aligned: (p.firstLba * ss) % BigInt(MiB) === 0n && ((p.lastLba + 1n) * ss) % BigInt(MiB) === 0n,
  }))
  const boot = await bootCapabilities(path, head, gpt)
  const kernel = await kernelVersions(path, gpt)
  return {
    path,
    sizeBytes,
    sectorSize,
    table: { diskGuid: gpt.diskGuid, primaryOk: decoded.primaryOk, backupOk: decoded.backupOk, partitions },
    boot,
    kernel,
    problems,
  }
}

async function bootCapabilities(path: string, head: Uint8Array, gpt: Gpt): Promise<Inspection['boot']> {
  const ss = gpt.sectorSize
  const mbrCode = head.subarray(0, 440)
  const hasBootCode = mbrCode.some((b) => b !== 0) && Buffer.from(mbrCode).includes('GRUB')
  const biosPart = gpt.partitions.find((p) => p.typeGuid === GUID_BIOS_BOOT)
  let bios = false
  let biosDetail = 'no GRUB boot code in the MBR'
  if (hasBootCode) {
    // boot.img's kernel_sector (0x5c) must point at core.img in the BIOS boot partition.
    const coreLba = new DataView(head.buffer, head.byteOffset).getBigUint64(0x5c, true)
    if (!biosPart) biosDetail = 'GRUB boot code, but no BIOS boot partition'
    else if (coreLba !== biosPart.firstLba)
      biosDetail = `GRUB boot code points at LBA ${coreLba}, the BIOS boot partition starts at ${biosPart.firstLba}`
    else {
      const core = await readAt(path, Number(coreLba) * ss, 512)
      const next = new DataView(core.buffer, core.byteOffset).getBigUint64(500, true)
      bios = next === coreLba + 1n
      biosDetail = bios
        ? `GRUB boot.img → core.img at LBA ${coreLba}`
        : `core.img at LBA ${coreLba} does not chain to LBA ${coreLba + 1n}`
    }
  }
  const espPart = gpt.partitions.find((p) => p.typeGuid === GUID_ESP)
  let uefi = false
  let secureBootChain = false
  let uefiDetail = 'no EFI System Partition'
  if (espPart) {
    const offset = Number(espPart.firstLba) * ss
    const files = (await mdirList(path, offset, '/EFI/BOOT').catch(() => [] as string[])).map((f) =>
      f.split('/').pop()!.toUpperCase(),
    )
    const has = (n: string) => files.includes(n)
    uefi = has('BOOTX64.EFI')
    secureBootChain = uefi && has('GRUBX64.EFI') && has('MMX64.EFI')
    uefiDetail = uefi
      ? `ESP: EFI/BOOT/${files.filter((f) => f.endsWith('.EFI')).join(', ')}${secureBootChain ? ' (shim → GRUB)' : ''}`
      : 'ESP without EFI/BOOT/BOOTX64.EFI'
  }
  return { bios, biosDetail, uefi, uefiDetail, secureBootChain }
}

async function kernelVersions(path: string, gpt: Gpt): Promise<Inspection['kernel']> {
  const root =
    gpt.partitions.find((p) => p.typeGuid === GUID_LINUX_ROOT_X86_64) ??
    gpt.partitions.find((p) => p.typeGuid === GUID_LINUX_DATA)
  if (!root) return null
  const offset = Number(root.firstLba) * gpt.sectorSize
  // debugfs reads the ext4 filesystem at an offset of the file (unix_io's "?offset=" option).
  const r = await run(['debugfs', '-R', 'ls -p /boot', `${path}?offset=${offset}`], { okStatus: [0, 1] }).catch(
    () => null,
  )
  if (!r) return null
  const versions = r.stdout
    .split('\n')
    .map((l) => l.split('/')[5] ?? '')
    .filter((n) => n.startsWith('vmlinuz-'))
    .map((n) => n.slice('vmlinuz-'.length))
  return { versions }
}
