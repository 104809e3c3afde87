// `make bench`: the installer against its peers, on the same image and the same target,
// in one run, repeated, medians and ratios printed as a Markdown table (docs/benchmarks.md).
//
// Image: $HWIMAGE_BENCH_IMAGE_DIR (the Makefile sets it to the default image, building it
// when missing), a `hwimage build` output directory: manifest.json, NAME.img,
// NAME.img.zst, NAME.img.bmap, SHA256SUMS. Target: a loop device (direct I/O) over a file
// pre-filled with non-zero bytes, image size + 1 GiB, in $BENCH_TARGET_DIR (default /var/tmp,
// on disk; /dev/shm takes the disk out and leaves the pipeline). Every write peer's time
// includes a final fdatasync of the target. Peers run round-robin, BENCH_REPS times
// (default 3). Two limits frame the figures: decompression (`zstd -dc > /dev/null`) and
// the disk (dd writing as many bytes as the bmap maps, from /dev/zero, direct I/O).
// The raw-source pairs compare what an operator with the uncompressed image would run:
// hwimage and bmaptool on NAME.img with its bmap (only the mapped bytes written) against
// dd and qemu-img of the whole raw image.

import { spawn, type SpawnOptions } from 'node:child_process'
import { existsSync, promises as fsp, readFileSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const REPS = Number(process.env.BENCH_REPS ?? 3)
const MiB = 1 << 20

interface Peer {
  name: string
  /** The commands, shown in the table's notes. */
  show: string
  run(): Promise<void>
  writes: boolean
}

function imageDir(): string {
  const d = process.env.HWIMAGE_BENCH_IMAGE_DIR
  if (d && existsSync(path.join(d, 'manifest.json'))) return d
  throw new Error(
    `no image${d ? ` in ${d}` : ''}: run \`make bench\` (it builds the default image), or build one (\`hwimage build -o DIR\`) and set HWIMAGE_BENCH_IMAGE_DIR=DIR`,
  )
}

/** Runs a pipeline of programs (stdout of each into the next), stdin/stdout of the ends as given; rejects on any failure. */
async function pipe(argvs: string[][], opts: { stdout?: number | 'ignore' } = {}): Promise<void> {
  const procs = argvs.map((argv, i) => {
    const o: SpawnOptions = {
      stdio: [i === 0 ? 'ignore' : 'pipe', i === argvs.length - 1 ? (opts.stdout ?? 'ignore') : 'pipe', 'pipe'],
    }
    return spawn(argv[0]!, argv.slice(1), o)
  })
  for (let i = 0; i + 1 < procs.length; i++) procs[i]!.stdout!.pipe(procs[i + 1]!.stdin!)
  await Promise.all(
    procs.map(
      (p, i) =>
        new Promise<void>((resolve, reject) => {
          let err = ''
          p.stderr!.on('data', (b: Buffer) => (err += b))
          p.on('error', reject)
          p.on('close', (status) =>
            status === 0
              ? resolve()
              : reject(new Error(`${argvs[i]!.join(' ')}: exit ${status}: ${err.trim().split('\n').pop()}`)),
          )
        }),
    ),
  )
}

const run = (argv: string[]): Promise<void> => pipe([argv])

async function capture(argv: string[]): Promise<string> {
  return await new Promise((resolve, reject) => {
    const p = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    p.stdout.on('data', (b: Buffer) => (out += b))
    p.on('error', reject)
    p.on('close', (s) => (s === 0 ? resolve(out) : reject(new Error(`${argv.join(' ')}: exit ${s}`))))
  })
}

async function fdatasync(dev: string): Promise<void> {
  const fh = await fsp.open(dev, 'r+')
  await fh.datasync()
  await fh.close()
}

async function freePort(): Promise<number> {
  return await new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port
      s.close(() => resolve(port))
    })
  })
}

/** nginx serving `root` on 127.0.0.1:port, from a config in `dir`; returns a stop function. */
async function startNginx(dir: string, root: string): Promise<{ url: string; stop: () => Promise<void> }> {
  const port = await freePort()
  const conf = path.join(dir, 'nginx.conf')
  await fsp.writeFile(
    conf,
    [
      'user root;',
      'worker_processes 1;',
      `pid ${dir}/nginx.pid;`,
      `error_log ${dir}/nginx-error.log;`,
      'events { worker_connections 64; }',
      'http {',
      '  access_log off; sendfile on; tcp_nopush on;',
      `  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;`,
      `  types { application/octet-stream img zst bmap; } default_type application/octet-stream;`,
      `  server { listen 127.0.0.1:${port}; root ${root}; }`,
      '}',
    ].join('\n'),
  )
  const p = spawn('nginx', ['-p', dir, '-c', conf, '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'inherit'] })
  const url = `http://127.0.0.1:${port}`
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.end()
        resolve(true)
      })
      s.on('error', () => resolve(false))
    })
    if (ok) break
    await new Promise((r) => setTimeout(r, 50))
  }
  return {
    url,
    stop: async () => {
      p.kill('SIGQUIT')
      await new Promise((r) => p.on('close', r))
    },
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

/**
 * CPU seconds used so far by this process's waited-for children and their descendants
 * (proc(5), /proc/self/stat fields 16–17, cutime + cstime): the work a peer did, which on
 * a busy machine says more than its wall time.
 */
function childrenCpu(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // fields[0] is field 3 (state): cutime is field 16, cstime field 17.
  return (Number(fields[13]) + Number(fields[14])) / 100
}

async function main(): Promise<void> {
  const dir = imageDir()
  const manifest = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as {
    image: { file: string; sizeBytes: number; mappedBytes?: number }
  }
  const img = path.join(dir, manifest.image.file)
  const zst = `${img}.zst`
  const bmap = `${img}.bmap`
  const sums = readFileSync(path.join(dir, 'SHA256SUMS'), 'utf8')
  const zstSum = new RegExp(`^([0-9a-f]{64}) [ *]${path.basename(zst).replace(/\./g, '\\.')}$`, 'm').exec(sums)?.[1]
  if (!zstSum) throw new Error(`no digest for ${path.basename(zst)} in SHA256SUMS`)
  const hwimage = path.join(ROOT, 'bin/hwimage')
  if (!existsSync(path.join(ROOT, 'dist/cli/main.js'))) throw new Error('dist/ is missing: run `make setup` first')

  const work = await fsp.mkdtemp(path.join(process.env.BENCH_TARGET_DIR ?? '/var/tmp', 'hwimage-bench-'))
  const backing = path.join(work, 'target.raw')
  const targetBytes = manifest.image.sizeBytes + 1024 * MiB
  process.stderr.write(`bench: filling ${(targetBytes / 2 ** 30).toFixed(1)} GiB of target with non-zero bytes …\n`)
  const fill = Buffer.alloc(16 * MiB)
  for (let i = 0; i < fill.length; i++) fill[i] = (((i * 131) >> 3) % 255) + 1
  const fh = await fsp.open(backing, 'w')
  for (let at = 0; at < targetBytes; at += fill.length)
    await fh.write(fill, 0, Math.min(fill.length, targetBytes - at), at)
  await fh.datasync()
  await fh.close()
  // Direct I/O where the backing file system has it (not tmpfs).
  const loop = (await capture(['losetup', '--find', '--show', '--direct-io=on', backing])).trim()
  const mappedBlocks = Math.ceil((manifest.image.mappedBytes ?? manifest.image.sizeBytes) / (4 * MiB))
  const nginx = await startNginx(work, dir)
  const cleanup = async (): Promise<void> => {
    await nginx.stop().catch(() => {})
    await run(['losetup', '-d', loop]).catch(() => {})
    await fsp.rm(work, { recursive: true, force: true })
  }
  process.on('SIGINT', () => void cleanup().then(() => process.exit(130)))

  const zstUrl = `${nginx.url}/${path.basename(zst)}`
  const peers: Peer[] = [
    {
      name: 'zstd -dc > /dev/null',
      show: `zstd -dc ${path.basename(zst)} > /dev/null`,
      writes: false,
      run: () => pipe([['zstd', '-q', '-dc', zst]], { stdout: 'ignore' }),
    },
    {
      name: 'hwimage (.zst + bmap)',
      show: `hwimage install ${path.basename(zst)} --disk LOOP --sha256 HEX --yes --json`,
      writes: true,
      run: () =>
        pipe([[hwimage, 'install', zst, '--disk', loop, '--bmap', bmap, '--sha256', zstSum, '--yes', '--json']], {
          stdout: 'ignore',
        }),
    },
    {
      name: 'hwimage (URL, nginx)',
      show: `hwimage install ${nginx.url}/${path.basename(zst)} --sha256-url …/SHA256SUMS --disk LOOP --yes --json`,
      writes: true,
      run: () =>
        pipe(
          [[hwimage, 'install', zstUrl, '--disk', loop, '--sha256-url', `${nginx.url}/SHA256SUMS`, '--yes', '--json']],
          { stdout: 'ignore' },
        ),
    },
    {
      name: 'bmaptool copy (.zst + bmap)',
      show: `bmaptool copy --bmap ${path.basename(bmap)} ${path.basename(zst)} LOOP`,
      writes: true,
      run: () => run(['bmaptool', '-q', 'copy', '--bmap', bmap, zst, loop]),
    },
    {
      name: 'zstd -dc | dd oflag=direct',
      show: `zstd -dc ${path.basename(zst)} | dd of=LOOP bs=4M iflag=fullblock oflag=direct`,
      writes: true,
      run: () =>
        pipe([
          ['zstd', '-q', '-dc', zst],
          ['dd', `of=${loop}`, 'bs=4M', 'iflag=fullblock', 'oflag=direct', 'status=none'],
        ]),
    },
    {
      name: 'write limit: dd mapped bytes',
      show: `dd if=/dev/zero of=LOOP bs=4M count=${mappedBlocks} oflag=direct (the bytes the bmap maps)`,
      writes: true,
      run: () =>
        run(['dd', 'if=/dev/zero', `of=${loop}`, 'bs=4M', `count=${mappedBlocks}`, 'oflag=direct', 'status=none']),
    },
    {
      name: 'hwimage (raw .img + bmap)',
      show: `hwimage install ${path.basename(img)} --bmap ${path.basename(bmap)} --disk LOOP --yes --json`,
      writes: true,
      run: () =>
        pipe([[hwimage, 'install', img, '--disk', loop, '--bmap', bmap, '--yes', '--json']], { stdout: 'ignore' }),
    },
    {
      name: 'bmaptool copy (raw .img + bmap)',
      show: `bmaptool copy --bmap ${path.basename(bmap)} ${path.basename(img)} LOOP`,
      writes: true,
      run: () => run(['bmaptool', '-q', 'copy', '--bmap', bmap, img, loop]),
    },
    {
      name: 'dd raw oflag=direct',
      show: `dd if=${path.basename(img)} of=LOOP bs=4M oflag=direct`,
      writes: true,
      run: () => run(['dd', `if=${img}`, `of=${loop}`, 'bs=4M', 'oflag=direct', 'status=none']),
    },
    {
      name: 'qemu-img convert -n',
      show: `qemu-img convert -n -f raw -O raw ${path.basename(img)} LOOP`,
      writes: true,
      run: () => run(['qemu-img', 'convert', '-n', '-f', 'raw', '-O', 'raw', img, loop]),
    },
  ]
  // BENCH_PEERS=hwimage,zstd runs only the peers whose names start with one of these.
  const only = process.env.BENCH_PEERS?.split(',')
    .map((x) => x.trim())
    .filter(Boolean)
  if (only) peers.splice(0, peers.length, ...peers.filter((p) => only.some((o) => p.name.startsWith(o))))
  const times = new Map<string, number[]>(peers.map((p) => [p.name, []]))
  const cpus = new Map<string, number[]>(peers.map((p) => [p.name, []]))
  const loadStart = os.loadavg()[0]!
  try {
    // One warm-up pass (page cache, nginx, node's compile cache), not counted.
    process.stderr.write('bench: warm-up …\n')
    for (const p of peers) await p.run()
    for (let rep = 1; rep <= REPS; rep++) {
      for (const p of peers) {
        const t = performance.now()
        const c = childrenCpu()
        await p.run()
        if (p.writes) await fdatasync(loop)
        const s = (performance.now() - t) / 1000
        const cpu = childrenCpu() - c
        times.get(p.name)!.push(s)
        cpus.get(p.name)!.push(cpu)
        process.stderr.write(`bench: rep ${rep}/${REPS} ${p.name}: ${s.toFixed(2)} s, ${cpu.toFixed(2)} s CPU\n`)
      }
    }
  } finally {
    await cleanup()
  }

  const m = (map: Map<string, number[]>, name: string): number => (map.get(name)?.length ? median(map.get(name)!) : NaN)
  const hw = m(times, 'hwimage (.zst + bmap)')
  const limit = m(times, 'zstd -dc > /dev/null')
  const hwCpu = m(cpus, 'hwimage (.zst + bmap)')
  const cpuRatio = (name: string): string => (m(cpus, name) / hwCpu).toFixed(2)
  // The median of each round's own ratio: the two peers of a round ran seconds apart, at
  // the same speed of the machine, which drifts more than that between rounds here.
  const paired = (a: string, b: string): string => {
    const xs = times.get(a) ?? []
    const ys = times.get(b) ?? []
    return xs.length && xs.length === ys.length
      ? `${median(xs.map((x, i) => x / ys[i]!)).toFixed(2)} paired`
      : 'n/a paired'
  }
  const hwName = 'hwimage (.zst + bmap)'
  const rawName = 'hwimage (raw .img + bmap)'
  /** "a / b = wall (paired), CPU": how many times longer `a` took than `b`. */
  const against = (a: string, b: string): string =>
    `${(m(times, a) / m(times, b)).toFixed(2)} wall (${paired(a, b)}), ${(m(cpus, a) / m(cpus, b)).toFixed(2)} CPU`
  const cpu = `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'CPU'}`
  const lines = [
    `Image: \`${path.basename(img)}\` (${(manifest.image.sizeBytes / 2 ** 30).toFixed(1)} GiB raw, ${((manifest.image.mappedBytes ?? 0) / MiB).toFixed(0)} MiB mapped, .zst ${((await fsp.stat(zst)).size / MiB).toFixed(0)} MiB); target: loop device (direct I/O) over a file pre-filled with non-zero bytes in ${path.dirname(work)}; ${cpu}; load average ${loadStart.toFixed(1)} at the start, ${os.loadavg()[0]!.toFixed(1)} at the end; ${REPS} repetitions, medians; every write includes a final fdatasync. CPU = user + system seconds of the peer's whole process tree.`,
    '',
    '| peer | median s | min s | max s | peer / hwimage | CPU s | CPU / hwimage |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...peers.map((p) => {
      const xs = times.get(p.name)!
      return `| ${p.name} | ${median(xs).toFixed(2)} | ${Math.min(...xs).toFixed(2)} | ${Math.max(...xs).toFixed(2)} | ${(median(xs) / hw).toFixed(2)} | ${median(cpus.get(p.name)!).toFixed(2)} | ${cpuRatio(p.name)} |`
    }),
    '',
    `- hwimage / (zstd -dc > /dev/null) = ${(hw / limit).toFixed(2)} wall (${paired(hwName, 'zstd -dc > /dev/null')}), ${(hwCpu / m(cpus, 'zstd -dc > /dev/null')).toFixed(2)} CPU (goal ≤ 1.2)`,
    `- hwimage / max(decompression, disk write limit) = ${(hw / Math.max(limit, m(times, 'write limit: dd mapped bytes') || 0)).toFixed(2)} wall (the slowest of the two bounds any installer)`,
    `- bmaptool copy / hwimage = ${against('bmaptool copy (.zst + bmap)', hwName)} (goal ≥ 3)`,
    `- hwimage URL / hwimage file = ${against('hwimage (URL, nginx)', hwName)} (goal ≤ 1.3)`,
    `- raw image: dd raw / hwimage raw = ${against('dd raw oflag=direct', rawName)} (> 1: writing only the mapped bytes wins)`,
    `- raw image: bmaptool copy raw / hwimage raw = ${against('bmaptool copy (raw .img + bmap)', rawName)} (> 1)`,
    `- raw image: qemu-img convert / hwimage raw = ${against('qemu-img convert -n', rawName)}`,
    '',
    'Commands (LOOP = the loop device):',
    '',
    ...peers.map((p) => `- ${p.name}: \`${p.show}\``),
  ]
  process.stdout.write(lines.join('\n') + '\n')
}

await main()
