// The processes `make bench-serve` measures, and how it measures them: `hwimage serve` as an
// operator runs it (the CLI, bin/hwimage, a config file), nginx serving the same image
// directory, CPU time and resident memory read from /proc (proc(5): utime + stime in clock
// ticks, VmRSS), free ports, percentiles.

import { type ChildProcess, spawn } from 'node:child_process'
import { openSync, readFileSync, promises as fsp } from 'node:fs'
import net from 'node:net'
import path from 'node:path'

export const REPO = path.resolve(import.meta.dirname, '..')
export const CLI = path.join(REPO, 'bin', 'hwimage')
/** USER_HZ: the unit of utime and stime in /proc/PID/stat on Linux/x86-64. */
const TICKS_PER_SECOND = 100

/** A port nobody listens on now. */
export async function freePort(): Promise<number> {
  const s = net.createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const port = (s.address() as net.AddressInfo).port
  await new Promise((r) => s.close(r))
  return port
}

/** CPU seconds (user + system) a process has used so far; undefined once it is gone. */
export function cpuSeconds(pid: number): number | undefined {
  try {
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND
  } catch {
    return undefined
  }
}

/** Resident memory of a process in bytes (VmRSS). */
export function rssBytes(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) * 1024 : undefined
  } catch {
    return undefined
  }
}

/** The pids whose parent is `pid` (nginx's workers under its master). */
export async function childrenOf(pid: number): Promise<number[]> {
  const out: number[] = []
  for (const e of await fsp.readdir('/proc')) {
    if (!/^\d+$/.test(e)) continue
    try {
      const stat = await fsp.readFile(`/proc/${e}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (ppid === pid) out.push(Number(e))
    } catch {}
  }
  return out
}

/** Samples a process's RSS every `everyMs` until stopped: the samples in bytes. */
export function sampleRss(pid: number, everyMs = 100): { stop(): number[] } {
  const samples: number[] = []
  const take = () => {
    const r = rssBytes(pid)
    if (r !== undefined) samples.push(r)
  }
  take()
  const t = setInterval(take, everyMs)
  return {
    stop() {
      clearInterval(t)
      take()
      return samples
    },
  }
}

/** The p-th percentile (0–100) of `values`, nearest rank. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!
}

export const median = (values: readonly number[]): number => percentile(values, 50)

/** A server process the bench started; `stop()` ends it and waits. */
export interface Started {
  pid: number
  url: string
  child: ChildProcess
  stop(): Promise<void>
}

/** `hwimage serve CONFIG --json`, its log (one JSON line per request) written to `logFile`. */
export async function startServe(
  config: string,
  url: string,
  logFile: string,
  env: Record<string, string> = {},
): Promise<Started> {
  const log = openSync(logFile, 'a')
  // BENCH_PROFILE=DIR: serve runs under node --cpu-prof, its profile written to DIR when it stops.
  const profile = process.env.BENCH_PROFILE
  const argv = profile
    ? ['node', '--cpu-prof', `--cpu-prof-dir=${path.resolve(profile)}`, path.join(REPO, 'dist/cli/run.js')]
    : [CLI]
  const child = spawn(argv[0]!, [...argv.slice(1), 'serve', config, '--json'], {
    stdio: ['ignore', log, log],
    env: { ...process.env, ...env },
  })
  await waitForPort(url, child, () => readFileSync(logFile, 'utf8').slice(-2000))
  return started(child, url)
}

/** nginx (Debian's) with `conf` as its whole configuration, in the foreground. */
export async function startNginx(conf: string, prefix: string, url: string): Promise<Started> {
  const child = spawn('nginx', ['-p', prefix, '-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] })
  let err = ''
  child.stderr!.on('data', (b: Buffer) => (err += b))
  await waitForPort(url, child, () => err)
  return started(child, url)
}

/** An nginx configuration serving `imageDir` at /images/NAME/ as serve does (sendfile, its default on Debian). */
export function nginxConfig(dir: string, port: number, name: string, imageDir: string): string {
  return `daemon off;
worker_processes 2;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
events { worker_connections 4096; }
http {
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  access_log ${dir}/nginx-access.log;
  sendfile on;
  tcp_nopush on;
  keepalive_timeout 65;
  client_body_temp_path ${dir}/nginx-body;
  proxy_temp_path ${dir}/nginx-proxy;
  fastcgi_temp_path ${dir}/nginx-fastcgi;
  uwsgi_temp_path ${dir}/nginx-uwsgi;
  scgi_temp_path ${dir}/nginx-scgi;
  server {
    listen 127.0.0.1:${port};
    location /images/${name}/ { alias ${imageDir}/; }
  }
}
`
}

function started(child: ChildProcess, url: string): Started {
  return {
    pid: child.pid!,
    url,
    child,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return
      const gone = new Promise((r) => child.once('exit', r))
      child.kill('SIGTERM')
      await gone
    },
  }
}

async function waitForPort(url: string, child: ChildProcess, output: () => string): Promise<void> {
  const u = new URL(url)
  const deadline = Date.now() + 30_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${child.spawnfile} exited (${child.exitCode}): ${output()}`)
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(Number(u.port), u.hostname, () => (s.destroy(), resolve(true)))
      s.on('error', () => resolve(false))
    })
    if (ok) return
    if (Date.now() > deadline) throw new Error(`${child.spawnfile} did not listen on ${url} in 30 s: ${output()}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}
