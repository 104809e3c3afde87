// The file-level diff of a root tree before and after a conversion: every path added,
// removed or changed (type, mode, owner, size, mtime, link target), grouped by what it
// belongs to: kernel, modules, initramfs, GRUB, apt state, other. dpkg sets each file's
// mtime from its package, so a file replaced by another version shows as changed even at
// the same size.

import { lstat, readdir, readFile, readlink } from 'node:fs/promises'
import { join } from 'node:path'

/** A tree's files: path ("/etc/fstab") → what identifies its state. */
export type TreeSnapshot = Map<string, string>

/** What part of the system a changed path belongs to. */
export type DiffCategory = 'kernel' | 'modules' | 'initramfs' | 'grub' | 'apt' | 'other'

/** One category's counts. */
export interface DiffCounts {
  added: number
  removed: number
  changed: number
}

/** The diff summary the manifest carries. */
export interface DiffSummary {
  categories: Record<DiffCategory, DiffCounts>
  /** Every path outside the five named categories, with how it changed ("+", "-", "~"). */
  other: string[]
}

const RULES: [DiffCategory, RegExp][] = [
  [
    'modules',
    /^\/(usr\/)?lib\/modules\/|^\/etc\/hwimage(\/server-modules\.list)?$|^\/etc\/kernel\/postinst\.d\/a0-hwimage/,
  ],
  [
    'initramfs',
    /^\/boot\/initrd\.img|^\/(initrd\.img)(\.old)?$|^\/etc\/initramfs-tools\/|^\/var\/lib\/initramfs-tools\//,
  ],
  [
    'kernel',
    /^\/boot\/(vmlinuz|config|System\.map)-|^\/(vmlinuz)(\.old)?$|^\/usr\/lib\/linux-image-|^\/usr\/share\/doc\/linux-image-|^\/usr\/share\/lintian\/overrides\/linux-image-|^\/usr\/share\/bug\/linux-image-|^\/etc\/kernel\//,
  ],
  ['grub', /^\/boot\/grub\/|^\/etc\/default\/grub/],
  [
    'apt',
    /^\/var\/lib\/dpkg\/|^\/var\/lib\/apt\/|^\/var\/cache\/apt\/|^\/var\/log\/apt\/|^\/var\/log\/dpkg\.log$|^\/var\/log\/alternatives\.log$|^\/var\/cache\/debconf\/|^\/var\/lib\/ucf\//,
  ],
]

/** The category of a path. */
export function categoryOf(path: string): DiffCategory {
  for (const [c, re] of RULES) if (re.test(path)) return c
  return 'other'
}

/** Walks a tree (without following links) into a snapshot. */
export async function snapshotTree(dir: string): Promise<TreeSnapshot> {
  const snap: TreeSnapshot = new Map()
  const walk = async (rel: string): Promise<void> => {
    for (const e of await readdir(join(dir, rel), { withFileTypes: true })) {
      const path = `${rel}/${e.name}`
      const st = await lstat(join(dir, path))
      const target = st.isSymbolicLink() ? await readlink(join(dir, path)) : ''
      const size = st.isDirectory() ? 0 : st.size
      const mtime = st.isDirectory() ? 0 : Math.floor(st.mtimeMs / 1000)
      snap.set(path, `${st.mode.toString(8)}:${st.uid}:${st.gid}:${size}:${mtime}:${target}:${st.rdev}`)
      if (st.isDirectory()) await walk(path)
    }
  }
  await walk('')
  return snap
}

/** The category of a package apt added for the conversion: GRUB's and shim's, or the kernel's (xz-utils for the server flavor's hook). */
export function addedPackageCategory(name: string): DiffCategory {
  return /^(grub|shim|mokutil|efibootmgr|os-prober)/.test(name) ? 'grub' : 'kernel'
}

/**
 * The paths of packages the conversion added (a /var/lib/dpkg/info/NAME.list that was not
 * there before), with the category of their package, and the links update-alternatives made
 * for them (an alternatives file naming one of those paths): so a package apt pulled in for
 * the kernel or GRUB is counted there, not in "other".
 */
export async function addedPackagePaths(
  rootDir: string,
  before: TreeSnapshot,
  after: TreeSnapshot,
): Promise<Map<string, DiffCategory>> {
  const owned = new Map<string, DiffCategory>()
  for (const path of after.keys()) {
    const m = /^\/var\/lib\/dpkg\/info\/([^/]+?)(:\w+)?\.list$/.exec(path)
    if (!m || before.has(path)) continue
    const category = addedPackageCategory(m[1]!)
    for (const f of (await readFile(join(rootDir, path), 'utf8')).split('\n'))
      if (f !== '' && f !== '/.') owned.set(f, category)
  }
  for (const path of after.keys()) {
    if (!path.startsWith('/var/lib/dpkg/alternatives/') || before.get(path) === after.get(path)) continue
    const text = await readFile(join(rootDir, path), 'utf8').catch(() => '')
    const paths = text.split('\n').filter((l) => l.startsWith('/'))
    const category = paths.map((p) => owned.get(p)).find((c) => c !== undefined)
    if (!category) continue
    const name = path.slice('/var/lib/dpkg/alternatives/'.length)
    for (const p of [...paths, `/etc/alternatives/${name}`]) if (!owned.has(p)) owned.set(p, category)
    // Slave links are named in the file too: their /etc/alternatives entries by the same rule.
    for (const l of text.split('\n')) if (/^[\w.+-]+$/.test(l)) owned.set(`/etc/alternatives/${l}`, category)
  }
  return owned
}

/** The diff of two snapshots; `owned` names the category of paths the rules do not place (addedPackagePaths()). */
export function diffTrees(
  before: TreeSnapshot,
  after: TreeSnapshot,
  owned: ReadonlyMap<string, DiffCategory> = new Map(),
): DiffSummary {
  const zero = (): DiffCounts => ({ added: 0, removed: 0, changed: 0 })
  const categories: Record<DiffCategory, DiffCounts> = {
    kernel: zero(),
    modules: zero(),
    initramfs: zero(),
    grub: zero(),
    apt: zero(),
    other: zero(),
  }
  const other: string[] = []
  const note = (path: string, kind: keyof DiffCounts, mark: string) => {
    let c = categoryOf(path)
    if (c === 'other') c = owned.get(path) ?? c
    categories[c][kind]++
    if (c === 'other') other.push(`${mark} ${path}`)
  }
  for (const [path, state] of after) {
    const was = before.get(path)
    if (was === undefined) note(path, 'added', '+')
    else if (was !== state) note(path, 'changed', '~')
  }
  for (const path of before.keys()) if (!after.has(path)) note(path, 'removed', '-')
  other.sort((a, b) => a.slice(2).localeCompare(b.slice(2)))
  return { categories, other }
}
