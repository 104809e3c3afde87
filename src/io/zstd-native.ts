// The native addon (native/zstd-frames.c, built by `make setup` / `npm ci` with node-gyp
// against Debian's libzstd): one Zstandard frame decompressed into a caller's buffer on
// libuv's thread pool (a seekable .zst's frames; a qcow2 image's zstd clusters). Loaded on first use, so that only the verbs that decompress
// frames need it.

import { createRequire } from 'node:module'
import path from 'node:path'
import { isSea } from 'node:sea'
import { fileURLToPath } from 'node:url'
import { HwimageError } from '../errors.js'
import { loadSeaAddon, ZSTD_ADDON_ASSET } from './sea-addon.js'

/** What the addon exports. */
export interface ZstdNative {
  /** Decompresses the frame in `src` into `dst`; resolves to the bytes written. Rejects (code ZSTD_ERROR) with zstd's error name. */
  decompressFrame(src: Uint8Array, dst: Uint8Array): Promise<number>
  /** The same for the first frame in `src`; the bytes after it are ignored (a qcow2 cluster's sector padding). */
  decompressFirstFrame(src: Uint8Array, dst: Uint8Array): Promise<number>
  /** libzstd's version, e.g. "1.5.4". */
  zstdVersion(): string
}

// src/io/ and dist/io/ are both two levels below the package root, where node-gyp builds.
const ADDON = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../build/Release/zstd_frames.node')

let loaded: ZstdNative | undefined

/** The addon; throws TOOL_MISSING, naming the fix, when it was not built. */
export function zstdNative(): ZstdNative {
  if (loaded) return loaded
  try {
    // In the deploy environment's single executable the addon is an asset (src/io/sea-addon.ts).
    loaded = isSea()
      ? loadSeaAddon<ZstdNative>(ZSTD_ADDON_ASSET)
      : (createRequire(import.meta.url)(ADDON) as ZstdNative)
  } catch (e) {
    throw new HwimageError(
      'TOOL_MISSING',
      `Cannot load hwimage's native addon "${ADDON}": ${(e as Error).message.split('\n')[0]}`,
      {
        hint: 'run `make setup` (it builds the addon with node-gyp; it needs libzstd-dev, g++ and make)',
      },
    )
  }
  return loaded
}
