// `make bench-serve`: hwimage serve at fleet scale, in one run on one machine.
//
// 1. Images at load: 32 and 128 clients fetching the default image's .img.zst with the
//    installer's requests (serve-images.ts) from `hwimage serve`, from a second serve with
//    HWIMAGE_SERVE_SENDFILE=0 (its file bodies copied through two buffers: the path before
//    sendfile(2), and the one TLS and a missing addon take) and from nginx serving the same
//    directory. Paired: each round runs the three back to back, the order rotating; the
//    figures quoted are medians over the rounds, and serve/nginx the median of the rounds'
//    ratios. serve's RSS is sampled while the clients run.
// 2. The control plane at load: MACHINES deploy agents against one serve (serve-control.ts).
//
// Environment: HWIMAGE_BENCH_IMAGE_DIR (default .cache/test-image), BENCH_ROUNDS (5),
// BENCH_ROUND_BYTES (4 GiB of bodies per round), BENCH_MACHINES (1000), BENCH_ONLY
// (images|control), BENCH_STATE_TMPFS=1 (serve's database in /dev/shm), BENCH_PROFILE=DIR (serve under
// node --cpu-prof, the profiles in DIR). Exit 1 when a request failed or an event went missing; the targets
// (≥ 0.9× nginx, p99 < 50 ms) are printed as met or missed, not asserted.

import { promises as fsp, readdirSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { controlRun, STATE_DB } from './serve-control.js'
import { type ImageRound, type ImageServer, imageRound } from './serve-images.js'
import {
  childrenOf,
  freePort,
  median,
  nginxConfig,
  REPO,
  rssBytes,
  type Started,
  startNginx,
  startServe,
} from './serve-procs.js'

const MiB = 2 ** 20
const imageDir = path.resolve(process.env.HWIMAGE_BENCH_IMAGE_DIR ?? path.join(REPO, '.cache/test-image'))
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5)
const ROUND_BYTES = Number(process.env.BENCH_ROUND_BYTES ?? 4 * 2 ** 30)
const MACHINES = Number(process.env.BENCH_MACHINES ?? 1000)
const ONLY = process.env.BENCH_ONLY
const CLIENTS = [32, 128]

const fmt = (n: number, digits = 1) => n.toFixed(digits)
const mbs = (bps: number) => `${fmt(bps / MiB, 0)} MiB/s`
const ms = (s: number) => `${fmt(s * 1000)} ms`

async function main(): Promise<void> {
  const zst = readdirSync(imageDir).find((f) => f.endsWith('.img.zst'))
  if (!zst)
    throw new Error(`no *.img.zst in ${imageDir}: build the image (make test-images) or set HWIMAGE_BENCH_IMAGE_DIR`)
  const size = (await fsp.stat(path.join(imageDir, zst))).size
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hwimage-bench-serve-'))
  console.log(`# hwimage serve at load — ${new Date().toISOString()}`)
  console.log(
    `# ${os.cpus().length} CPUs, load average ${os
      .loadavg()
      .map((l) => fmt(l, 2))
      .join(' ')} at the start`,
  )
  console.log(`# image ${path.join(imageDir, zst)} (${fmt(size / MiB)} MiB); work dir ${dir}`)
  let failed = false
  try {
    if (ONLY !== 'control') failed = (await images(dir, zst, size)) || failed
    if (ONLY !== 'images') failed = (await control(dir)) || failed
  } finally {
    console.log(
      `# load average ${os
        .loadavg()
        .map((l) => fmt(l, 2))
        .join(' ')} at the end`,
    )
    await fsp.rm(dir, { recursive: true, force: true })
  }
  if (failed) process.exitCode = 1
}

/** serve's state directory: under the work dir, or in /dev/shm with BENCH_STATE_TMPFS=1 (no fsync cost: a diagnosis, not a deployment). */
function stateDir(dir: string, name: string): string {
  return process.env.BENCH_STATE_TMPFS === '1'
    ? path.join('/dev/shm', `${path.basename(dir)}-${name}-state`)
    : path.join(dir, `${name}-state`)
}

async function serveConfig(dir: string, name: string, extra: string): Promise<{ config: string; url: string }> {
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const config = path.join(dir, `${name}.yaml`)
  await fsp.writeFile(
    config,
    `listen: { host: 127.0.0.1, port: ${port} }\npublic_url: ${url}\nstate_dir: ${stateDir(dir, name)}\nimages:\n  default: ${imageDir}\n${extra}`,
  )
  return { config, url }
}

async function images(dir: string, zst: string, size: number): Promise<boolean> {
  const s = await serveConfig(dir, 'serve-images', '')
  const serve = await startServe(s.config, s.url, path.join(dir, 'serve-images.log'))
  const c = await serveConfig(dir, 'serve-copy', '')
  const serveCopy = await startServe(c.config, c.url, path.join(dir, 'serve-copy.log'), {
    HWIMAGE_SERVE_SENDFILE: '0',
  })
  const nginxPort = await freePort()
  const conf = path.join(dir, 'nginx.conf')
  await fsp.writeFile(conf, nginxConfig(dir, nginxPort, 'default', imageDir))
  let nginx: Started | undefined
  let failed = false
  try {
    nginx = await startNginx(conf, dir, `http://127.0.0.1:${nginxPort}`)
    const ngx = nginx
    const servers = {
      serve: { url: `${s.url}/images/default/${zst}`, pids: async () => [serve.pid] },
      'serve-copy': { url: `${c.url}/images/default/${zst}`, pids: async () => [serveCopy.pid] },
      nginx: { url: `${ngx.url}/images/default/${zst}`, pids: () => childrenOf(ngx.pid) },
    }
    const idleRss = rssBytes(serve.pid) ?? 0
    console.log(
      `\n## Images at load: ${ROUNDS} paired rounds per client count, ${fmt(ROUND_BYTES / MiB, 0)} MiB of bodies per round`,
    )
    console.log(`serve's RSS before the first round: ${fmt(idleRss / MiB)} MiB`)
    const round = (server: ImageServer, clients: number) =>
      imageRound({
        server,
        target: { url: servers[server].url, size },
        clients,
        totalBytes: ROUND_BYTES,
        pids: servers[server].pids,
        dir,
      })
    // Warm-up: the file in the page cache, serve's code compiled.
    await round('serve', 32)
    await round('serve-copy', 32)
    await round('nginx', 32)
    const summary: string[] = []
    for (const clients of CLIENTS) {
      const rounds: Record<ImageServer, ImageRound>[] = []
      const peers: ImageServer[] = ['serve', 'serve-copy', 'nginx']
      for (let r = 0; r < ROUNDS; r++) {
        const order = [...peers.slice(r % 3), ...peers.slice(0, r % 3)]
        const pair = {} as Record<ImageServer, ImageRound>
        for (const server of order) pair[server] = await round(server, clients)
        rounds.push(pair)
        for (const x of peers.map((k) => pair[k])) {
          console.log(
            `${clients} clients, round ${r + 1}, ${x.server.padEnd(10)}: ${mbs(x.throughput)}, TTFB p50 ${ms(x.ttfbP50)} p99 ${ms(x.ttfbP99)}, ` +
              `${fmt(x.seconds, 2)} s; CPU server ${fmt(x.serverCpu, 2)} s, curl ${fmt(x.clientCpu, 2)} s (${fmt((100 * x.clientCpu) / (x.seconds * os.cpus().length), 0)}% of the CPUs); ` +
              `RSS max ${fmt(x.rssMax / MiB)} MiB`,
          )
          for (const f of x.failures.slice(0, 5)) console.log(`  FAILED: ${f}`)
          if (x.failures.length) failed = true
        }
      }
      const of = (k: ImageServer, f: (x: ImageRound) => number) => median(rounds.map((p) => f(p[k])))
      const ratio = median(rounds.map((p) => p.serve.throughput / p.nginx.throughput))
      const copyRatio = median(rounds.map((p) => p['serve-copy'].throughput / p.nginx.throughput))
      const perGiB = (k: ImageServer) =>
        fmt(
          of(k, (x) => x.serverCpu / (x.bytes / 2 ** 30)),
          2,
        )
      summary.push(
        `${String(clients).padStart(3)} clients: serve ${mbs(of('serve', (x) => x.throughput))}, nginx ${mbs(of('nginx', (x) => x.throughput))}, ` +
          `serve/nginx ${fmt(ratio, 2)}× (target ≥ 0.9×: ${ratio >= 0.9 ? 'met' : 'MISSED'}), ` +
          `serve-copy ${mbs(of('serve-copy', (x) => x.throughput))} serve-copy/nginx ${fmt(copyRatio, 2)}×; ` +
          `TTFB p50 serve ${ms(of('serve', (x) => x.ttfbP50))} nginx ${ms(of('nginx', (x) => x.ttfbP50))}, ` +
          `p99 serve ${ms(of('serve', (x) => x.ttfbP99))} nginx ${ms(of('nginx', (x) => x.ttfbP99))}; ` +
          `serve RSS max ${fmt(Math.max(...rounds.map((p) => p.serve.rssMax)) / MiB)} MiB (median sample ${fmt(of('serve', (x) => x.rssMedian) / MiB)} MiB), ` +
          `serve-copy ${fmt(Math.max(...rounds.map((p) => p['serve-copy'].rssMax)) / MiB)} MiB; ` +
          `CPU per GiB: serve ${perGiB('serve')} s, serve-copy ${perGiB('serve-copy')} s, nginx ${perGiB('nginx')} s, ` +
          `curl ${fmt(
            of('serve', (x) => x.clientCpu / (x.bytes / 2 ** 30)),
            2,
          )} s`,
      )
    }
    console.log('\n### Images at load: medians')
    for (const l of summary) console.log(l)
  } finally {
    await nginx?.stop()
    await serveCopy.stop()
    await serve.stop()
  }
  return failed
}

async function control(dir: string): Promise<boolean> {
  const s = await serveConfig(dir, 'serve-control', 'unknown_macs: enlist\n')
  const serve = await startServe(s.config, s.url, path.join(dir, 'serve-control.log'))
  let failed = false
  try {
    console.log(`\n## The control plane at load: ${MACHINES} machines`)
    const r = await controlRun({
      url: s.url,
      pid: serve.pid,
      stateDb: STATE_DB(stateDir(dir, 'serve-control')),
      machines: MACHINES,
      rampMs: 10_000,
    })
    console.log(`${r.requests} requests in ${fmt(r.seconds)} s; ${r.failures.length} failed`)
    for (const f of r.failures.slice(0, 10)) console.log(`  FAILED: ${f}`)
    for (const [route, l] of Object.entries(r.latency))
      console.log(
        `  ${route.padEnd(20)} ${String(l.n).padStart(6)} requests: p50 ${fmt(l.p50)} ms, p99 ${fmt(l.p99)} ms, max ${fmt(l.max)} ms`,
      )
    const p99 = r.latency['all agent requests']!.p99
    console.log(`agents' p99 ${fmt(p99)} ms (target < 50 ms: ${p99 < 50 ? 'met' : 'MISSED'})`)
    console.log(
      `events: ${r.dbEvents} in the database, ${r.streamEvents} on the stream; ${r.missing.length} missing or doubled`,
    )
    for (const m of r.missing.slice(0, 10)) console.log(`  MISSING: ${m}`)
    console.log(
      `stream lag (request sent → event received): p50 ${ms(r.lag.p50)}, p99 ${ms(r.lag.p99)}, max ${ms(r.lag.max)}`,
    )
    console.log(
      `deployed: ${r.deployedInDb} in the database, ${r.deployedOnStream} on the stream's last machine message`,
    )
    console.log(
      `CPU: serve ${fmt(r.serveCpu)} s (${fmt((100 * r.serveCpu) / r.seconds, 0)}% of one CPU), agents + stream client ${fmt(r.clientCpu)} s; ` +
        `serve RSS ${fmt(r.serveRssStart / MiB)} → max ${fmt(r.serveRssMax / MiB)} MiB`,
    )
    failed =
      r.failures.length > 0 ||
      r.missing.length > 0 ||
      r.streamEvents !== r.dbEvents ||
      r.deployedInDb !== MACHINES ||
      r.deployedOnStream !== MACHINES
  } finally {
    await serve.stop()
    if (process.env.BENCH_STATE_TMPFS === '1')
      await fsp.rm(stateDir(dir, 'serve-control'), { recursive: true, force: true })
  }
  return failed
}

await main()
