// What a conversion needs to know of its input before it changes anything, each refusal a
// named error (docs/convert.md): a GPT, a root file system (ext4; not LUKS, not LVM), Debian
// 12 "bookworm" for amd64, and the ids the new root file system must keep (UUID, label,
// features). Read at byte offsets: our GPT codec, dumpe2fs and debugfs on the raw copy.

import { open } from 'node:fs/promises'
import { decodeGpt, type Gpt, type GptPartition } from '../disk/gpt.js'
import { GUID_BIOS_BOOT, GUID_ESP, GUID_LINUX_DATA, GUID_LINUX_ROOT_X86_64 } from '../disk/guid.js'
import { isExtFilesystem } from '../disk/ext4-superblock.js'
import { FormatError, InputError } from '../errors.js'
import { run } from '../tools/run.js'
import { fsDevice } from './ext4-tree.js'

const SECTOR = 512
const MiB = 1 << 20
const GUID_LINUX_LVM = 'E6D6D379-F507-44C2-A23C-238F2A3DF928'
const GUID_LINUX_LUKS = 'CA7D7CCB-63ED-4C53-861C-1742536059CC'

/** The root file system's parameters, as dumpe2fs reports them. */
export interface RootFs {
  uuid: string
  label: string
  features: string[]
  blockSize: number
  blockCount: number
  freeBlocks: number
  inodeSize: number
  inodeCount: number
}

/** The input's layout and identity. */
export interface InputImage {
  gpt: Gpt
  /** The first 440 bytes of the MBR (GRUB's boot.img when BIOS boot is set up). */
  mbrBootCode: Uint8Array
  root: GptPartition
  esp: GptPartition | undefined
  biosBoot: GptPartition | undefined
  rootFs: RootFs
  /** os-release's PRETTY_NAME, ID and VERSION_CODENAME. */
  os: { prettyName: string; id: string; codename: string }
  architecture: string
}

/** Byte offset of a partition. */
export function partitionOffset(p: GptPartition): number {
  return Number(p.firstLba) * SECTOR
}

/** Bytes of a partition. */
export function partitionBytes(p: GptPartition): number {
  return Number(p.lastLba - p.firstLba + 1n) * SECTOR
}

/** Parses os-release(5) text. */
export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const line of text.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim())
    if (m) out[m[1]!] = m[2]!.replace(/^"(.*)"$/, '$1').replace(/^'(.*)'$/, '$1')
  }
  return out
}

/** The Architecture of the dpkg package in a dpkg status file (the system's native architecture). */
export function dpkgArchitecture(status: string): string | undefined {
  for (const stanza of status.split(/\n\n+/)) {
    if (!/^Package: dpkg$/m.test(stanza)) continue
    return /^Architecture: (\S+)$/m.exec(stanza)?.[1]
  }
  return undefined
}

/** Parses `dumpe2fs -h` output. */
export function parseDumpe2fs(text: string): RootFs {
  const field = (name: string): string => {
    const m = new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(text)
    if (!m) throw new Error(`dumpe2fs printed no "${name}"`)
    return m[1]!.trim()
  }
  const label = field('Filesystem volume name')
  return {
    uuid: field('Filesystem UUID'),
    label: label === '<none>' ? '' : label,
    features: field('Filesystem features').split(/\s+/).filter(Boolean),
    blockSize: Number(field('Block size')),
    blockCount: Number(field('Block count')),
    freeBlocks: Number(field('Free blocks')),
    inodeSize: Number(field('Inode size')),
    inodeCount: Number(field('Inode count')),
  }
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

const has = (b: Uint8Array, at: number, text: string): boolean =>
  [...text].every((c, i) => b[at + i] === c.charCodeAt(0))

/** Reads the input's table, root file system and identity; throws a named InputError for what cannot be converted. */
export async function inspectInput(image: string, name: string, sizeBytes: number): Promise<InputImage> {
  const head = await readAt(image, 0, MiB)
  const tail = await readAt(image, Math.max(0, sizeBytes - MiB), Math.min(MiB, sizeBytes))
  let gpt: Gpt
  try {
    gpt = decodeGpt(head, tail, BigInt(sizeBytes), SECTOR).gpt
  } catch (e) {
    if (!(e instanceof FormatError)) throw e
    const mbr = head[510] === 0x55 && head[511] === 0xaa ? 'it has an MBR partition table' : 'it has no partition table'
    throw new FormatError('FORMAT_GPT', `Cannot convert "${name}": it has no GPT (${mbr})`, {
      hint: "hwimage convert reads images laid out like Debian's cloud images: GPT, root 1, BIOS boot 14, ESP 15",
      cause: e,
    })
  }
  const parts = gpt.partitions
  const byType = (guid: string) => parts.find((p) => p.typeGuid === guid)
  // Debian's images type root as x86-64 root (hwimage's) or Linux data; 1 first, as their layout numbers it.
  const candidates = [...parts].sort((a, b) => (a.number === 1 ? -1 : b.number === 1 ? 1 : a.number - b.number))
  let root: GptPartition | undefined
  for (const p of candidates) {
    if (p.typeGuid === GUID_ESP || p.typeGuid === GUID_BIOS_BOOT) continue
    const start = await readAt(image, partitionOffset(p), 4096)
    if (has(start, 0, 'LUKS\xba\xbe') || p.typeGuid === GUID_LINUX_LUKS)
      throw new InputError(
        'CONVERT_ROOT_ENCRYPTED',
        `Cannot convert "${name}": partition ${p.number} is LUKS-encrypted; hwimage convert does not open encrypted roots`,
        { hint: 'convert the unencrypted image, then encrypt on the machine' },
      )
    if (has(start, SECTOR + 24, 'LVM2 001') || p.typeGuid === GUID_LINUX_LVM)
      throw new InputError(
        'CONVERT_ROOT_LVM',
        `Cannot convert "${name}": partition ${p.number} is an LVM physical volume; hwimage convert needs the root file system on a partition`,
        { hint: "use an image whose root is an ext4 partition, as Debian's cloud images have" },
      )
    if (
      (p.typeGuid === GUID_LINUX_ROOT_X86_64 || p.typeGuid === GUID_LINUX_DATA || p.number === 1) &&
      isExtFilesystem(start.subarray(0, 2048))
    ) {
      root = p
      break
    }
  }
  if (!root)
    throw new InputError(
      'CONVERT_NO_ROOT',
      `Cannot convert "${name}": no partition holds an ext4 root file system (partitions: ${parts.map((p) => p.number).join(', ') || 'none'})`,
      { hint: "hwimage convert needs the root file system as ext4 on a GPT partition (root 1 in Debian's layout)" },
    )
  const device = fsDevice(image, partitionOffset(root))
  const rootFs = parseDumpe2fs((await run(['dumpe2fs', '-h', device])).stdout)
  const cat = async (path: string): Promise<string | undefined> => {
    const r = await run(['debugfs', '-R', `cat ${path}`, device])
    // debugfs prints an error on stderr and nothing on stdout for a missing file.
    return r.stdout === '' && /not found|File not found/i.test(r.stderr) ? undefined : r.stdout
  }
  const osText = (await cat('/usr/lib/os-release')) ?? (await cat('/etc/os-release'))
  if (!osText)
    throw new InputError('CONVERT_NOT_DEBIAN', `Cannot convert "${name}": its root file system has no os-release`, {
      hint: 'hwimage convert reads Debian 12 "bookworm" images',
    })
  const rel = parseOsRelease(osText)
  const os = {
    prettyName: rel.PRETTY_NAME ?? rel.NAME ?? 'an unnamed system',
    id: rel.ID ?? '',
    codename: rel.VERSION_CODENAME ?? '',
  }
  if (os.id !== 'debian')
    throw new InputError('CONVERT_NOT_DEBIAN', `Cannot convert "${name}": it is ${os.prettyName}, not Debian`, {
      hint: 'hwimage convert reads Debian 12 "bookworm" images',
    })
  if (os.codename !== 'bookworm')
    throw new InputError(
      'CONVERT_NOT_BOOKWORM',
      `Cannot convert "${name}": it is ${os.prettyName}${os.codename ? ` ("${os.codename}")` : ''}, not Debian 12 "bookworm"`,
      { hint: 'hwimage convert reads Debian 12 "bookworm" images' },
    )
  const status = await cat('/var/lib/dpkg/status')
  const architecture = status ? dpkgArchitecture(status) : undefined
  if (!architecture)
    throw new InputError('CONVERT_NOT_DEBIAN', `Cannot convert "${name}": it has no dpkg database with dpkg in it`, {
      hint: 'hwimage convert changes the kernel with apt: the image must be a Debian system',
    })
  if (architecture !== 'amd64')
    throw new InputError('CONVERT_NOT_AMD64', `Cannot convert "${name}": it is built for ${architecture}, not amd64`, {
      hint: 'hwimage convert makes amd64 hardware images',
    })
  return {
    gpt,
    mbrBootCode: head.slice(0, 440),
    root,
    esp: byType(GUID_ESP),
    biosBoot: byType(GUID_BIOS_BOOT),
    rootFs,
    os,
    architecture,
  }
}
