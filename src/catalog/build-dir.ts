// A build directory as `hwimage build` leaves it, read for publishing: manifest.json,
// SHA256SUMS and the outputs the catalog lists (NAME.img.zst, NAME.img.bmap, NAME.qcow2
// when there is one). Every file SHA256SUMS lists that is present is hashed and must
// match (sha256sum -c --ignore-missing), the files to publish must be listed, and the
// manifest's own digests must agree with SHA256SUMS: a directory that does not verify is
// refused before anything is written.

import { promises as fsp } from 'node:fs'
import path from 'node:path'
import type { Manifest } from '../build/manifest.js'
import { sha256OfFile } from '../build/outputs.js'
import { InputError } from '../errors.js'
import { parseSha256Sums } from '../install/checksums.js'

/** One file of a build that the catalog lists. */
export interface BuildFile {
  /** The item's key in the version, and its simplestreams ftype. */
  item: 'zst' | 'bmap' | 'qcow2' | 'changelog' | 'manifest' | 'sha256sums'
  ftype: string
  name: string
  path: string
  sha256: string
  size: number
}

/** A verified build directory. */
export interface BuildDir {
  dir: string
  manifest: Manifest
  files: BuildFile[]
}

const FTYPES: Record<BuildFile['item'], string> = {
  zst: 'img.zst',
  bmap: 'img.bmap',
  qcow2: 'qcow2',
  // What `hwimage cycle` writes beside a new serial (changelog.ts).
  changelog: 'changelog',
  manifest: 'manifest.json',
  sha256sums: 'sha256sums',
}

/** Reads and verifies a build directory; throws CHECKSUM_MISMATCH, NOT_FOUND or FORMAT_CATALOG. */
export async function readBuildDir(dir: string): Promise<BuildDir> {
  const manifestPath = path.join(dir, 'manifest.json')
  const manifest = checkManifest(await readText(manifestPath, dir), manifestPath)
  const sumsPath = path.join(dir, 'SHA256SUMS')
  const sums = parseSha256Sums(await readText(sumsPath, dir))

  // The manifest and SHA256SUMS were written by the same build: they must agree.
  for (const f of manifest.files) {
    const listed = sums.get(f.name)
    if (listed && listed !== f.sha256.toLowerCase())
      refuse(dir, `manifest.json and SHA256SUMS disagree about "${f.name}" (${f.sha256} against ${listed})`)
  }
  for (const [name, want] of sums) {
    if (name.includes('/')) refuse(dir, `SHA256SUMS lists "${name}", which is not a file of the build directory`)
    const p = path.join(dir, name)
    if (!(await exists(p))) continue
    const got = await sha256OfFile(p)
    if (got !== want) refuse(dir, `"${name}" does not match SHA256SUMS (expected ${want}, got ${got})`)
  }

  const image = manifest.image.file
  const candidates: Array<[BuildFile['item'], string, boolean]> = [
    ['zst', `${image}.zst`, true],
    ['bmap', `${image}.bmap`, true],
    ['qcow2', `${image.replace(/\.img$/, '')}.qcow2`, false],
    ['changelog', 'CHANGELOG', false],
  ]
  const files: BuildFile[] = []
  for (const [item, name, required] of candidates) {
    const p = path.join(dir, name)
    if (!(await exists(p))) {
      if (required)
        throw new InputError('NOT_FOUND', `Cannot publish ${dir}: "${name}" is missing`, {
          hint: 'publish the directory `hwimage build -o` wrote, with its .img.zst and .img.bmap',
        })
      continue
    }
    const sha256 = sums.get(name)
    if (!sha256) refuse(dir, `SHA256SUMS does not list "${name}"`)
    files.push({ item, ftype: FTYPES[item], name, path: p, sha256, size: (await fsp.stat(p)).size })
  }
  // manifest.json is written after SHA256SUMS and SHA256SUMS does not list itself: both are
  // digested here, and the signed catalog is what vouches for them.
  for (const [item, p] of [
    ['manifest', manifestPath],
    ['sha256sums', sumsPath],
  ] as const)
    files.push({
      item,
      ftype: FTYPES[item],
      name: path.basename(p),
      path: p,
      sha256: await sha256OfFile(p),
      size: (await fsp.stat(p)).size,
    })
  return { dir, manifest, files }
}

function checkManifest(text: string, where: string): Manifest {
  let m: Manifest
  try {
    m = JSON.parse(text) as Manifest
  } catch (e) {
    throw new InputError('FORMAT_CATALOG', `Cannot parse ${where}: ${(e as Error).message}`, { cause: e })
  }
  const missing = [
    ['hwimage.manifestVersion', m?.hwimage?.manifestVersion === 1],
    ['name', typeof m?.name === 'string'],
    ['spec.release', typeof m?.spec?.release === 'string'],
    ['spec.architecture', typeof m?.spec?.architecture === 'string'],
    ['kernel.flavor', typeof m?.kernel?.flavor === 'string'],
    ['kernel.version', typeof m?.kernel?.version === 'string'],
    ['image.file', typeof m?.image?.file === 'string' && !m.image.file.includes('/')],
    ['image.sizeBytes', Number.isSafeInteger(m?.image?.sizeBytes)],
    ['files', Array.isArray(m?.files)],
    ['build.date', typeof m?.build?.date === 'string' && !Number.isNaN(Date.parse(m.build.date))],
  ].find(([, ok]) => !ok)
  if (missing)
    throw new InputError('FORMAT_CATALOG', `Cannot read ${where}: field "${missing[0]}" is missing or invalid`, {
      hint: 'publish a directory written by `hwimage build` (manifest version 1)',
    })
  return m
}

async function readText(p: string, dir: string): Promise<string> {
  try {
    return await fsp.readFile(p, 'utf8')
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    throw new InputError(
      code === 'ENOENT' || code === 'ENOTDIR' ? 'NOT_FOUND' : 'USAGE',
      `Cannot publish ${dir}: cannot read ${path.basename(p)} (${code ?? (e as Error).message})`,
      { cause: e, hint: 'give the directory `hwimage build -o` wrote (manifest.json, SHA256SUMS, NAME.img.zst)' },
    )
  }
}

async function exists(p: string): Promise<boolean> {
  return fsp.stat(p).then(
    (s) => s.isFile(),
    () => false,
  )
}

function refuse(dir: string, why: string): never {
  throw new InputError('CHECKSUM_MISMATCH', `Cannot publish ${dir}: ${why}`, {
    hint: 'the build directory changed after the build: rebuild it, or publish an intact copy',
  })
}
