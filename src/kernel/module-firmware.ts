// The firmware files modules ask for (`modinfo` firmware: fields, from
// MODULE_FIRMWARE()), and which of them an image lacks. The kernel looks in
// /lib/firmware/updates/<version>, /lib/firmware/updates, /lib/firmware/<version>
// and /lib/firmware (drivers/base/firmware_loader/main.c, fw_path), and also for
// a compressed file when built with CONFIG_FW_LOADER_COMPRESS_XZ / _ZSTD.

import fs from 'node:fs/promises'
import path from 'node:path'
import { run } from '../tools/run.js'
import type { KernelTree } from './kernel-package.js'
import { modinfoArgv } from './kernel-tool-argv.js'
import { globToRegExp, hasGlobChars } from './module-glob.js'
import { moduleNameOf } from './module-indexes.js'

const BATCH = 200

/** Parses `modinfo FILE…` output into module name → firmware names. */
export function parseModinfoFirmware(output: string): Map<string, string[]> {
  const out = new Map<string, string[]>()
  let current: string[] | undefined
  for (const line of output.split('\n')) {
    const m = /^(\w+):\s+(.*)$/.exec(line)
    if (!m) continue
    if (m[1] === 'filename') {
      current = []
      out.set(moduleNameOf(m[2]!.trim()), current)
    } else if (m[1] === 'firmware' && current) current.push(m[2]!.trim())
  }
  return out
}

/** The firmware each module of a set asks for, read with modinfo (modules asking for none are left out). */
export async function moduleFirmware(
  tree: KernelTree,
  modules: Iterable<string>,
  opts: { signal?: AbortSignal } = {},
): Promise<Map<string, string[]>> {
  const files = [...modules].flatMap((n) => {
    const m = tree.modules.get(n)
    return m ? [path.join(tree.modulesDir, m.path)] : []
  })
  const out = new Map<string, string[]>()
  for (let i = 0; i < files.length; i += BATCH) {
    const r = await run(modinfoArgv(files.slice(i, i + BATCH)), { signal: opts.signal })
    for (const [name, fw] of parseModinfoFirmware(r.stdout)) if (fw.length) out.set(name, fw)
  }
  return out
}

/** The firmware names not found under an image root, as the kernel would search for them. */
export async function missingFirmware(
  names: Iterable<string>,
  imageRoot: string,
  version: string,
  compressed: readonly string[] = ['.xz'],
): Promise<string[]> {
  const dirs = [
    'lib/firmware/updates/' + version,
    'lib/firmware/updates',
    'lib/firmware/' + version,
    'lib/firmware',
  ].map((d) => path.join(imageRoot, d))
  const missing: string[] = []
  for (const name of new Set(names)) {
    let found = false
    for (const dir of dirs) {
      if (hasGlobChars(name)) {
        const parent = path.join(dir, path.dirname(name))
        const re = globToRegExp(path.basename(name))
        const entries = await fs.readdir(parent).catch(() => [] as string[])
        found = entries.some(
          (e) => re.test(e) || compressed.some((c) => e.endsWith(c) && re.test(e.slice(0, -c.length))),
        )
      } else {
        for (const suffix of ['', ...compressed]) {
          if (
            await fs.access(path.join(dir, name + suffix)).then(
              () => true,
              () => false,
            )
          )
            found = true
        }
      }
      if (found) break
    }
    if (!found) missing.push(name)
  }
  return missing.sort()
}
