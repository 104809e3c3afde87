// Images at load: N clients at once fetch the default image's .img.zst from a server, each
// the way the installer does over HTTP (src/io/http-source.ts): a HEAD (size, Accept-Ranges,
// ETag), a Range request for the first bytes (the format's magic), one for the file's last
// bytes (the seekable zstd table), then the body. The installer's body is one GET, resumed
// after a drop with `Range: bytes=N-` and `If-Range: ETAG`; here every client's body is such
// a resumed request for its own slice of the file (`Range: bytes=X-Y`, If-Range with the
// server's ETag), so that a round moves the same number of bytes at 32 and at 128 clients
// and every byte crosses serve's Range path.
//
// The clients are one curl process (`--parallel --parallel-immediate`: one connection per
// transfer, all opened at once), not Node: curl's event loop in C costs a fraction of what a
// JavaScript client would on the receiving side, and its CPU time is measured (GNU time) and
// printed with every round, so it can be seen not to dominate the 2 cores.

import { spawn } from 'node:child_process'
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { cpuSeconds, percentile, sampleRss } from './serve-procs.js'

/** serve (file bodies by sendfile(2)), serve with HWIMAGE_SERVE_SENDFILE=0 (copied through two buffers), nginx. */
export type ImageServer = 'serve' | 'serve-copy' | 'nginx'

/** One round's figures against one server. */
export interface ImageRound {
  server: ImageServer
  clients: number
  bytes: number
  seconds: number
  /** Body bytes per second, all clients together. */
  throughput: number
  /** Time to first byte of the body requests (seconds): p50, p99. */
  ttfbP50: number
  ttfbP99: number
  /** CPU seconds of the server (nginx: master and workers) and of the client (curl: user + system). */
  serverCpu: number
  clientCpu: number
  /** Resident memory of the server during the round (bytes; nginx: its workers together). */
  rssMax: number
  rssMedian: number
  failures: string[]
}

/** The image file a round fetches, and the slices. */
export interface ImageTarget {
  /** http://HOST:PORT/images/default/NAME.img.zst */
  url: string
  size: number
}

/** First bytes the installer reads (magic) and the tail it reads for the seek table. */
const HEAD_BYTES = 4096
const TAIL_BYTES = 4096

/**
 * Runs one round: `clients` clients, `totalBytes` of bodies between them, against the server
 * at `target.url` whose processes are `pids` (sampled for CPU and memory).
 */
export async function imageRound(opts: {
  server: ImageServer
  target: ImageTarget
  clients: number
  totalBytes: number
  pids: () => Promise<number[]>
  dir: string
}): Promise<ImageRound> {
  const { target, clients } = opts
  const etag = await etagOf(target.url)
  const slice = Math.min(Math.floor(opts.totalBytes / clients), target.size)
  const lines: string[] = []
  const block = (label: string, extra: string[]) =>
    lines.push(
      `url = "${target.url}"`,
      ...extra,
      'output = "/dev/null"',
      `write-out = "${label} %{http_code} %{size_download} %{time_starttransfer} %{time_total}\\n"`,
      'next',
    )
  // The openings first, then the bodies: with --parallel-max N, N bodies run at once.
  for (let k = 0; k < clients; k++) {
    block(`head ${k}`, ['head'])
    block(`magic ${k}`, [`range = "0-${HEAD_BYTES - 1}"`])
    block(`table ${k}`, [`range = "${target.size - TAIL_BYTES}-${target.size - 1}"`])
  }
  for (let k = 0; k < clients; k++) {
    // Slices spread over the file so the clients do not all read the same pages.
    const start = Math.floor(((target.size - slice) * k) / Math.max(1, clients - 1))
    block(`body ${k}`, [`range = "${start}-${start + slice - 1}"`, `header = "If-Range: ${etag.replace(/"/g, '\\"')}"`])
  }
  const config = path.join(opts.dir, `curl-${opts.server}-${clients}.conf`)
  // No `next` after the last block: curl would take it for a transfer without a URL.
  await fsp.writeFile(config, `${lines.slice(0, -1).join('\n')}\n`)
  const timeFile = path.join(opts.dir, 'curl-time.txt')

  const pids = await opts.pids()
  const cpuBefore = pids.map((p) => cpuSeconds(p) ?? 0)
  const samplers = pids.map((p) => sampleRss(p))
  const started = process.hrtime.bigint()
  const out = await run('/usr/bin/time', [
    '-o',
    timeFile,
    '-f',
    '%U %S',
    'curl',
    '-sS',
    '--no-progress-meter',
    '--parallel',
    '--parallel-immediate',
    '--parallel-max',
    String(clients),
    '-K',
    config,
  ])
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  const rssSeries = samplers.map((s) => s.stop())
  // nginx: the workers' memory added up, sample by sample.
  const n = Math.min(...rssSeries.map((s) => s.length))
  const rss = Array.from({ length: n }, (_, i) => rssSeries.reduce((a, s) => a + s[i]!, 0))
  const serverCpu = pids.reduce((a, p, i) => a + ((cpuSeconds(p) ?? cpuBefore[i]!) - cpuBefore[i]!), 0)
  const [user, sys] = (await fsp.readFile(timeFile, 'utf8')).trim().split(/\s+/).slice(-2).map(Number)

  const failures: string[] = []
  if (out.code !== 0) failures.push(`curl exited ${out.code}: ${out.stderr.slice(-500)}`)
  const ttfb: number[] = []
  let bytes = 0
  const seen = { head: 0, magic: 0, table: 0, body: 0 }
  for (const line of out.stdout.split('\n')) {
    if (!line) continue
    const [kind, k, code, size, start] = line.split(' ') as [keyof typeof seen, string, string, string, string]
    seen[kind]++
    const want =
      kind === 'head'
        ? { code: '200', size: 0 }
        : { code: '206', size: kind === 'body' ? slice : kind === 'magic' ? HEAD_BYTES : TAIL_BYTES }
    if (code !== want.code || Number(size) !== want.size)
      failures.push(`${kind} of client ${k}: HTTP ${code}, ${size} bytes (expected ${want.code}, ${want.size})`)
    if (kind === 'body') {
      bytes += Number(size)
      ttfb.push(Number(start))
    }
  }
  for (const [kind, count] of Object.entries(seen))
    if (count !== clients) failures.push(`${count} ${kind} requests finished, expected ${clients}`)
  return {
    server: opts.server,
    clients,
    bytes,
    seconds,
    throughput: bytes / seconds,
    ttfbP50: percentile(ttfb, 50),
    ttfbP99: percentile(ttfb, 99),
    serverCpu,
    clientCpu: (user ?? 0) + (sys ?? 0),
    rssMax: Math.max(...rss),
    rssMedian: percentile(rss, 50),
    failures,
  }
}

/** The server's strong validator for the file, as the installer's HEAD reads it. */
async function etagOf(url: string): Promise<string> {
  const res = await fetch(url, { method: 'HEAD' })
  const etag = res.headers.get('etag')
  if (res.status !== 200 || !etag || etag.startsWith('W/'))
    throw new Error(`HEAD ${url}: ${res.status}, ETag ${etag}: no strong validator for If-Range`)
  return etag
}

function run(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (b: Buffer) => (stdout += b))
    child.stderr.on('data', (b: Buffer) => (stderr += b))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }))
  })
}
