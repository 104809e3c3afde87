import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, test } from 'node:test'
import { spawnCli } from '../cli.fixture.js'
import Database from 'better-sqlite3'
import { rawRequest, writeConfig } from '../../serve/serve.fixture.js'

const MAC = '52:54:00:00:00:01'
let dir: string
let config: string

before(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hwimage-cli-serve-'))
  const out = path.join(dir, 'out')
  await fsp.mkdir(out)
  // serve needs only the file names of a build's outputs here: no install in these tests.
  await fsp.writeFile(path.join(out, 'default.img.zst'), 'zst')
  await fsp.writeFile(path.join(out, 'SHA256SUMS'), '')
  await fsp.writeFile(path.join(dir, 'seed.yaml'), 'hostname: node-9\n')
  config = await writeConfig(dir, out, `machines:\n  ${MAC}: { name: node-1, image: default }\n`)
})
after(() => fsp.rm(dir, { recursive: true, force: true }))

/** Starts `hwimage serve CONFIG --json` and waits for its "listening" event. */
async function startServe(): Promise<{
  child: ChildProcess
  url: string
  stderr: () => string
  done: ReturnType<typeof hwimage>['done']
}> {
  const { child, done } = hwimage(['serve', config, '--json'])
  let err = ''
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr!.on('data', (b: Buffer) => {
      err += b
      const m = /"event":"listening"[^\n]*"url":"([^"]+)"/.exec(err)
      if (m) resolve(m[1]!)
    })
    child.once('close', () => reject(new Error(`serve exited: ${err}`)))
  })
  return { child, url, stderr: () => err, done }
}

test('hwimage serve: a bad config is CONFIG_INVALID naming the field, exit 2', async () => {
  const bad = path.join(dir, 'bad.yaml')
  await fsp.writeFile(bad, 'public_url: http://x\nstate_dir: s\nunknown_macs: sometimes\n')
  const r = await hwimage(['serve', bad, '--json']).done
  assert.equal(r.status, 2)
  assert.match(r.stderr, /CONFIG_INVALID/)
  assert.match(r.stderr, /unknown_macs/)
})

test('hwimage serve logs one JSON line per request without tokens; hwimage machines list/assign/show against it; the state survives kill -9 mid-update', async () => {
  const s = await startServe()
  try {
    const boot = await rawRequest(s.url, `/boot/ipxe?mac=${MAC}`)
    const token = /hwimage\.token=(\S+)/.exec(boot.body.toString())![1]!

    const list = await hwimage(['machines', 'list', '--server', s.url]).done
    assert.equal(list.status, 0, list.stderr)
    assert.match(list.stdout, /^MAC\s+NAME\s+STATE\s+IMAGE\s+UPDATED$/m)
    assert.match(list.stdout, /^52:54:00:00:00:01\s+node-1\s+deploying\s+default\s/m)
    const assign = await hwimage([
      'machines',
      'assign',
      '52:54:00:00:00:02',
      '--image',
      'default',
      '--seed',
      path.join(dir, 'seed.yaml'),
      '--disk-hint',
      'serial=ABC',
      '--server',
      s.url,
      '--json',
    ]).done
    assert.equal(assign.status, 0, assign.stderr)
    assert.equal(JSON.parse(assign.stdout).machine.hasSeed, true)
    const missing = await hwimage(['machines', 'show', '52:54:00:00:00:03'], { HWIMAGE_SERVER: s.url }).done
    assert.equal(missing.status, 2, 'an unknown machine is NOT_FOUND, exit 2')
    const bad = await hwimage(['machines', 'assign', MAC, '--image', 'nope', '--server', s.url]).done
    assert.equal(bad.status, 2)
    assert.match(bad.stderr, /no image "nope"/)

    // Updates in flight when serve is killed: every acknowledged one must be there afterwards.
    let acked = 0
    let stop = false
    const writer = (async () => {
      for (let i = 0; !stop && i < 2000; i++) {
        const r = await rawRequest(s.url, `/api/v1/machines/${MAC}/events`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ kind: 'note', fields: { i } }),
        }).catch(() => undefined)
        if (!r) return
        if (r.status === 200) acked++
      }
    })()
    while (acked < 25) await new Promise((r) => setTimeout(r, 5))
    s.child.kill('SIGKILL')
    const end = await s.done
    stop = true
    await writer
    assert.equal(end.signal, 'SIGKILL')

    const logLines = s
      .stderr()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
    const requests = logLines.filter((l) => l.event === 'request')
    assert.ok(requests.length >= acked, 'one line per request')
    assert.ok(
      requests.every((l) => typeof l.method === 'string' && typeof l.status === 'number' && typeof l.ms === 'number'),
    )
    assert.ok(!s.stderr().includes(token), 'no token in the log')

    const db = new Database(path.join(dir, 'state', 'serve.sqlite'), { readonly: true })
    try {
      assert.equal(db.pragma('integrity_check', { simple: true }), 'ok')
    } finally {
      db.close()
    }

    // Restarted on the same state: the machine, its token and every acknowledged event are there.
    const s2 = await startServe()
    try {
      const show = await hwimage(['machines', 'show', MAC, '--server', s2.url, '--json']).done
      assert.equal(show.status, 0, show.stderr)
      const doc = JSON.parse(show.stdout) as {
        machine: { state: string }
        events: Array<{ kind: string; fields: { i?: number } }>
      }
      assert.equal(doc.machine.state, 'deploying')
      const notes = new Set(doc.events.filter((e) => e.kind === 'note').map((e) => e.fields.i))
      for (let i = 0; i < acked; i++) assert.ok(notes.has(i), `acknowledged event ${i} survived kill -9`)
      const task = await rawRequest(s2.url, `/api/v1/machines/${MAC}/task`, {
        headers: { authorization: `Bearer ${token}` },
      })
      assert.equal(task.status, 200, 'the token survived the restart')
      const two = await hwimage(['machines', 'show', '52:54:00:00:00:02', '--server', s2.url]).done
      assert.match(two.stdout, /image:\s+default, with a seed/)
    } finally {
      s2.child.kill('SIGTERM')
      const r = await s2.done
      assert.equal(r.status, 0, 'SIGTERM stops serve cleanly')
    }
  } finally {
    s.child.kill('SIGKILL')
  }
})

/** Runs `hwimage ARGS` from the sources, with extra environment. */
function hwimage(args: string[], env: Record<string, string> = {}) {
  return spawnCli(args, { env })
}
