import assert from 'node:assert/strict'
import { PassThrough } from 'node:stream'
import { test } from 'node:test'
import { HwimageError } from '../../errors.js'
import { machinesCommand } from './machines.js'

function ctx() {
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  let out = ''
  stdout.on('data', (b: Buffer) => (out += b))
  return { ctx: { stdout, stderr, signal: new AbortController().signal }, out: () => out }
}
const code = (c: string, exit: number) => (e: unknown) =>
  e instanceof HwimageError && e.code === c && e.exitCode === exit

test('hwimage machines: no subcommand, an unknown one, a missing MAC, assign without --image are USAGE (exit 2)', async () => {
  for (const argv of [[], ['reboot'], ['show'], ['assign', '52:54:00:00:00:01'], ['list', 'extra']]) {
    await assert.rejects(machinesCommand.run(argv, ctx().ctx), code('USAGE', 2), argv.join(' '))
  }
})

test('hwimage machines list against a server that is not there is NETWORK (exit 1), naming the URL', async () => {
  await assert.rejects(
    machinesCommand.run(['list', '--server', 'http://127.0.0.1:9'], ctx().ctx),
    (e: unknown) => code('NETWORK', 1)(e) && /127\.0\.0\.1:9/.test((e as Error).message),
  )
})

test('hwimage machines --help shows the subcommands and examples', async () => {
  const c = ctx()
  assert.equal(await machinesCommand.run(['--help'], c.ctx), 0)
  for (const s of [
    'list',
    'show MAC',
    'assign MAC --image NAME',
    'redeploy MAC',
    'Examples:',
    'HWIMAGE_OPERATOR_TOKEN',
  ])
    assert.ok(c.out().includes(s), s)
})
