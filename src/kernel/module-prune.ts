// Cuts an unpacked /lib/modules/<version> tree down to a module set: deletes
// every other module, compresses the kept ones, and runs depmod so modprobe's
// indexes describe what is left.
//
// Signatures stay valid. Debian signs each .ko by appending a PKCS#7 signature and
// the marker "~Module signature appended~\n" (scripts/sign-file.c). Compressing
// the whole file keeps those bytes intact inside the stream: kmod 30 (bookworm;
// `kmod --version` shows +XZ +ZSTD) decompresses a .ko.xz or .ko.zst in user space
// and hands the result to init_module(2), and the kernel checks the signature on
// that buffer (kernel/module/signing.c, module_sig_check). It is the order the
// kernel's own build uses: scripts/Makefile.modinst signs, then compresses.
// `modinfo` on a compressed module still shows signer and sig_key, which the
// integration test checks.

import os from 'node:os'
import fs from 'node:fs/promises'
import path from 'node:path'
import { InputError } from '../errors.js'
import { run } from '../tools/run.js'
import { regularFileBytes } from './kernel-package.js'
import { compressArgv, depmodArgv, type ModuleCompression } from './kernel-tool-argv.js'
import { moduleNameOf } from './module-indexes.js'

/** Options for pruneModuleTree(). */
export interface PruneOptions {
  /** How kept modules are stored (default xz: smallest, and what kmod in bookworm loads). */
  compression?: ModuleCompression
  signal?: AbortSignal
  onProgress?: (p: { stage: string; done: number; total?: number }) => void
}

/** What pruneModuleTree() did and what the tree weighs afterwards. */
export interface PruneResult {
  kept: number
  removed: number
  compression: ModuleCompression
  /** Kept modules' bytes before and after compression. */
  keptBytesBefore: number
  keptBytesAfter: number
  /** Every regular file under lib/modules/<version> afterwards, indexes included. */
  treeBytes: number
  vmlinuzBytes: number
  /** vmlinuz + lib/modules/<version>. */
  footprintBytes: number
}

const MODULE_FILE = /\.ko(\.(xz|zst|gz))?$/
const BATCH = 24

/**
 * Deletes modules not in `keep` from ROOT/lib/modules/VERSION, compresses the kept
 * ones, rewrites modules.order and runs `depmod -b ROOT VERSION`.
 */
export async function pruneModuleTree(
  rootDir: string,
  version: string,
  keep: ReadonlySet<string>,
  opts: PruneOptions = {},
): Promise<PruneResult> {
  const compression = opts.compression ?? 'xz'
  const modulesDir = path.join(rootDir, 'lib', 'modules', version)
  const files = await moduleFiles(modulesDir).catch((e: NodeJS.ErrnoException) => {
    throw new InputError('NOT_FOUND', `Cannot prune modules: ${modulesDir} cannot be read (${e.code ?? e.message})`, {
      cause: e,
    })
  })
  const present = new Set(files.map((f) => moduleNameOf(f)))
  const absent = [...keep].filter((k) => !present.has(k))
  if (absent.length > 0) {
    throw new InputError(
      'MODULE_UNKNOWN',
      `Cannot prune modules: ${absent.length} to keep are not in ${modulesDir} (${absent
        .slice(0, 5)
        .map((n) => `"${n}"`)
        .join(', ')})`,
    )
  }
  let removed = 0
  const kept: string[] = []
  for (const f of files) {
    if (keep.has(moduleNameOf(f))) kept.push(f)
    else {
      await fs.unlink(path.join(modulesDir, f))
      removed++
    }
  }
  await removeEmptyDirs(modulesDir)
  let keptBytesBefore = 0
  for (const f of kept) keptBytesBefore += (await fs.stat(path.join(modulesDir, f))).size

  const toCompress = compression === 'none' ? [] : kept.filter((f) => f.endsWith('.ko'))
  await compressAll(modulesDir, toCompress, compression, opts)
  const suffix = compression === 'xz' ? '.xz' : compression === 'zstd' ? '.zst' : ''
  const finalNames = kept.map((f) => (f.endsWith('.ko') ? f + suffix : f))
  let keptBytesAfter = 0
  for (const f of finalNames) keptBytesAfter += (await fs.stat(path.join(modulesDir, f))).size

  await filterModulesOrder(modulesDir, keep)
  opts.onProgress?.({ stage: 'depmod', done: 0 })
  await run(depmodArgv({ baseDir: rootDir, version }), { signal: opts.signal })

  const treeBytes = await regularFileBytes(modulesDir)
  const vmlinuzBytes = await fs.stat(path.join(rootDir, 'boot', `vmlinuz-${version}`)).then(
    (s) => s.size,
    () => 0,
  )
  return {
    kept: kept.length,
    removed,
    compression,
    keptBytesBefore,
    keptBytesAfter,
    treeBytes,
    vmlinuzBytes,
    footprintBytes: treeBytes + vmlinuzBytes,
  }
}

// Module files relative to the modules directory (kernel/, updates/, extra/ …).
async function moduleFiles(dir: string, rel = ''): Promise<string[]> {
  const out: string[] = []
  for (const e of await fs.readdir(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name
    if (e.isDirectory()) out.push(...(await moduleFiles(dir, r)))
    else if (e.isFile() && MODULE_FILE.test(e.name)) out.push(r)
  }
  return out
}

async function removeEmptyDirs(dir: string): Promise<boolean> {
  let empty = true
  for (const e of await fs.readdir(dir, { withFileTypes: true })) {
    if (e.isDirectory() && (await removeEmptyDirs(path.join(dir, e.name)))) await fs.rmdir(path.join(dir, e.name))
    else empty = false
  }
  return empty
}

// One compressor process per batch of files, as many at once as there are CPUs.
async function compressAll(
  dir: string,
  files: string[],
  compression: ModuleCompression,
  opts: PruneOptions,
): Promise<void> {
  if (compression === 'none' || files.length === 0) return
  const batches: string[][] = []
  for (let i = 0; i < files.length; i += BATCH) batches.push(files.slice(i, i + BATCH))
  let done = 0
  let next = 0
  const worker = async () => {
    while (next < batches.length) {
      const batch = batches[next++]!
      await run(compressArgv(compression, batch), { cwd: dir, signal: opts.signal })
      done += batch.length
      opts.onProgress?.({ stage: 'compress', done, total: files.length })
    }
  }
  const jobs = Math.max(1, Math.min(os.availableParallelism(), batches.length))
  await Promise.all(Array.from({ length: jobs }, worker))
}

async function filterModulesOrder(dir: string, keep: ReadonlySet<string>): Promise<void> {
  const file = path.join(dir, 'modules.order')
  const text = await fs.readFile(file, 'utf8').catch(() => undefined)
  if (text === undefined) return
  const lines = text.split('\n').filter((l) => l.trim() !== '' && keep.has(moduleNameOf(l.trim())))
  await fs.writeFile(file, lines.length ? lines.join('\n') + '\n' : '')
}
