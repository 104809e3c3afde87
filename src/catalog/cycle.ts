// `hwimage cycle`: rebuild and publish a spec's image only when something it depends on
// changed since the newest published serial of its product.
//
// Order of work:
//  1. the product the spec builds (release, architecture, kernel flavor) and its newest
//     version in the catalog, with that version's manifest.json (read from the catalog);
//  2. what changed since then, cheapest first: hwimage's version, the spec (its digest,
//     manifest.inputs.specSha256), and the candidate version on the mirror of every
//     package that build installed (mirror-packages.ts: apt against the spec's mirror,
//     no download of packages). Nothing changed: stop, nothing written ("unchanged");
//  3. build into a work directory (build-image.ts);
//  4. CHANGELOG beside the build's files (changelog.ts), listed in SHA256SUMS;
//  5. publish the build (publish.ts: the new serial, --keep pruning, signing). A build that
//     is byte for byte a published one (builds are reproducible) publishes nothing.

import { mkdtemp, readFile, appendFile, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { buildImage, HWIMAGE_VERSION, type BuildOptions } from '../build/build-image.js'
import type { Manifest } from '../build/manifest.js'
import { specDigest } from '../build/reproducible.js'
import type { BuildSpec } from '../build/spec.js'
import { sha256OfFile } from '../build/outputs.js'
import { InputError } from '../errors.js'
import { diffBuilds, formatChangelog, type Changes } from './changelog.js'
import { mirrorCandidates } from './mirror-packages.js'
import { PRODUCTS_PATH, productName, serialDay } from './product.js'
import { freeSerial, publish, type PublishReport } from './publish.js'
import { serialsNewestFirst } from './resolve.js'
import { decodeProducts, isSafePath } from './simplestreams.js'

/** Where apt keeps the mirror's lists between cycles. */
export const DEFAULT_APT_CACHE = '/var/cache/hwimage/cycle-apt'

/** What to cycle. */
export interface CycleOptions {
  spec: BuildSpec
  catalog: string
  keep?: number
  signKey?: string
  /** Only say what changed: build and publish nothing. */
  checkOnly?: boolean
  /** Build directory (default: a new directory under /var/tmp, removed afterwards). */
  workDir?: string
  aptCacheDir?: string
  /** Passed to buildImage (specDir, source, steps, warnings…). */
  build?: Omit<BuildOptions, 'outDir' | 'signal'>
  signal?: AbortSignal
  onEvent?: (name: string, fields: Record<string, unknown>) => void
}

/** One reason to build. */
export interface CycleReason {
  kind: 'first-build' | 'hwimage' | 'spec' | 'package'
  detail: string
}

/** What a cycle did. */
export interface CycleReport {
  status: 'published' | 'unchanged' | 'changed'
  product: string
  /** The newest serial before the cycle. */
  previous?: string
  reasons: CycleReason[]
  /** Seconds spent finding out whether anything changed. */
  checkSeconds: number
  serial?: string
  changes?: Changes
  publish?: PublishReport
}

/** Runs one cycle; see the order of work above. */
export async function cycle(opts: CycleOptions): Promise<CycleReport> {
  const started = Date.now()
  const emit = opts.onEvent ?? (() => {})
  const catalog = path.resolve(opts.catalog)
  const spec = opts.spec

  // 1. the product and its newest version
  const product = productName({ spec, kernel: { flavor: spec.kernel.flavor } } as Manifest)
  const previous = await newestVersion(catalog, product)
  emit('previous', { product, serial: previous?.serial ?? null })

  // 2. what changed
  const reasons: CycleReason[] = []
  if (!previous) reasons.push({ kind: 'first-build', detail: `${product} has no version in ${catalog}` })
  else {
    const m = previous.manifest
    if (m.hwimage.version !== HWIMAGE_VERSION)
      reasons.push({ kind: 'hwimage', detail: `hwimage ${m.hwimage.version} -> ${HWIMAGE_VERSION}` })
    const digest = specDigest(spec)
    if (m.inputs?.specSha256 !== digest)
      reasons.push({
        kind: 'spec',
        detail: m.inputs
          ? `spec sha256 ${m.inputs.specSha256.slice(0, 12)} -> ${digest.slice(0, 12)}`
          : 'the build recorded no spec digest',
      })
    const names = Object.keys(m.packages).sort()
    const candidates = await mirrorCandidates(spec, names, {
      cacheDir: opts.aptCacheDir ?? DEFAULT_APT_CACHE,
      ...(opts.signal ? { signal: opts.signal } : {}),
    })
    for (const n of names) {
      const now = candidates.get(n)
      if (now === undefined)
        reasons.push({ kind: 'package', detail: `${n} ${m.packages[n]} is no longer on the mirror` })
      else if (now !== m.packages[n]) reasons.push({ kind: 'package', detail: `${n} ${m.packages[n]} -> ${now}` })
    }
  }
  const checkSeconds = Math.round((Date.now() - started) / 100) / 10
  const base = { product, ...(previous ? { previous: previous.serial } : {}), reasons, checkSeconds }
  emit('checked', { changed: reasons.length > 0, reasons: reasons.length, seconds: checkSeconds })
  if (reasons.length === 0) return { status: 'unchanged', ...base }
  if (opts.checkOnly) return { status: 'changed', ...base }

  // 3. build
  const work = opts.workDir ?? (await mkdtemp('/var/tmp/hwimage-cycle-'))
  const outDir = opts.workDir ? work : path.join(work, 'build')
  try {
    emit('build', { outDir })
    const manifest = await buildImage(spec, {
      specDir: process.cwd(),
      ...opts.build,
      outDir,
      ...(opts.signal ? { signal: opts.signal } : {}),
    })

    // 4. the changelog, under the serial publish will give it
    const products = await loadProducts(catalog)
    const taken = Object.keys(products?.products[product]?.versions ?? {})
    const serial = freeSerial(serialDay(manifest), taken)
    const changes = diffBuilds(previous, serial, manifest)
    const changelog = path.join(outDir, 'CHANGELOG')
    await writeFile(changelog, formatChangelog(product, changes))
    await appendFile(path.join(outDir, 'SHA256SUMS'), `${await sha256OfFile(changelog)}  CHANGELOG\n`)

    // 5. publish
    const report = await publish({
      builds: [outDir],
      catalog,
      ...(opts.keep !== undefined ? { keep: opts.keep } : {}),
      ...(opts.signKey ? { signKey: opts.signKey } : {}),
      onEvent: (name, fields) => emit(`publish-${name}`, fields),
    })
    const added = report.builds.find((b) => b.status === 'added')
    return {
      status: added ? 'published' : 'unchanged',
      ...base,
      serial: added?.serial ?? report.builds[0]!.serial,
      changes,
      publish: report,
    }
  } finally {
    if (!opts.workDir) await rm(work, { recursive: true, force: true })
  }
}

async function loadProducts(catalog: string) {
  const p = path.join(catalog, PRODUCTS_PATH)
  const text = await readFile(p, 'utf8').catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined
    throw e
  })
  return text === undefined ? undefined : decodeProducts(text, p)
}

/** The newest version of `product` in a local catalog, with its manifest. */
async function newestVersion(
  catalog: string,
  product: string,
): Promise<{ serial: string; manifest: Manifest } | undefined> {
  const doc = await loadProducts(catalog)
  const p = doc?.products[product]
  if (!p) return undefined
  const serial = serialsNewestFirst(p)[0]
  if (!serial) return undefined
  const item = p.versions[serial]!.items.manifest
  if (!item || !isSafePath(item.path))
    throw new InputError('FORMAT_CATALOG', `Cannot cycle ${product}: version ${serial} lists no manifest.json`, {
      hint: 'publish builds with `hwimage publish` (it lists each build’s manifest.json)',
    })
  const file = path.join(catalog, item.path)
  const text = await readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new InputError('NOT_FOUND', `Cannot cycle ${product}: ${item.path} is missing from ${catalog}`, {
      cause: e,
      hint: 'the catalog is damaged: publish a build again, or remove the version',
    })
  })
  if ((await sha256OfFile(file)) !== item.sha256)
    throw new InputError(
      'CHECKSUM_MISMATCH',
      `Cannot cycle ${product}: ${item.path} does not match the catalog's sha256`,
      {
        hint: 'the published manifest changed after publishing: restore it from the build directory',
      },
    )
  return { serial, manifest: JSON.parse(text) as Manifest }
}
