import assert from 'node:assert/strict'
import { PassThrough } from 'node:stream'
import { test } from 'node:test'
import { HwimageError, InterruptedError } from '../../errors.js'
import type { CommandContext } from '../command.js'
import { listenCommand } from './listen.js'

function context(signal = new AbortController().signal) {
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  let out = ''
  stdout.on('data', (c) => (out += c))
  const port = new Promise<number>((resolve) => {
    let buf = ''
    stderr.on('data', (c) => {
      buf += c
      const m = /"event":"listening".*"port":(\d+)/.exec(buf)
      if (m) resolve(Number(m[1]))
    })
  })
  const ctx: CommandContext = { stdout, stderr, signal }
  return { ctx, port, out: () => out }
}

test('hwimage listen --count 1 prints the POSTed report as one JSON line and exits 0', async () => {
  const { ctx, port, out } = context()
  const done = listenCommand.run(['--port', '0', '--host', '127.0.0.1', '--count', '1', '--json'], ctx)
  const p = await port
  const res = await fetch(`http://127.0.0.1:${p}/`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"instance_id":"i-1","hostname":"metal-01"}',
  })
  assert.equal(res.status, 200)
  assert.equal(await done, 0)
  const lines = out().trim().split('\n')
  assert.equal(lines.length, 1)
  assert.deepEqual(JSON.parse(lines[0]!).report, { instance_id: 'i-1', hostname: 'metal-01' })
})

test('hwimage listen fails when --timeout passes before --count reports', async () => {
  const { ctx } = context()
  await assert.rejects(
    listenCommand.run(['--port', '0', '--host', '127.0.0.1', '--count', '2', '--timeout', '1', '--json'], ctx),
    (e: unknown) => e instanceof HwimageError && e.exitCode === 1 && /0 of 2 arrived within 1 s/.test(e.message),
  )
})

test('hwimage listen stops on SIGINT with exit 130', async () => {
  const ac = new AbortController()
  const { ctx, port } = context(ac.signal)
  const done = listenCommand.run(['--port', '0', '--host', '127.0.0.1', '--json'], ctx)
  await port
  ac.abort()
  await assert.rejects(done, (e: unknown) => e instanceof InterruptedError && e.exitCode === 130)
})

test('hwimage listen needs --port', async () => {
  const { ctx } = context()
  await assert.rejects(listenCommand.run([], ctx), (e: unknown) => e instanceof HwimageError && e.exitCode === 2)
  await assert.rejects(
    listenCommand.run(['--port', '70000'], ctx),
    (e: unknown) => e instanceof HwimageError && e.exitCode === 2,
  )
})
