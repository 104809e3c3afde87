// The image every integration test shares: built once per `make test` run by the
// Makefile's test-image target and named by HWIMAGE_TEST_IMAGE_DIR.

import { readFileSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import type { Manifest } from '../../src/build/manifest.js'

/** The shared test image: its directory, manifest and output paths. */
export interface TestImage {
  dir: string
  manifest: Manifest
  img: string
  zst: string
  bmap: string
}

/** Loads the shared image; fails loudly (never skips) when it is missing. */
export function testImage(): TestImage {
  const dir = process.env.HWIMAGE_TEST_IMAGE_DIR
  if (!dir || !existsSync(join(dir, 'manifest.json'))) {
    throw new Error(
      'HWIMAGE_TEST_IMAGE_DIR must name a built image directory (run the integration tier through `make test`)',
    )
  }
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest
  const img = join(dir, manifest.image.file)
  return { dir, manifest, img, zst: `${img}.zst`, bmap: `${img}.bmap` }
}

/** The repository's CLI, as the README runs it. */
export const CLI = new URL('../../bin/hwimage', import.meta.url).pathname
