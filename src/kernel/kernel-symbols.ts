// Unresolved symbols in a module set, found by the real tool: depmod -e reports
// every symbol a module needs that neither another module of the tree nor the
// kernel (-F System.map) exports. The set is laid out as a tree of symlinks so
// depmod sees exactly the set; the kernel's exports come from a real System.map
// when the tree has one, otherwise from vmlinuz itself (vmlinux-exports.ts).

import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { InputError } from '../errors.js'
import { run } from '../tools/run.js'
import type { KernelTree } from './kernel-package.js'
import { decompressArgv, depmodArgv } from './kernel-tool-argv.js'
import { moduleNameOf } from './module-indexes.js'
import { exportedSymbols, locateBzImagePayload, renderSystemMap } from './vmlinux-exports.js'

/** A symbol a module needs and nothing in the set or the kernel exports. */
export interface UnresolvedSymbol {
  module: string
  symbol: string
}

/** Parses depmod -e warnings: `depmod: WARNING: /…/x.ko needs unknown symbol Y`. */
export function parseDepmodUnresolved(stderr: string): UnresolvedSymbol[] {
  const out: UnresolvedSymbol[] = []
  for (const m of stderr.matchAll(/WARNING: (\S+) needs unknown symbol (\S+)/g))
    out.push({ module: moduleNameOf(m[1]!), symbol: m[2]! })
  return out
}

/** The symbols vmlinuz exports, as System.map text for depmod -F. */
export async function kernelSystemMap(tree: KernelTree, opts: { signal?: AbortSignal } = {}): Promise<string> {
  if (tree.root) {
    const real = await fs.readFile(path.join(tree.root, 'boot', `System.map-${tree.version}`), 'utf8').catch(() => '')
    if (real.includes(' __ksymtab_')) return real // a real map (not Debian's one-line stub)
  }
  if (!tree.vmlinuzPath) {
    throw new InputError(
      'FORMAT_KERNEL',
      `Cannot check symbols of kernel ${tree.version}: it has neither vmlinuz nor a System.map`,
      {
        hint: 'give the image root or the .deb, not only lib/modules/<version>',
      },
    )
  }
  const image = new Uint8Array(await fs.readFile(tree.vmlinuzPath))
  const payload = locateBzImagePayload(image, tree.vmlinuzPath)
  if (payload.compression !== 'xz' && payload.compression !== 'zstd' && payload.compression !== 'gzip') {
    throw new InputError(
      'FORMAT_KERNEL',
      `Cannot read ${tree.vmlinuzPath}: its ${payload.compression} payload is not supported (xz, zstd, gzip are)`,
    )
  }
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hwimage-vmlinux-'))
  try {
    const ext = { xz: '.xz', zstd: '.zst', gzip: '.gz' }[payload.compression]
    const packed = path.join(dir, `vmlinux${ext}`)
    await fs.writeFile(packed, image.subarray(payload.offset, payload.offset + payload.length))
    // gzip exits 2 for "trailing garbage ignored"; the 4-byte size is already cut, but padding may follow.
    await run(decompressArgv(payload.compression, packed), {
      signal: opts.signal,
      okStatus: payload.compression === 'gzip' ? [0, 2] : [0],
    })
    const elf = new Uint8Array(await fs.readFile(path.join(dir, 'vmlinux')))
    return renderSystemMap(exportedSymbols(elf, `vmlinux in ${tree.vmlinuzPath}`))
  } finally {
    await fs.rm(dir, { recursive: true, force: true })
  }
}

/** Runs depmod -e over exactly `modules` and returns the symbols they need that nothing exports. */
export async function findUnresolvedSymbols(
  tree: KernelTree,
  modules: Iterable<string>,
  opts: { signal?: AbortSignal; systemMap?: string } = {},
): Promise<UnresolvedSymbol[]> {
  const systemMap = opts.systemMap ?? (await kernelSystemMap(tree, opts))
  const shadow = await fs.mkdtemp(path.join(os.tmpdir(), 'hwimage-symbols-'))
  try {
    const dir = path.join(shadow, 'lib', 'modules', tree.version)
    for (const name of modules) {
      const m = tree.modules.get(name)
      if (!m) continue
      const link = path.join(dir, m.path)
      await fs.mkdir(path.dirname(link), { recursive: true })
      await fs.symlink(path.join(tree.modulesDir, m.path), link)
    }
    await fs.mkdir(dir, { recursive: true })
    for (const index of ['modules.order', 'modules.builtin', 'modules.builtin.modinfo']) {
      const from = path.join(tree.modulesDir, index)
      if (
        await fs.access(from).then(
          () => true,
          () => false,
        )
      )
        await fs.symlink(from, path.join(dir, index))
    }
    const mapFile = path.join(shadow, 'System.map')
    await fs.writeFile(mapFile, systemMap)
    const r = await run(depmodArgv({ baseDir: shadow, version: tree.version, errsyms: true, systemMap: mapFile }), {
      signal: opts.signal,
    })
    return parseDepmodUnresolved(r.stderr)
  } finally {
    await fs.rm(shadow, { recursive: true, force: true })
  }
}
