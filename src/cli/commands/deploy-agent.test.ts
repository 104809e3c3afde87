import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import { HwimageError } from '../../errors.js'
import { deployAgentCommand } from './deploy-agent.js'
import { context } from './inventory.fixture.js'

test('hwimage deploy-agent --help names the command line it reads and gives an example', async () => {
  const { ctx, out } = context()
  assert.equal(await deployAgentCommand.run(['--help'], ctx), 0)
  assert.match(out(), /hwimage\.url=, hwimage\.mac= \(or BOOTIF=01-…\), hwimage\.token=/)
  assert.match(out(), /^Example .*\n {2}hwimage deploy-agent --retry 30$/m)
})

test('hwimage deploy-agent: a command line without a serve URL, or a bad --poll, is a usage error (exit 2)', async () => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hwimage-agent-cli-'))
  try {
    const file = path.join(dir, 'cmdline')
    await fsp.writeFile(file, 'console=ttyS0 hwimage.mac=52:54:00:12:34:56 hwimage.token=t\n')
    const usage = (re: RegExp) => (e: unknown) => e instanceof HwimageError && e.exitCode === 2 && re.test(e.message)
    await assert.rejects(deployAgentCommand.run(['--cmdline', file], context().ctx), usage(/no serve URL/))
    await assert.rejects(
      deployAgentCommand.run(['--cmdline', file, '--url', 'http://127.0.0.1:9', '--poll', '0'], context().ctx),
      usage(/--poll "0"/),
    )
    await assert.rejects(
      deployAgentCommand.run(['--cmdline', path.join(dir, 'none')], context().ctx),
      (e: unknown) => e instanceof HwimageError && e.code === 'NOT_FOUND',
    )
  } finally {
    await fsp.rm(dir, { recursive: true, force: true })
  }
})
