// Finding and reading the image's block map. Given (--bmap), it must exist and decode;
// otherwise the installer looks beside the source the way bmaptool does: the source's
// name plus ".bmap", then the name without its compression suffix plus ".bmap"
// (`x.img.zst` → `x.img.zst.bmap`, `x.img.bmap`), as a file or a URL.

import { promises as fsp } from 'node:fs'
import { decodeBmap, type DecodedBmap } from '../disk/bmap.js'
import { FormatError, InputError } from '../errors.js'
import type { HttpOptions } from '../io/http-source.js'

/** A bmap and where it came from. */
export interface LocatedBmap {
  location: string
  /** Found beside the source rather than given. */
  auto: boolean
  bmap: DecodedBmap
}

const COMPRESSION_SUFFIX = /\.(zst|zstd|xz|gz|gzip|qcow2)$/i

/** The names tried beside a source, in order. */
export function bmapCandidates(source: string): string[] {
  if (source === '-') return []
  const [base, query] = splitQuery(source)
  const out = [`${base}.bmap${query}`]
  if (COMPRESSION_SUFFIX.test(base)) out.push(`${base.replace(COMPRESSION_SUFFIX, '')}.bmap${query}`)
  return out
}

const splitQuery = (s: string): [string, string] => {
  if (!/^https?:\/\//i.test(s)) return [s, '']
  const i = s.search(/[?#]/)
  return i < 0 ? [s, ''] : [s.slice(0, i), s.slice(i)]
}

const isUrl = (s: string): boolean => /^https?:\/\//i.test(s)

async function readText(location: string, optional: boolean, http: HttpOptions): Promise<string | undefined> {
  if (isUrl(location)) return await (await import('../io/http-source.js')).fetchText(location, { ...http, optional })
  try {
    return await fsp.readFile(location, 'utf8')
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' && optional) return undefined
    throw new InputError('NOT_FOUND', `Cannot read bmap "${location}": ${(e as Error).message}`, { cause: e })
  }
}

/** Decodes a bmap's text, naming the file in the error. */
export function decodeBmapAt(text: string, location: string): DecodedBmap {
  try {
    return decodeBmap(text)
  } catch (e) {
    if (e instanceof FormatError) {
      throw new FormatError('FORMAT_BMAP', `Cannot use bmap "${location}": ${e.message}`, {
        cause: e,
        hint: e.hint ?? 'get the .bmap that was made with this image, or install without it (--no-bmap)',
      })
    }
    throw e
  }
}

/** The bmap to use: the one given, one found beside the source, or none. */
export async function locateBmap(
  given: string | false | undefined,
  source: string,
  http: HttpOptions = {},
): Promise<LocatedBmap | undefined> {
  if (given === false) return undefined
  if (given !== undefined) {
    const text = (await readText(given, false, http))!
    return { location: given, auto: false, bmap: decodeBmapAt(text, given) }
  }
  for (const candidate of bmapCandidates(source)) {
    const text = await readText(candidate, true, http)
    if (text !== undefined) return { location: candidate, auto: true, bmap: decodeBmapAt(text, candidate) }
  }
  return undefined
}
