// What the mirror offers now, without building: the candidate version of each package a
// build installed, from apt run against the spec's mirror with its own state directory
// (apt-get update, then apt-cache policy). The lists are kept between runs, so a cycle
// with nothing new on the mirror downloads only the Release files (If-Modified-Since).
//
// Why this is enough to know a rebuild would differ: mmdebstrap installs the newest
// version of each package, and a package's dependencies belong to its version. If every
// package of the last build has the same candidate and the spec is the same, the same
// set resolves again. What it misses: a package newly made Priority: required without a
// new version (an archive override; mmdebstrap's minbase would add it).

import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createHash } from 'node:crypto'
import { run } from '../tools/run.js'
import type { BuildSpec } from '../build/spec.js'
import { RELEASES } from '../build/spec.js'

/** The apt sources of a spec, as mmdebstrap is given them (rootfs.ts). */
export function specSources(spec: BuildSpec): string[] {
  const rel = RELEASES[spec.release]
  return [
    `deb [arch=${spec.architecture}] ${spec.mirror} ${spec.release} main`,
    `deb [arch=${spec.architecture}] ${spec.mirror} ${rel.updates} main`,
    `deb [arch=${spec.architecture}] ${spec.security_mirror} ${rel.security} main`,
  ]
}

/** apt options that keep apt's state in `dir`, away from the host's. */
export function aptOptions(dir: string, architecture: string): string[] {
  const o = (k: string, v: string) => ['-o', `${k}=${v}`]
  return [
    ...o('Dir::Etc::SourceList', join(dir, 'sources.list')),
    ...o('Dir::Etc::SourceParts', join(dir, 'sources.list.d')),
    ...o('Dir::Etc::Preferences', join(dir, 'preferences')),
    ...o('Dir::Etc::PreferencesParts', join(dir, 'preferences.d')),
    ...o('Dir::State', join(dir, 'state')),
    ...o('Dir::State::Lists', join(dir, 'lists')),
    ...o('Dir::State::status', join(dir, 'status')),
    ...o('Dir::Cache', join(dir, 'cache')),
    ...o('APT::Architecture', architecture),
    ...o('APT::Architectures', architecture),
    ...o('Acquire::Languages', 'none'),
    ...o('Acquire::Retries', '3'),
    ...o('Debug::NoLocking', 'true'),
  ]
}

/** Parses `apt-cache policy P…`: package → candidate version (packages apt does not know are absent). */
export function parsePolicy(text: string): Map<string, string> {
  const out = new Map<string, string>()
  let name: string | undefined
  for (const line of text.split('\n')) {
    const head = /^(\S+):$/.exec(line)
    if (head) {
      name = head[1]!.replace(/:[a-z0-9]+$/, '')
      continue
    }
    const cand = /^\s+Candidate:\s+(\S+)$/.exec(line)
    if (cand && name && cand[1] !== '(none)') out.set(name, cand[1]!)
  }
  return out
}

/** The state directory for a spec's sources, below `cacheDir`. */
export function aptStateDir(cacheDir: string, spec: BuildSpec): string {
  const key = createHash('sha256').update(specSources(spec).join('\n')).digest('hex').slice(0, 16)
  return join(cacheDir, key)
}

/** Candidate versions on the spec's mirror of `packages`; a package the mirror no longer has is absent. */
export async function mirrorCandidates(
  spec: BuildSpec,
  packages: string[],
  opts: { cacheDir: string; signal?: AbortSignal },
): Promise<Map<string, string>> {
  const dir = aptStateDir(opts.cacheDir, spec)
  for (const d of ['sources.list.d', 'preferences.d', 'state', 'lists/partial', 'cache/archives/partial'])
    await mkdir(join(dir, d), { recursive: true })
  await writeFile(join(dir, 'sources.list'), specSources(spec).join('\n') + '\n')
  await writeFile(join(dir, 'status'), '')
  const options = aptOptions(dir, spec.architecture)
  const signal = opts.signal ? { signal: opts.signal } : {}
  await run(['apt-get', ...options, '-q', 'update'], signal)
  const out = new Map<string, string>()
  // A few hundred names per call keeps argv short.
  for (let i = 0; i < packages.length; i += 200) {
    const r = await run(['apt-cache', ...options, 'policy', ...packages.slice(i, i + 200)], signal)
    for (const [k, v] of parsePolicy(r.stdout)) out.set(k, v)
  }
  return out
}
