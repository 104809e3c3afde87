// The deploy environment's initramfs: a staging directory written as one cpio newc
// archive (src/disk/cpio-newc.ts) — entries sorted, owned by root, with one fixed
// mtime, so the same tree gives the same bytes — plus the device nodes the kernel
// needs before devtmpfs is mounted (/dev/console: without it PID 1 starts with no
// stdin/stdout, "Warning: unable to open an initial console"), then compressed by
// Debian's zstd or xz in a form the kernel's decompressors read (CONFIG_RD_ZSTD,
// CONFIG_RD_XZ: lib/decompress_unzstd.c, lib/decompress_unxz.c; xz with CRC32 only).

import fs from 'node:fs/promises'
import path from 'node:path'
import { encodeNewcHeader, encodeNewcTrailer, newcPad, S_IF, type NewcEntry } from '../disk/cpio-newc.js'
import { run } from '../tools/run.js'

/** How the archive is compressed. */
export type InitramfsCompression = 'zstd' | 'xz'

/** A character device node put into the archive. */
export interface DeviceNode {
  name: string
  mode: number
  major: number
  minor: number
}

/** The nodes every initramfs gets. */
export const DEFAULT_NODES: readonly DeviceNode[] = [
  { name: 'dev/console', mode: 0o600, major: 5, minor: 1 },
  { name: 'dev/null', mode: 0o666, major: 1, minor: 3 },
]

/** The argv that compresses `input` into `output` for the kernel. */
export function compressInitramfsArgv(
  compression: InitramfsCompression,
  input: string,
  output: string,
  level?: number,
): string[] {
  if (compression === 'zstd') return ['zstd', `-${level ?? 19}`, '-T0', '-q', '-f', '-o', output, '--', input]
  // The kernel's xz decoder checks CRC32 and no other check type (lib/xz/xz_dec_stream.c).
  return ['xz', '--check=crc32', `-${level ?? 6}`, '-T0', '-q', '-f', '-c', '--', input]
}

/** Writes `stageDir` as a newc archive to `outFile`; returns the number of entries and bytes. */
export async function writeNewcArchive(
  stageDir: string,
  outFile: string,
  opts: { nodes?: readonly DeviceNode[]; mtime?: number } = {},
): Promise<{ entries: number; bytes: number }> {
  const mtime = opts.mtime ?? 0
  const out = await fs.open(outFile, 'w')
  let ino = 1
  let entries = 0
  let bytes = 0
  const write = async (b: Uint8Array) => {
    let done = 0
    while (done < b.length) done += (await out.write(b, done, b.length - done)).bytesWritten
    bytes += b.length
  }
  const header = (name: string, mode: number, fileSize: number, rdev: [number, number] = [0, 0]): Uint8Array => {
    const e: NewcEntry = {
      name,
      mode,
      ino: ino++,
      uid: 0,
      gid: 0,
      nlink: (mode & S_IF.dir) === S_IF.dir ? 2 : 1,
      mtime,
      fileSize,
      devMajor: 0,
      devMinor: 0,
      rdevMajor: rdev[0],
      rdevMinor: rdev[1],
    }
    entries++
    return encodeNewcHeader(e)
  }
  const member = async (name: string, mode: number, data: Uint8Array) => {
    await write(header(name, mode, data.length))
    await write(data)
    await write(new Uint8Array(newcPad(data.length)))
  }
  const walk = async (rel: string): Promise<void> => {
    const names = (await fs.readdir(path.join(stageDir, rel))).sort()
    for (const n of names) {
      const r = rel ? `${rel}/${n}` : n
      const p = path.join(stageDir, r)
      const st = await fs.lstat(p)
      const perm = st.mode & 0o7777
      if (st.isDirectory()) {
        await write(header(r, S_IF.dir | perm, 0))
        await walk(r)
      } else if (st.isSymbolicLink()) {
        await member(r, S_IF.lnk | 0o777, new TextEncoder().encode(await fs.readlink(p)))
      } else if (st.isFile()) {
        await member(r, S_IF.reg | perm, await fs.readFile(p))
      }
    }
  }
  try {
    await walk('')
    for (const d of opts.nodes ?? DEFAULT_NODES) await write(header(d.name, S_IF.chr | d.mode, 0, [d.major, d.minor]))
    await write(encodeNewcTrailer())
  } finally {
    await out.close()
  }
  return { entries, bytes }
}

/** Compresses an archive for the kernel; returns the compressed size and the seconds it took. */
export async function compressInitramfs(
  archive: string,
  outFile: string,
  compression: InitramfsCompression,
  opts: { level?: number; signal?: AbortSignal } = {},
): Promise<{ bytes: number; seconds: number }> {
  const started = Date.now()
  const argv = compressInitramfsArgv(compression, archive, outFile, opts.level)
  if (compression === 'xz') {
    // xz writes to stdout (-c); run() keeps stdout as bytes.
    const r = await run(argv, { signal: opts.signal, binary: true, maxStdout: 1 << 30 })
    await fs.writeFile(outFile, r.stdoutBytes)
  } else {
    await run(argv, { signal: opts.signal })
  }
  return { bytes: (await fs.stat(outFile)).size, seconds: (Date.now() - started) / 1000 }
}

/** Seconds Debian's decompressor takes for `file` on this machine (the manifest's measure of boot cost). */
export async function timeDecompression(
  file: string,
  compression: InitramfsCompression,
  opts: { signal?: AbortSignal } = {},
): Promise<number> {
  const started = Date.now()
  // -t: decompress and check, writing nothing.
  await run(compression === 'zstd' ? ['zstd', '-t', '-q', '--', file] : ['xz', '-t', '-q', '--', file], {
    signal: opts.signal,
  })
  return (Date.now() - started) / 1000
}
