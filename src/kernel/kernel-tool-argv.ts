// Argument vectors for the programs the kernel tools run, built by pure functions
// (unit-tested) and executed with run(). Every program is listed in
// src/tools/programs.ts with its Debian package.

/** `dpkg-deb -x DEB DIR`: unpacks a package's files (no maintainer scripts run). */
export function dpkgDebExtractArgv(deb: string, dir: string): string[] {
  return ['dpkg-deb', '-x', deb, dir]
}

/** Options of one depmod(8) run. */
export interface DepmodOptions {
  /** The image root holding lib/modules/<version> (depmod -b). */
  baseDir: string
  version: string
  /** Report symbols no module or the kernel exports (-e); needs `systemMap`. */
  errsyms?: boolean
  /** A System.map-style file of the kernel's exported symbols (-F). */
  systemMap?: string
  /** Print the indexes on stdout instead of writing them (-n). */
  dryRun?: boolean
}

/** `depmod [-n] [-e -F MAP] -b ROOT VERSION`. */
export function depmodArgv(o: DepmodOptions): string[] {
  const argv = ['depmod']
  if (o.dryRun) argv.push('-n')
  if (o.errsyms) argv.push('-e')
  if (o.systemMap) argv.push('-F', o.systemMap)
  argv.push('-b', o.baseDir, o.version)
  return argv
}

/** `modinfo FILE…`: every field of each module, each block opened by `filename:`. */
export function modinfoArgv(files: readonly string[]): string[] {
  return ['modinfo', ...files]
}

/** Module compressions kmod 30 (bookworm) loads: it is built +XZ +ZSTD (see `kmod --version`). */
export type ModuleCompression = 'xz' | 'zstd' | 'none'

/**
 * Compresses files in place (FILE → FILE.xz / FILE.zst), the way the kernel's
 * scripts/Makefile.modinst compresses signed modules: xz with a 2 MiB dictionary
 * and CRC32 (what the in-kernel xz decoder supports), zstd with --rm.
 */
export function compressArgv(compression: Exclude<ModuleCompression, 'none'>, files: readonly string[]): string[] {
  if (compression === 'xz') return ['xz', '--check=crc32', '--lzma2=dict=2MiB', '-f', '-T1', '--', ...files]
  return ['zstd', '-q', '-19', '--rm', '-f', '--', ...files]
}

/** Decompresses one file in place (FILE.xz → FILE), ignoring data after the first stream. */
export function decompressArgv(format: 'xz' | 'zstd' | 'gzip', file: string): string[] {
  if (format === 'xz') return ['xz', '-d', '--single-stream', '-f', '--', file]
  if (format === 'zstd') return ['zstd', '-d', '-q', '-f', '--rm', '--', file]
  return ['gzip', '-d', '-f', '--', file]
}

/** `apt-cache depends PACKAGE`: what a metapackage such as linux-image-amd64 points at. */
export function aptCacheDependsArgv(pkg: string): string[] {
  return ['apt-cache', 'depends', pkg]
}

/** `apt-cache show --no-all-versions PACKAGE`: the candidate's control fields. */
export function aptCacheShowArgv(pkg: string): string[] {
  return ['apt-cache', 'show', '--no-all-versions', pkg]
}

/** `apt-get download PACKAGE=VERSION` into the current directory. */
export function aptGetDownloadArgv(pkg: string, version: string): string[] {
  return ['apt-get', 'download', '-q', `${pkg}=${version}`]
}
