// An ext4 file system's tree read out into a directory, and back, with e2fsprogs' own
// tools at a byte offset of an image file (no loop device, no mount).
//
// `debugfs rdump` copies regular files, directories and symbolic links with their modes,
// owners and times, but not what mke2fs -d would need to write the same tree back
// (debugfs/dump.c, e2fsprogs 1.47.0): hard links come out as separate copies, device
// nodes and FIFOs are skipped, extended attributes (file capabilities: security.capability)
// are dropped. So the tree is also listed, one `ls -p` batch per directory level in one
// debugfs process each, and the listing repairs the copy: hard links linked again, device
// nodes and FIFOs made with their numbers (`stat`), and every extended attribute recorded
// (`ea_list`, `ea_get`) to be set again on the new file system (`ea_set`) after mke2fs -d.

import { link, mkdir, readFile, rm, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { run } from '../tools/run.js'

/** One entry of the listing: its path in the tree ("/etc/fstab"), inode, mode (with type bits). */
export interface TreeEntry {
  path: string
  inode: number
  mode: number
}

/** An extended attribute to set again: on `path`, `name`, its value in a file of the scratch directory. */
export interface SavedXattr {
  path: string
  name: string
  valueFile: string
}

/** What reading a tree out found beyond what rdump copies. */
export interface TreeReadout {
  entries: TreeEntry[]
  hardLinks: number
  specialFiles: number
  xattrs: SavedXattr[]
}

const S_IFMT = 0o170000
const S_IFDIR = 0o040000
const S_IFREG = 0o100000
const S_IFCHR = 0o020000
const S_IFBLK = 0o060000
const S_IFIFO = 0o010000

/** The device name debugfs opens for a file system `offset` bytes into `image` (ext2fs_open2's "?io_options"). */
export function fsDevice(image: string, offset: number): string {
  return `${image}?offset=${offset}`
}

/** A path quoted for debugfs' command parser (libss: double quotes group words). */
export function debugfsQuote(path: string): string {
  if (path.includes('"') || path.includes('\n'))
    throw new Error(`Cannot name "${path}" to debugfs: it holds a quote or a newline`)
  return `"${path}"`
}

/** Parses `ls -p` output lines ("/ino/mode/uid/gid/name/size/") of directory `dir`. */
export function parseLsP(dir: string, text: string): TreeEntry[] {
  const out: TreeEntry[] = []
  for (const line of text.split('\n')) {
    if (!line.startsWith('/')) continue
    const parts = line.split('/')
    // ['', ino, mode, uid, gid, name, size, '']
    if (parts.length !== 8) continue
    const name = parts[5]!
    if (name === '.' || name === '..' || name === '') continue
    out.push({
      path: dir === '/' ? `/${name}` : `${dir}/${name}`,
      inode: Number(parts[1]),
      mode: parseInt(parts[2]!, 8),
    })
  }
  return out
}

/** Splits debugfs -f output into each request's answer (debugfs echoes "debugfs: REQUEST" before each). */
export function splitAnswers(text: string): string[] {
  const answers: string[] = []
  let current: string[] | undefined
  for (const line of text.replace(/\n$/, '').split('\n')) {
    if (line.startsWith('debugfs: ')) {
      current = []
      answers.push('')
      continue
    }
    if (current) answers[answers.length - 1] += line + '\n'
  }
  return answers
}

/** Runs many debugfs requests in one process; returns each request's answer, in order. */
export async function debugfsBatch(
  device: string,
  requests: string[],
  opts: { write?: boolean; signal?: AbortSignal } = {},
): Promise<string[]> {
  if (requests.length === 0) return []
  const argv = ['debugfs', ...(opts.write ? ['-w'] : []), '-f', '-', device]
  const r = await run(argv, { input: requests.join('\n') + '\n', ...(opts.signal ? { signal: opts.signal } : {}) })
  const answers = splitAnswers(r.stdout)
  if (answers.length !== requests.length)
    throw new Error(`debugfs answered ${answers.length} of ${requests.length} requests on ${device}`)
  return answers
}

/** Lists every entry of the tree, level by level (one debugfs process per directory depth). */
export async function listTree(device: string, signal?: AbortSignal): Promise<TreeEntry[]> {
  const all: TreeEntry[] = []
  let dirs = ['/']
  while (dirs.length > 0) {
    const answers = await debugfsBatch(
      device,
      dirs.map((d) => `ls -p ${debugfsQuote(d)}`),
      signal ? { signal } : {},
    )
    const next: string[] = []
    answers.forEach((text, i) => {
      for (const e of parseLsP(dirs[i]!, text)) {
        all.push(e)
        if ((e.mode & S_IFMT) === S_IFDIR) next.push(e.path)
      }
    })
    dirs = next
  }
  return all
}

/** Names of the extended attributes in one `ea_list` answer ("  name (len) = …" or "  name = "…" (len)"). */
export function parseEaList(text: string): string[] {
  const names: string[] = []
  for (const line of text.split('\n')) {
    const m = /^ {2}(\S+?)(?: \(\d+\))? = /.exec(line)
    if (m) names.push(m[1]!)
  }
  return names
}

/** Device major and minor from a `stat` answer ("Device major/minor number: 01:03 (hex 01:03)"). */
export function parseDeviceNumbers(text: string): { major: number; minor: number } | undefined {
  const m = /Device major\/minor number: (\d+):(\d+)/.exec(text)
  return m ? { major: Number(m[1]), minor: Number(m[2]) } : undefined
}

/**
 * Reads the file system's tree into `dir` (which must not exist): rdump, then hard links,
 * device nodes and FIFOs repaired, and extended attributes saved under `scratch`.
 */
export async function readTreeOut(
  device: string,
  dir: string,
  scratch: string,
  signal?: AbortSignal,
): Promise<TreeReadout> {
  const sig = signal ? { signal } : {}
  await mkdir(dir, { recursive: true })
  // rdump of "/" writes the root's entries into DIR itself (dump.c: rdump_dirent on "/").
  await run(['debugfs', '-R', `rdump / ${debugfsQuote(dir)}`, device], sig)
  const entries = await listTree(device, signal)

  // Hard links: the first path of an inode stays, the others become links to it.
  const firstOf = new Map<number, string>()
  let hardLinks = 0
  for (const e of entries) {
    if ((e.mode & S_IFMT) !== S_IFREG) continue
    const first = firstOf.get(e.inode)
    if (first === undefined) {
      firstOf.set(e.inode, e.path)
      continue
    }
    await unlink(join(dir, e.path))
    await link(join(dir, first), join(dir, e.path))
    hardLinks++
  }

  // Device nodes and FIFOs, which rdump skips.
  const special = entries.filter((e) => [S_IFCHR, S_IFBLK, S_IFIFO].includes(e.mode & S_IFMT))
  const stats = await debugfsBatch(
    device,
    special.map((e) => `stat <${e.inode}>`),
    sig,
  )
  for (const [i, e] of special.entries()) {
    const type = e.mode & S_IFMT
    const perm = (e.mode & 0o7777).toString(8)
    const to = join(dir, e.path)
    await rm(to, { force: true })
    if (type === S_IFIFO) await run(['mknod', '-m', perm, to, 'p'], sig)
    else {
      const nums = parseDeviceNumbers(stats[i]!)
      if (!nums) throw new Error(`debugfs gave no device numbers for ${e.path}`)
      await run(['mknod', '-m', perm, to, type === S_IFCHR ? 'c' : 'b', String(nums.major), String(nums.minor)], sig)
    }
    // Owner: rdump does not make the node, so set it from the inode.
    const owner = /User:\s+(\d+)\s+Group:\s+(\d+)/.exec(stats[i]!)
    if (owner) await run(['chown', '-h', `${owner[1]}:${owner[2]}`, to], sig)
  }

  // Extended attributes, by inode (once per inode: hard links share them).
  const byInode = [...new Map(entries.map((e) => [e.inode, e])).values()]
  const lists = await debugfsBatch(
    device,
    byInode.map((e) => `ea_list <${e.inode}>`),
    sig,
  )
  const wanted: { entry: TreeEntry; name: string }[] = []
  lists.forEach((text, i) => {
    // system.data is inline data (the file's bytes, which rdump copied), not an attribute to set.
    for (const name of parseEaList(text)) if (name !== 'system.data') wanted.push({ entry: byInode[i]!, name })
  })
  await mkdir(scratch, { recursive: true })
  const xattrs: SavedXattr[] = wanted.map((w, i) => ({
    path: w.entry.path,
    name: w.name,
    valueFile: join(scratch, `xattr-${i}`),
  }))
  await debugfsBatch(
    device,
    wanted.map((w, i) => `ea_get -f ${debugfsQuote(xattrs[i]!.valueFile)} <${w.entry.inode}> ${w.name}`),
    sig,
  )
  for (const x of xattrs) await readFile(x.valueFile) // each value was written: a missing one throws here
  return { entries, hardLinks, specialFiles: special.length, xattrs }
}

/** Sets saved extended attributes again on the new file system (paths that no longer exist are skipped). */
export async function writeXattrs(
  device: string,
  xattrs: SavedXattr[],
  exists: (path: string) => boolean,
  signal?: AbortSignal,
): Promise<number> {
  const todo = xattrs.filter((x) => exists(x.path))
  const answers = await debugfsBatch(
    device,
    todo.map((x) => `ea_set -f ${debugfsQuote(x.valueFile)} ${debugfsQuote(x.path)} ${x.name}`),
    { write: true, ...(signal ? { signal } : {}) },
  )
  answers.forEach((a, i) => {
    if (a.trim() !== '') throw new Error(`debugfs ea_set ${todo[i]!.name} on ${todo[i]!.path}: ${a.trim()}`)
  })
  return todo.length
}
