// hwimage as one executable for the deploy environment: a Node single executable
// application (https://nodejs.org/docs/latest-v20.x/api/single-executable-applications.html).
//
// 1. esbuild bundles src/cli/sea-run.ts and everything it imports, lazy import()s
//    included, into one CommonJS script (a SEA runs one script, CommonJS only).
//    import.meta.url, which ESM code uses to find files beside it, becomes the
//    executable's own file URL.
// 2. `node --experimental-sea-config` turns script + assets into a preparation blob;
//    the zstd addon is an asset (src/io/sea-addon.ts loads it with process.dlopen).
// 3. A copy of this host's node, stripped of its debug symbols (86 of its 99 MB
//    remain), gets the blob injected by postject as the NODE_SEA_BLOB note, which
//    flips the sentinel fuse so that node runs the blob instead of its own CLI.

import { createRequire } from 'node:module'
import fs from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { HwimageError } from '../errors.js'
import { ZSTD_ADDON_ASSET } from '../io/sea-addon.js'
import { run } from '../tools/run.js'

/** The checkout's root (src/deploy/ is two levels below it). */
export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')

/**
 * The sentinel postject flips; it is in every Node 20 binary (src/node_sea.cc, SEA_SENTINEL_FUSE).
 * Joined at run time: this file is in the bundle, and postject refuses a result that holds the
 * sentinel twice ("Multiple occurences of sentinel").
 */
export const SEA_FUSE = ['NODE_SEA_FUSE', 'fce680ab2cc467b6e072b8b5df1996b2'].join('_')

/** What makeSea() built. */
export interface SeaResult {
  path: string
  bytes: number
  /** The bundled script's size. */
  bundleBytes: number
  /** The stripped node binary's size, before the blob went in. */
  nodeBytes: number
  nodeVersion: string
  addonBytes: number
}

/** The SEA configuration file's contents (node --experimental-sea-config). */
export function seaConfig(o: { main: string; output: string; addon: string }): object {
  return {
    main: o.main,
    output: o.output,
    disableExperimentalSEAWarning: true,
    // V8's code cache: start-up without compiling the bundle (tied to this node's V8, which is the base).
    useCodeCache: true,
    assets: { [ZSTD_ADDON_ASSET]: o.addon },
  }
}

/** `postject FILE NODE_SEA_BLOB BLOB --sentinel-fuse FUSE`, run by this node. */
export function postjectArgv(node: string, postjectCli: string, file: string, blob: string): string[] {
  return [node, postjectCli, file, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SEA_FUSE]
}

/** Bundles the CLI into one CommonJS script. */
export async function bundleCli(outFile: string): Promise<number> {
  let esbuild: typeof import('esbuild')
  try {
    esbuild = await import('esbuild')
  } catch (e) {
    throw new HwimageError('TOOL_MISSING', 'Cannot bundle hwimage: esbuild is not installed', {
      hint: 'run `npm ci` in the checkout (esbuild is a devDependency)',
      cause: e,
    })
  }
  await esbuild.build({
    entryPoints: [path.join(PACKAGE_ROOT, 'src/cli/sea-run.ts')],
    outfile: outFile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    // serve's SQLite binding is a native addon the deploy environment does not run.
    external: ['better-sqlite3'],
    define: { 'import.meta.url': '__hwimageImportMetaUrl' },
    banner: { js: 'var __hwimageImportMetaUrl = require("node:url").pathToFileURL(__filename).href;' },
    legalComments: 'none',
    logLevel: 'error',
  })
  return (await fs.stat(outFile)).size
}

/** Builds the single executable at `outFile`, using `workDir` for the bundle and the blob. */
export async function makeSea(
  outFile: string,
  workDir: string,
  opts: { node?: string; signal?: AbortSignal } = {},
): Promise<SeaResult> {
  const node = opts.node ?? process.execPath
  const addon = path.join(PACKAGE_ROOT, 'build/Release/zstd_frames.node')
  await fs.access(addon).catch((e) => {
    throw new HwimageError(
      'TOOL_MISSING',
      `Cannot build hwimage's executable: the native addon "${addon}" was not built`,
      { hint: 'run `make setup`', cause: e },
    )
  })
  const bundle = path.join(workDir, 'hwimage.cjs')
  const bundleBytes = await bundleCli(bundle)
  const blob = path.join(workDir, 'hwimage.blob')
  const configFile = path.join(workDir, 'sea-config.json')
  await fs.writeFile(configFile, JSON.stringify(seaConfig({ main: bundle, output: blob, addon }), null, 2))
  await run([node, '--experimental-sea-config', configFile], { cwd: workDir, signal: opts.signal })
  await fs.copyFile(node, outFile)
  await run(['strip', '--strip-all', outFile], { signal: opts.signal })
  const nodeBytes = (await fs.stat(outFile)).size
  const postject = createRequire(import.meta.url).resolve('postject/dist/cli.js')
  await run(postjectArgv(node, postject, outFile, blob), { signal: opts.signal })
  await fs.chmod(outFile, 0o755)
  const nodeVersion = (await run([node, '--version'], { signal: opts.signal })).stdout.trim()
  return {
    path: outFile,
    bytes: (await fs.stat(outFile)).size,
    bundleBytes,
    nodeBytes,
    nodeVersion,
    addonBytes: (await fs.stat(addon)).size,
  }
}
