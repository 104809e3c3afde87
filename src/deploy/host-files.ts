// Copies programs and the shared libraries they need from this (Debian 12) host into
// the deploy environment's staging tree. ldd(1) names each library as the dynamic
// loader resolves it; every symlink on the way (mkfs.vfat → mkfs.fat, mcopy → mtools,
// libc.so.6 → …) is recreated as a symlink, so the tree keeps Debian's names. The
// tree is merged-/usr like Debian 12's: /bin, /sbin, /lib and /lib64 are links into usr/.

import fs from 'node:fs/promises'
import path from 'node:path'
import { HwimageError } from '../errors.js'
import { packageOf } from '../tools/programs.js'
import { run } from '../tools/run.js'

/** The merged-/usr links of a Debian 12 root: /bin → usr/bin … */
export const MERGED_USR_LINKS = { bin: 'usr/bin', sbin: 'usr/sbin', lib: 'usr/lib', lib64: 'usr/lib64' } as const

/** The libraries in `ldd` output: resolved paths ("=> /path") and the loader's own line. */
export function parseLdd(text: string): string[] {
  const out: string[] = []
  for (const line of text.split('\n')) {
    const arrow = /=>\s*(\/\S+)\s+\(0x[0-9a-f]+\)/.exec(line)
    const bare = /^\s*(\/\S+)\s+\(0x[0-9a-f]+\)/.exec(line)
    const missing = /^\s*(\S+)\s*=>\s*not found/.exec(line)
    if (missing)
      throw new HwimageError('TOOL_MISSING', `Cannot copy a program's libraries: ${missing[1]} not found by ldd`)
    const p = arrow?.[1] ?? bare?.[1]
    if (p && !out.includes(p)) out.push(p)
  }
  return out
}

/** `ldd FILE`. */
export function lddArgv(file: string): string[] {
  return ['ldd', file]
}

/** Where a host path lands in a merged-/usr tree: /lib/x → usr/lib/x, /bin/x → usr/bin/x. */
export function mergedPath(hostPath: string): string {
  const rel = path.posix.normalize(hostPath).replace(/^\/+/, '')
  const [top, ...rest] = rel.split('/')
  const link = (MERGED_USR_LINKS as Record<string, string>)[top!]
  return link ? path.posix.join(link, ...rest) : rel
}

/** Copies files from the host into a staging tree, each once, with their symlinks. */
export class HostFileCopier {
  private readonly done = new Set<string>()
  /** Bytes of regular files copied, by the path they were asked for. */
  readonly bytes = new Map<string, number>()

  constructor(private readonly stageDir: string) {}

  /** The host's path of a program, found on PATH; TOOL_MISSING naming its package. */
  static async which(program: string): Promise<string> {
    for (const dir of ['/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
      const p = path.join(dir, program)
      if (
        await fs.access(p, fs.constants.X_OK).then(
          () => true,
          () => false,
        )
      )
        return p
    }
    const pkg = packageOf(program)
    throw new HwimageError(
      'TOOL_MISSING',
      `Cannot put "${program}" into the deploy environment: it is not installed here`,
      pkg ? { hint: `apt-get install ${pkg}` } : {},
    )
  }

  /** Copies a program (or a shared object) and every library ldd names for it; returns bytes added. */
  async addWithLibraries(hostPath: string, opts: { signal?: AbortSignal } = {}): Promise<number> {
    return (await this.add(hostPath)) + (await this.addLibrariesOf(hostPath, opts))
  }

  /** Copies the libraries ldd names for a file (which may be outside the host's tree); returns bytes added. */
  async addLibrariesOf(file: string, opts: { signal?: AbortSignal } = {}): Promise<number> {
    const ldd = await run(lddArgv(file), { signal: opts.signal, okStatus: [0, 1] })
    // A static binary: "not a dynamic executable" (status 1).
    let total = 0
    if (ldd.status === 0) for (const lib of parseLdd(ldd.stdout)) total += await this.add(lib)
    return total
  }

  /** Copies one host path, following and recreating symlinks; returns bytes of new regular files. */
  async add(hostPath: string): Promise<number> {
    if (this.done.has(hostPath)) return 0
    this.done.add(hostPath)
    // Directories on the way may be links (Debian 12's /lib → usr/lib): resolve them.
    const dir = await fs.realpath(path.dirname(hostPath))
    const real = path.join(dir, path.basename(hostPath))
    const st = await fs.lstat(real)
    const to = path.join(this.stageDir, mergedPath(real))
    await fs.mkdir(path.dirname(to), { recursive: true })
    if (st.isSymbolicLink()) {
      const target = await fs.readlink(real)
      await fs.rm(to, { force: true })
      await fs.symlink(target, to)
      return await this.add(path.resolve(dir, target))
    }
    await fs.copyFile(real, to)
    await fs.chmod(to, st.mode & 0o7777)
    this.bytes.set(hostPath, st.size)
    return st.size
  }
}
