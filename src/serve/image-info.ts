// What the operator API says about an image serve offers: its files and URLs, and what its
// build's manifest.json records (src/build/manifest.ts) — boot modes (the catalog's rule,
// src/catalog/product.ts), sizes, the kernel, the packages. A directory without a readable
// manifest still lists its files; the manifest's absence is said, not an error.

import { promises as fsp } from 'node:fs'
import path from 'node:path'
import type { Manifest } from '../build/manifest.js'
import { bootModes } from '../catalog/product.js'
import type { CatalogOrigin, OfferedImage } from './serve-images.js'

/** manifest.json files are tens of KiB; one larger than this is not read. */
export const MAX_MANIFEST_BYTES = 8 * 1024 * 1024

/** What a manifest says, for the dashboard's Images page. */
export interface ImageManifestSummary {
  name: string
  release: string
  architecture: string
  bootModes: string[]
  kernel: { flavor: string; version: string; footprintBytes: number; initrdBytes: number; modules: number }
  image: { sizeBytes: number; mappedBytes: number; sectorSize: number }
  /** The spec's extra packages (beyond the base set), and how many the image has in all. */
  specPackages: string[]
  packageCount: number
  build: { date: string; seconds: number }
  hwimageVersion: string
  /** With `packages: true`: name → version of every package. */
  packages?: Record<string, string>
}

/** An image as GET /api/v1/images shows it. */
export interface ImageInfo {
  name: string
  file: string
  url: string
  files: Array<{ name: string; sizeBytes: number; url: string }>
  manifest: ImageManifestSummary | null
  /** Why `manifest` is null. */
  manifestError?: string
  /** For a catalog version: its product, serial, aliases, and whether it is the newest. */
  catalog?: CatalogOrigin
}

/** The summary of a manifest (pure). */
export function summarizeManifest(m: Manifest, opts: { packages?: boolean } = {}): ImageManifestSummary {
  return {
    name: m.name,
    release: m.spec.release,
    architecture: m.spec.architecture,
    bootModes: bootModes(m),
    kernel: {
      flavor: m.kernel.flavor,
      version: m.kernel.version,
      footprintBytes: m.kernel.footprintBytes,
      initrdBytes: m.kernel.initrdBytes,
      modules: m.kernel.modules.length,
    },
    image: { sizeBytes: m.image.sizeBytes, mappedBytes: m.image.mappedBytes, sectorSize: m.image.sectorSize },
    specPackages: [...(m.spec.packages ?? [])],
    packageCount: Object.keys(m.packages).length,
    build: { date: m.build.date, seconds: m.build.seconds },
    hwimageVersion: m.hwimage.version,
    ...(opts.packages ? { packages: { ...m.packages } } : {}),
  }
}

/** Reads an image's directory listing and manifest.json. */
export async function imageInfo(
  image: OfferedImage,
  publicUrl: string,
  opts: { packages?: boolean } = {},
): Promise<ImageInfo> {
  const url = (name: string) => `${publicUrl}/images/${encodeURIComponent(image.name)}/${encodeURIComponent(name)}`
  const files: ImageInfo['files'] = []
  for (const name of (await fsp.readdir(image.dir).catch(() => [] as string[])).sort()) {
    const st = await fsp.stat(path.join(image.dir, name)).catch(() => undefined)
    if (st?.isFile()) files.push({ name, sizeBytes: st.size, url: url(name) })
  }
  let manifest: ImageManifestSummary | null = null
  let manifestError: string | undefined
  try {
    manifest = summarizeManifest(await readManifest(image.dir), opts)
  } catch (e) {
    manifestError = (e as Error).message
  }
  return {
    name: image.name,
    file: image.file,
    url: url(image.file),
    files,
    manifest,
    ...(manifestError !== undefined ? { manifestError } : {}),
    ...(image.catalog ? { catalog: image.catalog } : {}),
  }
}

async function readManifest(dir: string): Promise<Manifest> {
  const file = path.join(dir, 'manifest.json')
  const st = await fsp.stat(file).catch(() => undefined)
  if (!st?.isFile()) throw new Error('Cannot read manifest.json: the image directory has none')
  if (st.size > MAX_MANIFEST_BYTES)
    throw new Error(`Cannot read manifest.json: it is ${st.size} bytes, the limit is ${MAX_MANIFEST_BYTES}`)
  let m: Manifest
  try {
    m = JSON.parse(await fsp.readFile(file, 'utf8')) as Manifest
  } catch (e) {
    throw new Error(`Cannot read manifest.json: ${(e as Error).message}`)
  }
  if (m?.hwimage?.manifestVersion !== 1 || !m.kernel || !m.image || !Array.isArray(m.partitions))
    throw new Error('Cannot read manifest.json: it is not an hwimage build manifest (version 1)')
  return m
}
