// `hwimage install` and the ways it gets stopped, on a real loop device with the real xz:
// SIGHUP (a closed terminal, a dropped SSH session), SIGTERM and SIGINT interrupt it
// cleanly (exit 130, an INTERRUPTED error event, the target's first and last MiB zeroed),
// also when stderr is a terminal that hung up (EIO) or a pipe nobody reads (EPIPE); and
// after any of those, and after a SIGKILL, no child of hwimage is left running and no spool
// file is left in /dev/shm or the temp dir. A SIGKILL mid-write leaves no primary GPT.
//
// The source is a GPT disk image of base64 text, an .xz of concatenated streams (one
// compressed 4 MiB chunk repeated: cheap to make, slow to decompress), so the install is
// seconds long and the signals land while xz writes its spool.

import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { Readable, Writable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { after, before, test } from 'node:test'
import { encodeGpt, newGpt } from '../../src/disk/gpt.js'
import { GUID_LINUX_ROOT_X86_64 } from '../../src/disk/guid.js'
import { run } from '../../src/tools/run.js'

const MiB = 1 << 20
const CHUNK = 4 * MiB
const CHUNKS = 12
const IMAGE = (2 + CHUNKS * 4) * MiB
const DISK = 96 * MiB
const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url))
/** Every process hwimage starts inherits its environment: this marks them. */
const MARK = `HWIMAGE_SIGNALS_TEST=${randomUUID()}`
const SPOOL_NAME = /^hwimage-(spool|qcow2)-/

let dir: string
let tmp: string
let source: string
let loop: { dev: string; file: string }
let oldTable: { primary: Uint8Array; backup: Uint8Array; backupOffset: bigint }

/** A GPT disk image of IMAGE bytes, as .xz: head (primary GPT), CHUNKS × the same text chunk, tail (backup GPT), each its own xz stream. */
async function makeSource(file: string): Promise<void> {
  let gpt = newGpt({ sectorSize: 512, diskSectors: BigInt(IMAGE / 512) })
  gpt = {
    ...gpt,
    partitions: [
      {
        number: 1,
        typeGuid: GUID_LINUX_ROOT_X86_64,
        uniqueGuid: randomUUID().toUpperCase(),
        firstLba: 2048n,
        lastLba: BigInt((IMAGE - MiB) / 512 - 1),
        attributes: 0n,
        name: 'data',
      },
    ],
  }
  const { primary, backup, backupOffset } = encodeGpt(gpt)
  const head = Buffer.alloc(MiB)
  head.set(primary, 0)
  const tail = Buffer.alloc(MiB)
  tail.set(backup, Number(backupOffset) - (IMAGE - MiB))
  // Text of random base64: xz decodes it at tens of MB/s, a few seconds for the whole image.
  const chunk = Buffer.from(randomBytes(CHUNK).toString('base64').slice(0, CHUNK))
  const xz = async (bytes: Buffer): Promise<Buffer> =>
    (await run(['xz', '-T1', '-3', '-c'], { input: bytes, binary: true })).stdoutBytes
  const [h, c, t] = await Promise.all([xz(head), xz(chunk), xz(tail)])
  await fsp.writeFile(file, Buffer.concat([h, ...Array<Buffer>(CHUNKS).fill(c), t]))
}

before(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hwimage-install-signals-'))
  // The CLI's own temp dir (TMPDIR), so that only its spools could appear in it.
  tmp = path.join(dir, 'tmp')
  await fsp.mkdir(tmp)
  source = path.join(dir, `source-${randomUUID()}.img.xz`)
  await makeSource(source)
  const file = path.join(dir, 'disk.raw')
  await fsp.writeFile(file, '')
  await fsp.truncate(file, DISK)
  loop = { dev: (await run(['losetup', '--find', '--show', file])).stdout.trim(), file }
  // The table a disk had before: a SIGKILL must never leave the image's table half-written in its place.
  let old = newGpt({ sectorSize: 512, diskSectors: BigInt(DISK / 512) })
  old = {
    ...old,
    partitions: [
      {
        number: 1,
        typeGuid: GUID_LINUX_ROOT_X86_64,
        uniqueGuid: randomUUID().toUpperCase(),
        firstLba: 2048n,
        lastLba: BigInt(DISK / 512 - 2048),
        attributes: 0n,
        name: 'old',
      },
    ],
  }
  oldTable = encodeGpt(old)
})
after(async () => {
  if (loop) await run(['losetup', '--detach', loop.dev]).catch(() => {})
  await fsp.rm(dir, { recursive: true, force: true })
})

/** Non-zero bytes over the target's first and last 2 MiB, or an old GPT. */
async function prepareTarget(what: 'garbage' | 'old-table'): Promise<void> {
  const fh = await fsp.open(loop.dev, 'r+')
  try {
    const block = Buffer.alloc(2 * MiB, 0x5a)
    await fh.write(block, 0, block.length, 0)
    await fh.write(block, 0, block.length, DISK - block.length)
    if (what === 'old-table') {
      await fh.write(oldTable.primary, 0, oldTable.primary.length, 0)
      await fh.write(oldTable.backup, 0, oldTable.backup.length, Number(oldTable.backupOffset))
    }
    await fh.sync()
  } finally {
    await fh.close()
  }
}

async function readTarget(offset: number, length: number): Promise<Buffer> {
  const fh = await fsp.open(loop.dev, 'r')
  try {
    const b = Buffer.alloc(length)
    await fh.read(b, 0, length, offset)
    return b
  } finally {
    await fh.close()
  }
}

type Stderr = 'pipe' | 'closed' | 'pty'
interface Cli {
  child: ChildProcess
  /** The CLI's pid (the shell-less node process; under a pty, python's child). */
  pid: () => Promise<number>
  /** Resolves when an event matching `pick` is seen on stderr. */
  until: (pick: (e: Record<string, unknown>) => boolean) => Promise<Record<string, unknown>>
  /** Sends a signal to the CLI; under a pty, 'hangup' closes the terminal instead. */
  stop: (how: NodeJS.Signals | 'hangup') => Promise<void>
  done: Promise<{ status: number | null; signal: NodeJS.Signals | null; events: Array<Record<string, unknown>> }>
}

const ARGS = () => ['install', source, '--disk', loop.dev, '--no-bmap', '--yes', '--json']
const NODE_ARGS = () => [
  '--import',
  'tsx',
  '--input-type=module',
  '-e',
  `import { main } from ${JSON.stringify(MAIN)}; process.exitCode = await main(process.argv.slice(1))`,
  ...ARGS(),
]

// Under a pty (python's pty.fork: the CLI is a session leader with the pty as its
// controlling terminal and as its stdio), the test talks to python over fd 3: it relays the
// terminal's output, closes the terminal on "hangup", and reports the exit status.
const PTY_RELAY = String.raw`
import json, os, pty, select, sys
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
os.write(3, ('pid %d\n' % pid).encode())
while True:
    ready, _, _ = select.select([fd, 3], [], [])
    if 3 in ready:
        os.read(3, 100)  # "hangup"
        os.close(fd)
        break
    try:
        data = os.read(fd, 65536)
    except OSError:
        break
    if not data:
        break
    sys.stdout.buffer.write(data)
    sys.stdout.flush()
_, status = os.waitpid(pid, 0)
os.write(3, (json.dumps({'status': os.waitstatus_to_exitcode(status)}) + '\n').encode())
`

function hwimage(stderr: Stderr): Cli {
  const env = { ...process.env, TMPDIR: tmp, [MARK.split('=')[0]!]: MARK.split('=')[1]! }
  const pty = stderr === 'pty'
  const child = pty
    ? spawn('python3', ['-c', PTY_RELAY, process.execPath, ...NODE_ARGS()], {
        env,
        stdio: ['ignore', 'pipe', 'inherit', 'pipe'],
      })
    : spawn(process.execPath, NODE_ARGS(), { env, stdio: ['ignore', 'pipe', 'pipe'] })
  const out = pty ? child.stdout! : child.stderr!
  let text = ''
  const waiters: Array<{
    pick: (e: Record<string, unknown>) => boolean
    resolve: (e: Record<string, unknown>) => void
  }> = []
  const events: Array<Record<string, unknown>> = []
  out.on('data', (b: Buffer) => {
    text += b.toString('utf8')
    let nl: number
    while ((nl = text.indexOf('\n')) >= 0) {
      const line = text.slice(0, nl).replace(/\r$/, '')
      text = text.slice(nl + 1)
      if (!line.startsWith('{')) continue
      const e = JSON.parse(line) as Record<string, unknown>
      events.push(e)
      for (const w of waiters.splice(0)) w.pick(e) ? w.resolve(e) : waiters.push(w)
    }
  })
  if (!pty) child.stdout!.resume()
  let ptyPid: Promise<number> | undefined
  let ptyStatus: Promise<number> | undefined
  if (pty) {
    const ctl = child.stdio[3] as Readable
    let ctlText = ''
    const lines: string[] = []
    const wake: Array<() => void> = []
    ctl.on('data', (b: Buffer) => {
      ctlText += b
      let nl: number
      while ((nl = ctlText.indexOf('\n')) >= 0) {
        lines.push(ctlText.slice(0, nl))
        ctlText = ctlText.slice(nl + 1)
      }
      for (const w of wake.splice(0)) w()
    })
    const line = async (re: RegExp): Promise<string> => {
      for (;;) {
        const i = lines.findIndex((l) => re.test(l))
        if (i >= 0) return lines.splice(i, 1)[0]!
        await new Promise<void>((r) => wake.push(r))
      }
    }
    ptyPid = line(/^pid /).then((l) => Number(l.slice(4)))
    ptyStatus = line(/^\{/).then((l) => (JSON.parse(l) as { status: number }).status)
  }
  const done = new Promise<{
    status: number | null
    signal: NodeJS.Signals | null
    events: Array<Record<string, unknown>>
  }>((resolve) =>
    child.on('close', (status, signal) => {
      // The relay reports the CLI's exit status before it exits itself (or it failed: null).
      if (ptyStatus)
        void Promise.race([ptyStatus, new Promise<null>((r) => setTimeout(() => r(null), 1000))]).then((s) =>
          resolve({ status: s, signal: null, events }),
        )
      else resolve({ status, signal, events })
    }),
  )
  return {
    child,
    pid: async () => (ptyPid ? await ptyPid : child.pid!),
    until: (pick) => {
      const seen = events.find(pick)
      const event = seen
        ? Promise.resolve(seen)
        : new Promise<Record<string, unknown>>((resolve) => waiters.push({ pick, resolve }))
      return Promise.race([
        event,
        done.then((r) =>
          assert.fail(`the install ended (exit ${r.status}, ${r.signal}) first: ${JSON.stringify(r.events.at(-1))}`),
        ),
      ])
    },
    stop: async (how) => {
      if (how === 'hangup') (child.stdio[3] as unknown as Writable).write('hangup\n')
      else process.kill(await (ptyPid ?? Promise.resolve(child.pid!)), how)
    },
    done,
  }
}

/** Processes (not zombies) that hwimage started, by the mark in their environment, or whose command line names the source; `except` the CLI itself (and the pty relay). */
async function leftovers(...except: number[]): Promise<string[]> {
  const found: string[] = []
  for (const p of await fsp.readdir('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid || except.includes(Number(p))) continue
    const [environ, cmdline, status] = await Promise.all(
      ['environ', 'cmdline', 'status'].map((f) => fsp.readFile(`/proc/${p}/${f}`, 'utf8').catch(() => '')),
    )
    if (/^State:\s+Z/m.test(status!)) continue
    if (environ!.split('\0').includes(MARK) || cmdline!.includes(source))
      found.push(`${p}: ${cmdline!.replaceAll('\0', ' ')}`)
  }
  return found
}

/** Spool entries in /dev/shm and the CLI's temp dir. */
async function spoolEntries(): Promise<string[]> {
  const names: string[] = []
  for (const d of ['/dev/shm', tmp])
    for (const n of await fsp.readdir(d))
      if (SPOOL_NAME.test(n) && !n.startsWith('hwimage-spool-test-')) names.push(path.join(d, n))
  return names
}

/** The CLI's descriptors on files in /dev/shm or its temp dir: its spools, which must have no name. */
async function openSpools(pid: number): Promise<string[]> {
  const links: string[] = []
  for (const fd of await fsp.readdir(`/proc/${pid}/fd`).catch(() => [])) {
    const link = await fsp.readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')
    if (link.startsWith('/dev/shm/') || link.startsWith(`${tmp}/`)) links.push(link)
  }
  return links
}

/** Waits (up to `ms`) for the processes hwimage started to be gone; returns those still there. */
async function afterDeath(ms: number): Promise<string[]> {
  let left = await leftovers()
  for (let t = 0; t < ms && left.length; t += 20) {
    await new Promise((r) => setTimeout(r, 20))
    left = await leftovers()
  }
  return left
}

const writing = (e: Record<string, unknown>) => e.event === 'progress' && e.stage === 'write' && Number(e.done) > 0

/** What is seen while the install runs: the processes it started, and its spools (open descriptors, and names). */
async function whileRunning(cli: Cli): Promise<{ children: string[]; spools: string[]; names: string[] }> {
  const pid = await cli.pid()
  return { children: await leftovers(pid, cli.child.pid!), spools: await openSpools(pid), names: await spoolEntries() }
}

/** xz ran, its spool was open, and the spool had no name. */
function assertSeen(seen: { children: string[]; spools: string[]; names: string[] }): void {
  assert.ok(
    seen.children.some((c) => / xz /.test(` ${c.split(': ')[1]}`)),
    `xz runs: ${seen.children.join('; ')}`,
  )
  assert.ok(seen.spools.length >= 1, 'the spool is open')
  for (const s of seen.spools) assert.match(s, / \(deleted\)$/, 'the spool has no name')
  assert.deepEqual(seen.names, [], 'no spool name in /dev/shm or the temp dir')
}

/** Kills the CLI if a failed test left it running (the next test needs the loop device). */
function reap(t: { after: (fn: () => Promise<void>) => void }, cli: Cli): void {
  t.after(async () => {
    if (cli.child.exitCode === null && cli.child.signalCode === null) {
      process.kill(await cli.pid(), 'SIGKILL')
      cli.child.kill('SIGKILL')
      await cli.done
    }
  })
}

const cases: Array<{ how: NodeJS.Signals | 'hangup'; stderr: Stderr; name: string }> = [
  { how: 'SIGHUP', stderr: 'pipe', name: 'SIGHUP' },
  { how: 'SIGTERM', stderr: 'pipe', name: 'SIGTERM' },
  { how: 'SIGINT', stderr: 'pipe', name: 'SIGINT' },
  { how: 'hangup', stderr: 'pty', name: 'a hung-up terminal (SIGHUP, then EIO on stderr)' },
  { how: 'SIGTERM', stderr: 'closed', name: 'SIGTERM with nobody reading stderr (EPIPE)' },
]

for (const c of cases) {
  test(`${c.name} mid-write: exit 130, INTERRUPTED, first and last MiB zeroed, no child and no spool left`, async (t) => {
    await prepareTarget('garbage')
    const cli = hwimage(c.stderr)
    reap(t, cli)
    await cli.until(writing)
    const seen = await whileRunning(cli)
    if (c.stderr === 'closed') cli.child.stderr!.destroy()
    await cli.stop(c.how)
    const r = await cli.done
    assert.equal(r.status, 130, `exit ${r.status} (${r.signal}): ${JSON.stringify(r.events.slice(-3))}`)
    if (c.stderr === 'pipe') {
      const last = r.events.at(-1)!
      assert.equal(last.event, 'error')
      assert.equal(last.code, 'INTERRUPTED')
    }
    assert.ok(
      (await readTarget(0, MiB)).every((x) => x === 0),
      'the first MiB is zeroed',
    )
    assert.ok(
      (await readTarget(DISK - MiB, MiB)).every((x) => x === 0),
      'the last MiB is zeroed',
    )
    assert.deepEqual(await afterDeath(100), [], 'no process hwimage started is left')
    assert.deepEqual(await spoolEntries(), [])
    assertSeen(seen)
  })
}

const sector = async (offset: number) => await readTarget(offset, 512)
const isHeader = (b: Buffer) => b.subarray(0, 8).toString('latin1') === 'EFI PART'

for (const moment of ['start', 'write', 'write+1s'] as const) {
  test(`SIGKILL at ${moment}: no child and no spool left, and never the image's primary GPT`, async (t) => {
    await prepareTarget('old-table')
    const cli = hwimage('pipe')
    reap(t, cli)
    const first = moment === 'start' ? await cli.until((e) => e.event === 'start') : await cli.until(writing)
    // What runs once the write has begun (xz, its spool); a second later xz may have finished
    // decompressing the whole input into the spool, so this is looked at first.
    const seen = await whileRunning(cli)
    // Progress events come once a second: the next one is a second further into the write.
    if (moment === 'write+1s') await cli.until((e) => writing(e) && e !== first)
    cli.child.kill('SIGKILL')
    const r = await cli.done
    assert.equal(r.signal, 'SIGKILL', `the install was still running: ${JSON.stringify(r.events.at(-1))}`)
    assert.deepEqual(
      await afterDeath(100),
      [],
      `no process hwimage started is left (were: ${seen.children.join('; ')})`,
    )
    assert.deepEqual(await spoolEntries(), [], 'no spool name left')
    assertSeen(seen)
    const lba1 = await sector(512)
    const oldLba1 = Buffer.from(oldTable.primary.subarray(512, 1024))
    if (moment === 'start') {
      assert.ok(lba1.equals(oldLba1) || lba1.every((x) => x === 0), 'the old primary header, or none')
    } else {
      assert.ok(!isHeader(lba1), 'no primary GPT header')
      assert.ok(
        (await readTarget(0, MiB)).every((x) => x === 0),
        'the first MiB is zero',
      )
    }
    const backup = await sector(DISK - 512)
    // Recorded, not asserted: the backup GPT at the disk's end is install.ts's business.
    const oldBackup = Buffer.from(oldTable.backup.subarray(oldTable.backup.length - 512))
    t.diagnostic(
      `SIGKILL at ${moment}: the disk's last sector ${!isHeader(backup) ? 'holds no GPT header' : backup.equals(oldBackup) ? "still holds the old table's backup header" : 'holds a GPT header (not the old one)'}`,
    )
  })
}
