import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { PassThrough } from 'node:stream'
import { after, before, test } from 'node:test'
import { decodeBmap } from '../disk/bmap.js'
import { HwimageError } from '../errors.js'
import { readSeekTable } from '../io/framed-zstd.js'
import { fileReadAt } from '../io/read-fully.js'
import { run } from '../tools/run.js'
import { garbageFile, makeFixtureImage, type FixtureImage } from './image.fixture.js'
import { install, type InstallOptions } from './install.js'
import { assertNoTable, assertInstalled, fileDigest, readBytes } from './install.fixture.js'

const MiB = 1 << 20
const DISK = 64 * MiB
let dir: string
let fx: FixtureImage
let other: FixtureImage
let n = 0

before(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hwimage-install-'))
  fx = await makeFixtureImage(dir)
  await fsp.mkdir(path.join(dir, 'other'))
  other = await makeFixtureImage(path.join(dir, 'other'), { formats: [] })
  // What zstd itself writes: one frame, no seek table (the decompressor reads it whole).
  await run(['zstd', '-q', '-f', '-o', path.join(dir, 'plain.img.zst'), fx.img])
})
after(async () => {
  await fsp.rm(dir, { recursive: true, force: true })
})

/** A fresh target file full of garbage. */
async function target(size = DISK): Promise<string> {
  const file = path.join(dir, `disk-${++n}.raw`)
  await garbageFile(file, size, n)
  return file
}

const code = (c: string) => (e: unknown) => e instanceof HwimageError && e.code === c

test('install() writes a .zst with its bmap onto a garbage-filled disk: fsck-clean, GPT at the real end, boot code kept', async () => {
  const disk = await target()
  const events: string[] = []
  const r = await install({ source: fx.zst, disk, onEvent: (name) => events.push(name) })
  await assertInstalled(disk, fx, DISK, dir)
  assert.equal(r.mode, 'bmap')
  assert.equal(r.bmap!.location, fx.bmap)
  assert.equal(r.ranges!.verified, r.bmap!.ranges)
  assert.equal(r.source.format, 'zstd')
  assert.match(r.digests.source!, /^[0-9a-f]{64}$/)
  assert.equal(r.bytes.image, fx.size)
  assert.equal(r.bytes.read, (await fsp.stat(fx.zst)).size, 'the whole .zst was read')
  assert.equal(r.gptResize!.backupOffset, DISK - 33 * 512)
  assert.deepEqual(
    events.filter((e) => e !== 'step'),
    ['start', 'verified', 'done'],
  )
  assert.deepEqual(r.steps, ['zero-ends', 'write-image', 'check-source', 'finish-table', 'write-first-mib'])
  assert.equal(events.filter((e) => e === 'step').length, r.steps.length, 'one step event per step')
})

for (const [label, pick, extra] of [
  ['a raw image with its bmap', () => fx.img, {}],
  ['a raw image without a bmap (span zeroed, data blocks written)', () => fx.img, { bmap: false }],
  ['a .zst without a bmap', () => fx.zst, { bmap: false }],
  [
    'a plain one-frame .zst (no seek table) with the bmap',
    () => path.join(dir, 'plain.img.zst'),
    {
      get bmap() {
        return fx.bmap
      },
    },
  ],
  ['an .xz', () => fx.xz, {}],
  ['a .gz', () => fx.gz, {}],
  ['a qcow2', () => fx.qcow2, {}],
] as Array<[string, () => string, Partial<InstallOptions>]>) {
  test(`install() writes ${label} onto a garbage-filled disk and it checks clean`, async () => {
    const disk = await target()
    const r = await install({ source: pick(), disk, ...extra })
    await assertInstalled(disk, fx, DISK, dir)
    if (pick() === fx.img && extra.bmap === undefined) {
      // A raw file with a bmap: only the first MiB and the mapped ranges are read, each byte once.
      const bmap = decodeBmap(await fsp.readFile(fx.bmap, 'utf8'))
      const mappedInFirstMiB = bmap.ranges.reduce(
        (s, x) => s + Math.max(0, Math.min(MiB, (x.last + 1) * 4096) - x.first * 4096),
        0,
      )
      assert.equal(r.bytes.read, r.bmap!.mappedBytes + MiB - mappedInFirstMiB)
    }
    if (extra.bmap === false || pick() === fx.qcow2) {
      assert.equal(r.mode, 'nonzero')
      assert.equal(r.zeroing[2]!.method, 'punch-hole')
    }
  })
}

test('install() reads an image from stdin', async () => {
  const disk = await target()
  const stdin = new PassThrough()
  void fsp.readFile(fx.zst).then((b) => stdin.end(b))
  const r = await install({ source: '-', disk, stdin, bmap: fx.bmap })
  await assertInstalled(disk, fx, DISK, dir)
  assert.equal(r.source.kind, 'stdin')
})

test('install() checks --sha256 and --sha256-url before the first MiB, and --verify reads everything back', async () => {
  const sums = await fsp.readFile(fx.sums, 'utf8')
  const zstSum = /^([0-9a-f]{64}) {2}fixture\.img\.zst$/m.exec(sums)![1]!
  const disk = await target()
  const r = await install({ source: fx.zst, disk, sha256: zstSum.toUpperCase(), verify: true, imageDigest: true })
  assert.equal(r.digests.source, zstSum)
  assert.equal(r.digests.sourceVerified, true)
  assert.equal(
    r.digests.image,
    createHash('sha256')
      .update(await fsp.readFile(fx.img))
      .digest('hex'),
  )
  assert.ok(r.readBack!.bytes >= r.bytes.written)
  const r2 = await install({ source: fx.xz, disk: await target(), sha256Url: fx.sums })
  assert.equal(r2.digests.sourceVerified, true)
})

test('a wrong digest fails with CHECKSUM_MISMATCH and leaves the first MiB zeroed', async () => {
  const disk = await target()
  await assert.rejects(
    install({ source: fx.zst, disk, sha256: 'ab'.repeat(32) }),
    (e: unknown) => code('CHECKSUM_MISMATCH')(e) && /first and last MiB .* are zeroed/.test((e as Error).message),
  )
  await assertNoTable(disk)
})

test('a truncated stream fails with SOURCE_TRUNCATED and leaves the first MiB zeroed', async () => {
  const cut = path.join(dir, 'cut.img.zst')
  const all = await fsp.readFile(fx.zst)
  await fsp.writeFile(cut, all.subarray(0, Math.floor(all.length * 0.8)))
  for (const bmap of [fx.bmap, false] as const) {
    const disk = await target()
    await assert.rejects(install({ source: cut, disk, bmap }), code('SOURCE_TRUNCATED'))
    await assertNoTable(disk)
  }
})

test('one corrupt byte in the compressed stream is caught (by the range digest or zstd) and the first MiB stays zeroed', async () => {
  // In the frame that holds the first bmap range past the first MiB: a frame the install decompresses.
  const bmap = decodeBmap(await fsp.readFile(fx.bmap, 'utf8'))
  const mapped = bmap.ranges.find((x) => x.first * 4096 >= MiB)!.first * 4096
  const frame = await frameHolding(fx.zst, mapped)
  const bad = path.join(dir, 'bad.img.zst')
  const all = Buffer.from(await fsp.readFile(fx.zst))
  all[frame.compressedOffset + Math.floor(frame.compressedSize / 2)]! ^= 0x01
  await fsp.writeFile(bad, all)
  const withBmap = await target()
  await assert.rejects(
    install({ source: bad, disk: withBmap, bmap: fx.bmap }),
    (e: unknown) => code('CHECKSUM_MISMATCH')(e) || code('SOURCE_CORRUPT')(e),
  )
  await assertNoTable(withBmap)
  const without = await target()
  await assert.rejects(install({ source: bad, disk: without, bmap: false }), code('SOURCE_CORRUPT'))
  await assertNoTable(without)
})

test('a corrupt frame that holds no mapped data is not decompressed: the install is right without --sha256, refused with it', async () => {
  const bmap = decodeBmap(await fsp.readFile(fx.bmap, 'utf8'))
  const { frames } = (await seekTableOf(fx.zst))!
  const free = frames.find(
    (f) =>
      !bmap.ranges.some((x) => x.first * 4096 < f.imageOffset + f.imageSize && (x.last + 1) * 4096 > f.imageOffset),
  )
  assert.ok(free, 'the fixture has a frame without mapped blocks')
  const bad = path.join(dir, 'bad-free.img.zst')
  const all = Buffer.from(await fsp.readFile(fx.zst))
  all[free.compressedOffset + Math.floor(free.compressedSize / 2)]! ^= 0x01
  await fsp.writeFile(bad, all)
  const disk = await target()
  await install({ source: bad, disk, bmap: fx.bmap })
  await assertInstalled(disk, fx, DISK, dir)
  const sums = await fsp.readFile(fx.sums, 'utf8')
  const good = /^([0-9a-f]{64}) {2}fixture\.img\.zst$/m.exec(sums)![1]!
  const refused = await target()
  await assert.rejects(install({ source: bad, disk: refused, bmap: fx.bmap, sha256: good }), code('CHECKSUM_MISMATCH'))
  await assertNoTable(refused)
})

test('a bmap belonging to another image of the same size fails on the first range that differs', async () => {
  const disk = await target()
  await assert.rejects(
    install({ source: fx.zst, disk, bmap: other.bmap }),
    (e: unknown) => code('CHECKSUM_MISMATCH')(e) && /bmap range \d+/.test((e as Error).message),
  )
  await assertNoTable(disk)
})

test('a bmap for an image of another size, or with damaged XML or checksum, is refused before anything is written', async () => {
  const bigger = await makeFixtureImage(path.join(dir, 'other'), { name: 'bigger', sizeMiB: 32, formats: [] })
  const xml = await fsp.readFile(fx.bmap, 'utf8')
  const broken = path.join(dir, 'broken.bmap')
  await fsp.writeFile(broken, xml.replace('</BlockMap>', '</BlockMap'))
  const tampered = path.join(dir, 'tampered.bmap')
  const digit = xml.search(/chksum="[0-9a-f]/) + 8
  await fsp.writeFile(tampered, xml.slice(0, digit) + (xml[digit] === '0' ? '1' : '0') + xml.slice(digit + 1))
  for (const bmap of [bigger.bmap, broken, tampered]) {
    const disk = await target()
    const before = await fileDigest(disk)
    await assert.rejects(install({ source: fx.zst, disk, bmap }), code('FORMAT_BMAP'))
    assert.equal(await fileDigest(disk), before, 'the target is untouched')
  }
})

test('a qcow2 with a bad header is refused before anything is written', async () => {
  const bad = path.join(dir, 'bad.qcow2')
  const q = Buffer.from(await fsp.readFile(fx.qcow2))
  q.writeUInt32BE(7, 4) // version
  await fsp.writeFile(bad, q)
  const disk = await target()
  const before = await fileDigest(disk)
  await assert.rejects(
    install({ source: bad, disk }),
    (e: unknown) => code('FORMAT_QCOW2')(e) && /version/.test((e as Error).message),
  )
  assert.equal(await fileDigest(disk), before)
})

test('a source larger than the target is refused, naming both sizes, before anything is written', async () => {
  const disk = await target(16 * MiB)
  const before = await fileDigest(disk)
  await assert.rejects(
    install({ source: fx.zst, disk }),
    (e: unknown) =>
      code('TARGET_TOO_SMALL')(e) &&
      /25165824 bytes/.test((e as Error).message) &&
      /16777216 bytes/.test((e as Error).message),
  )
  assert.equal(await fileDigest(disk), before)
})

test('--dry-run reports the plan and writes nothing', async () => {
  const disk = await target()
  const before = await fileDigest(disk)
  const r = await install({ source: fx.zst, disk, dryRun: true })
  assert.equal(r.dryRun, true)
  assert.equal(r.mode, 'bmap')
  assert.equal(r.image.size, fx.size)
  assert.deepEqual(
    r.image.partitions!.map((p) => p.number),
    [1, 14, 15],
  )
  assert.equal(r.gptResize!.lastUsableLba, String(DISK / 512 - 34))
  assert.equal(await fileDigest(disk), before)
})

test('the seed step places a partition when planned and writes into it before the first MiB', async () => {
  const disk = await target()
  const seedBytes = Buffer.alloc(MiB, 0x5e)
  await install({
    source: fx.zst,
    disk,
    seed: {
      place: (gpt) => {
        const last = gpt.lastUsableLba - ((gpt.lastUsableLba + 1n) % 2048n)
        const first = last - 2047n
        const partitions = [
          ...gpt.partitions,
          {
            number: 2,
            typeGuid: 'EBD0A0A2-B9E5-4433-87C0-68B6B72699C7',
            uniqueGuid: 'AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE',
            firstLba: first,
            lastLba: last,
            attributes: 0n,
            name: 'cidata',
          },
        ]
        return { gpt: { ...gpt, partitions }, number: 2, offset: Number(first * 512n), sizeBytes: MiB }
      },
      write: async ({ placed, target: dev }) => await dev.write(placed.offset, seedBytes),
    },
  })
  const p = JSON.parse((await import('../tools/run.js').then((m) => m.run(['sfdisk', '--json', disk]))).stdout) as {
    partitiontable: { partitions: Array<{ start: number; name: string }> }
  }
  const seed = p.partitiontable.partitions.find((x) => x.name === 'cidata')!
  assert.ok((await readBytes(disk, seed.start * 512, MiB)).equals(seedBytes))
})

test('an abort during the write stops cleanly with INTERRUPTED and the first MiB zeroed', async () => {
  const disk = await target()
  const stdin = new PassThrough()
  const all = await fsp.readFile(fx.img)
  stdin.write(all.subarray(0, 12 * MiB)) // raw through stdin: the rest never comes
  const controller = new AbortController()
  const run = install({
    source: '-',
    disk,
    stdin,
    bmap: false,
    signal: controller.signal,
    onProgress: (p) => {
      if (p.stage === 'write' && p.done >= 8 * MiB) controller.abort()
    },
  })
  await assert.rejects(run, (e: unknown) => code('INTERRUPTED')(e) && (e as HwimageError).exitCode === 130)
  await assertNoTable(disk)
})

/** Serves `root` over HTTP with Range support; `cut(path, n)` may cut the n-th GET of a path after some bytes, `stop` closes the server for good. */
async function staticServer(
  root: string,
  cut: (urlPath: string, nth: number) => { after: number; stop?: boolean } | undefined,
) {
  const http = await import('node:http')
  const seen = new Map<string, number>()
  const ranges: string[] = []
  const server = http.createServer((req, res) => {
    void (async () => {
      const file = path.join(root, decodeURIComponent(req.url!.split('?')[0]!))
      const body = await fsp.readFile(file).catch(() => undefined)
      if (!body) return res.writeHead(404).end()
      const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '')
      const start = m ? Number(m[1]) : 0
      const end = m?.[2] ? Math.min(Number(m[2]) + 1, body.length) : body.length
      if (m && !m[2]) ranges.push(req.headers.range!)
      res.writeHead(m ? 206 : 200, {
        'accept-ranges': 'bytes',
        etag: '"1"',
        'content-length': end - start,
        ...(m ? { 'content-range': `bytes ${start}-${end - 1}/${body.length}` } : {}),
      })
      if (req.method === 'HEAD') return res.end()
      // Only whole-file GETs (the stream, not the head or bmap peeks) count and can be cut.
      const nth = m ? 0 : (seen.get(req.url!) ?? 0) + 1
      if (!m) seen.set(req.url!, nth)
      const c = m ? undefined : cut(req.url!, nth)
      if (!c) return res.end(body.subarray(start, end))
      if (c.stop) server.close()
      res.write(body.subarray(start, start + c.after), () => res.socket?.destroy())
    })()
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as import('node:net').AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}`,
    ranges,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections()
        server.close(() => r())
      }),
  }
}

test('an install from a URL resumes when the server drops the connection mid-stream, finding the bmap and digest beside it', async () => {
  const s = await staticServer(dir, (p, nth) => (p.endsWith('.zst') && nth === 1 ? { after: 300_000 } : undefined))
  try {
    const disk = await target()
    const resumes: Array<Record<string, unknown>> = []
    const progress: number[] = []
    const r = await install({
      source: `${s.url}/fixture.img.zst`,
      disk,
      sha256Url: `${s.url}/SHA256SUMS`,
      http: { retryDelayMs: 5 },
      onEvent: (name, fields) => name === 'resume' && resumes.push(fields),
      onProgress: (p) => p.resumes !== undefined && progress.push(p.resumes),
    })
    await assertInstalled(disk, fx, DISK, dir)
    assert.equal(r.bmap!.location, `${s.url}/fixture.img.bmap`)
    assert.equal(r.digests.sourceVerified, true)
    assert.equal(s.ranges.length, 1, 'one Range request resumed the download')
    // The resume leaves a trace: an event, the progress, the report.
    assert.equal(resumes.length, 1)
    assert.equal(
      `bytes=${String(resumes[0]!.at)}-`,
      s.ranges[0],
      'the event names the byte the Range request asked for',
    )
    assert.deepEqual(r.resumes, { count: 1, bytesRerequested: 0, at: [resumes[0]!.at] })
    assert.ok(progress.length > 0 && progress.every((n) => n === 1), 'the progress after the resume counts it')
  } finally {
    await s.close()
  }
})

test('an install from a URL whose server stops mid-stream fails with NETWORK and leaves the first MiB zeroed', async () => {
  const s = await staticServer(dir, (p) => (p.endsWith('.zst') ? { after: 300_000, stop: true } : undefined))
  try {
    const disk = await target()
    await assert.rejects(
      install({ source: `${s.url}/fixture.img.zst`, disk, http: { retries: 2, retryDelayMs: 5 } }),
      (e: unknown) => code('NETWORK')(e) && /byte \d+/.test((e as Error).message),
    )
    await assertNoTable(disk)
  } finally {
    await s.close()
  }
})

async function seekTableOf(file: string) {
  const fh = await fsp.open(file, 'r')
  try {
    return await readSeekTable(fileReadAt(fh), (await fh.stat()).size, file)
  } finally {
    await fh.close()
  }
}

async function frameHolding(file: string, offset: number) {
  return (await seekTableOf(file))!.frames.find((f) => f.imageOffset <= offset && offset < f.imageOffset + f.imageSize)!
}
