// A native addon carried inside hwimage's single executable (the deploy environment,
// src/deploy/sea.ts): Node loads a .node only from a file, so the asset is written to
// a fresh directory under the temporary directory (a tmpfs there) and loaded with
// process.dlopen, the call require() makes for a .node file.

import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { getAsset } from 'node:sea'

/** The asset name of the zstd addon in the single executable. */
export const ZSTD_ADDON_ASSET = 'zstd_frames.node'

/** Loads the addon stored as `asset` in the running single executable. */
export function loadSeaAddon<T>(asset: string): T {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'hwimage-addon-')), asset)
  writeFileSync(file, new Uint8Array(getAsset(asset)), { mode: 0o500 })
  const module = { exports: {} as T }
  process.dlopen(module, file)
  return module.exports
}
