// What the installer knows about its target before touching it: a block device (size,
// logical sector size and identity from sysfs, Documentation/ABI/stable/sysfs-block) or a
// regular file (size from stat, 512-byte sectors).

import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { DeviceError } from '../errors.js'
import { deviceError } from '../io/target-device.js'

/** A target as found. */
export interface TargetInfo {
  /** As given on the command line. */
  path: string
  kind: 'block' | 'file'
  /** Bytes. */
  size: number
  /** Logical sector size: what LBAs count in. */
  sectorSize: number
  /** Block devices: the sysfs name (sda, nvme0n1, loop3) and "MAJ:MIN". */
  name?: string
  devno?: string
  /** Block devices: this is a partition of another disk. */
  isPartition?: boolean
  /** Block devices: sysfs names of its partitions. */
  partitions?: string[]
  /** Block devices: whether the kernel scans it for partitions (sysfs `partscan`; false for plain loop devices). */
  partitionScan?: boolean
  model?: string
  vendor?: string
  serial?: string
  wwn?: string
  /** Regular files: device and inode, to find loop devices and swap files backed by it. */
  fileId?: { dev: number; ino: number }
}

/** sysfs, overridable in tests. */
export const SYS = { root: '/sys' }

/** major and minor of a Linux dev_t as Node reports it (glibc's gnu_dev_major/minor encoding). */
export function devParts(dev: number): { major: number; minor: number } {
  const lo = dev % 2 ** 32
  const hi = Math.floor(dev / 2 ** 32)
  return {
    major: ((lo >>> 8) & 0xfff) | (hi & 0xfffff000),
    minor: (lo & 0xff) | ((lo >>> 12) & 0xffffff00),
  }
}

/** Reads a sysfs attribute, trimmed; undefined if absent or empty. */
export async function readAttr(file: string): Promise<string | undefined> {
  try {
    const t = (await fsp.readFile(file, 'utf8')).trim()
    return t === '' ? undefined : t
  } catch {
    return undefined
  }
}

/** The sysfs directory of a block device number, e.g. /sys/devices/…/block/sda/sda1. */
export async function sysfsDir(devno: string): Promise<string | undefined> {
  try {
    return await fsp.realpath(path.join(SYS.root, 'dev/block', devno))
  } catch {
    return undefined
  }
}

/** Sysfs names of a device's partitions (subdirectories with a `partition` attribute). */
export async function partitionsOf(dir: string): Promise<string[]> {
  const out: string[] = []
  for (const e of await fsp.readdir(dir, { withFileTypes: true }).catch(() => [])) {
    if (e.isDirectory() && (await readAttr(path.join(dir, e.name, 'partition'))) !== undefined) out.push(e.name)
  }
  return out.sort()
}

/** Inspects a target path: block device or regular file. */
export async function inspectTarget(target: string): Promise<TargetInfo> {
  let st: Awaited<ReturnType<typeof fsp.stat>>
  try {
    st = await fsp.stat(target)
  } catch (e) {
    const err = deviceError(`Cannot use target "${target}"`, e)
    if (err.code === 'NOT_FOUND' && !target.startsWith('/dev/')) {
      throw new DeviceError('NOT_FOUND', err.message, {
        cause: e,
        hint: `an image file target must exist, at its final size: truncate -s 20G ${target}`,
      })
    }
    throw err
  }
  if (st.isFile()) {
    return { path: target, kind: 'file', size: st.size, sectorSize: 512, fileId: { dev: st.dev, ino: st.ino } }
  }
  if (!st.isBlockDevice()) {
    throw new DeviceError('TARGET_INVALID', `Cannot use target "${target}": not a block device or a regular file`, {
      hint: 'give a disk such as /dev/sdb or /dev/nvme1n1, or an image file',
    })
  }
  const { major, minor } = devParts(st.rdev)
  const devno = `${major}:${minor}`
  const dir = await sysfsDir(devno)
  if (!dir)
    throw new DeviceError('TARGET_INVALID', `Cannot use target "${target}": no sysfs entry for block device ${devno}`)
  const isPartition = (await readAttr(path.join(dir, 'partition'))) !== undefined
  const disk = isPartition ? path.dirname(dir) : dir
  const sectors = Number(await readAttr(path.join(dir, 'size')))
  const sectorSize = Number((await readAttr(path.join(disk, 'queue/logical_block_size'))) ?? 512)
  const info: TargetInfo = {
    path: target,
    kind: 'block',
    // sysfs "size" counts 512-byte units whatever the logical block size (include/linux/blkdev.h SECTOR_SHIFT).
    size: sectors * 512,
    sectorSize,
    name: path.basename(dir),
    devno,
    isPartition,
    partitions: isPartition ? [] : await partitionsOf(dir),
  }
  const partscan = await readAttr(path.join(disk, 'partscan'))
  if (partscan !== undefined) info.partitionScan = partscan !== '0'
  const model = await readAttr(path.join(disk, 'device/model'))
  const vendor = await readAttr(path.join(disk, 'device/vendor'))
  const serial = (await readAttr(path.join(disk, 'device/serial'))) ?? (await readAttr(path.join(disk, 'serial')))
  const wwn = (await readAttr(path.join(disk, 'wwid'))) ?? (await readAttr(path.join(disk, 'device/wwid')))
  if (model) info.model = model
  if (vendor) info.vendor = vendor
  if (serial) info.serial = serial
  if (wwn) info.wwn = wwn
  return info
}

/** The partition table on a target, read-only: "GPT", "MBR", or undefined when it has none. */
export async function readExistingTable(info: TargetInfo): Promise<string | undefined> {
  let head: Buffer
  try {
    const fh = await fsp.open(info.path, 'r')
    try {
      head = Buffer.alloc(8192)
      const { bytesRead } = await fh.read(head, 0, head.length, 0)
      head = head.subarray(0, bytesRead)
    } finally {
      await fh.close()
    }
  } catch (e) {
    throw deviceError(`Cannot read "${info.path}"`, e)
  }
  const sig = (at: number): boolean => head.length >= at + 8 && head.toString('latin1', at, at + 8) === 'EFI PART'
  if (sig(512) || sig(4096)) return 'GPT'
  // 0x55AA alone is also a FAT or NTFS boot sector: count it as a table only with a partition record in use.
  const records = [0, 1, 2, 3].some((i) => head.length >= 512 && head[446 + i * 16 + 4] !== 0)
  if (head.length >= 512 && head[510] === 0x55 && head[511] === 0xaa && records) return 'MBR'
  if ((info.partitions?.length ?? 0) > 0) return `partitioned (${info.partitions!.join(', ')})`
  return undefined
}
