import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { PassThrough } from 'node:stream'
import { HwimageError, exitCodeOf } from '../../errors.js'
import type { CommandContext } from '../command.js'
import { makeKernelFixture, type KernelFixture } from '../../kernel/kernel.fixture.js'
import { kernelCommand } from './kernel.js'

function context(): { ctx: CommandContext; out: () => string; err: () => string } {
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  let o = ''
  let e = ''
  stdout.on('data', (b: Buffer) => (o += b.toString()))
  stderr.on('data', (b: Buffer) => (e += b.toString()))
  return { ctx: { stdout, stderr, signal: new AbortController().signal }, out: () => o, err: () => e }
}

async function kernel(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const c = context()
  const code = await kernelCommand.run(argv, c.ctx)
  return { code, out: c.out(), err: c.err() }
}

async function failure(...argv: string[]): Promise<HwimageError> {
  try {
    await kernel(...argv)
  } catch (e) {
    assert.ok(e instanceof HwimageError, String(e))
    return e
  }
  assert.fail(`kernel ${argv.join(' ')} did not fail`)
}

let fx: KernelFixture
before(async () => {
  fx = await makeKernelFixture()
})
after(() => fx.cleanup())

test('kernel and each sub-verb print their help', async () => {
  assert.match((await kernel('--help')).out, /analyze .*\n.*coverage .*\n.*select/)
  assert.equal((await kernel()).code, 2)
  for (const sub of ['analyze', 'coverage', 'select']) {
    const r = await kernel(sub, '--help')
    assert.equal(r.code, 0)
    assert.match(r.out, new RegExp(`^Usage: hwimage kernel ${sub} KERNEL`))
    assert.match(r.out, /--json/)
  }
})

test('kernel analyze --json reports the tree', async () => {
  const r = await kernel('analyze', fx.root, '--json')
  const a = JSON.parse(r.out)
  assert.equal(a.version, fx.version)
  assert.equal(a.moduleCount, 14)
  assert.ok(a.subsystems.some((s: { subsystem: string }) => s.subsystem === 'drivers/net/ethernet/realtek'))
  assert.match((await kernel('analyze', fx.root)).out, /^kernel +6\.1\.0-test-amd64/)
})

test('kernel coverage reads several inventories and reports per class', async () => {
  const lspci = path.join(fx.root, 'lspci.txt')
  await fs.writeFile(
    lspci,
    '00:1f.2 SATA controller [0106]: Intel Corporation ICH9 AHCI [8086:2922] (rev 02)\n00:02.0 Ethernet controller [0200]: Solarflare SFC9020 [1924:0803]\n',
  )
  const sys = path.join(fx.root, 'modalias.txt')
  await fs.writeFile(sys, 'pci:v000010ECd00008168sv00001AF4sd00001100bc02sc00i00\n')
  const r = await kernel('coverage', fx.root, '--modules', 'ahci,r8169', '--inventory', lspci, sys, '--json')
  const rep = JSON.parse(r.out)
  const eth = rep.classes.find((c: { class: string }) => c.class === 'Net/ethernet')
  assert.deepEqual([eth.devices, eth.covered, eth.baselineDriven], [2, 1, 2])
  assert.equal(rep.set.modules, 4) // ahci, r8169 and ahci's libata and scsi_mod
  const text = (await kernel('coverage', fx.root, '--modules', 'ahci,r8169', '--inventory', lspci, sys)).out
  assert.match(text, /Net\/ethernet +50\.00% +1\/2/)
  assert.match(text, /pci:1924-0803 .* sfc/)
})

test('kernel select --output writes a compressed tree and measures it', async () => {
  const out = path.join(fx.root, 'out')
  const r = await kernel('select', fx.root, '--add', 'iwlwifi', '--output', out, '--json')
  const s = JSON.parse(r.out)
  assert.ok(s.modules.includes('iwlwifi') && s.modules.includes('ahci'))
  assert.equal(s.output.unresolved.length, 0)
  assert.equal(s.output.prune.kept, s.modules.length)
  assert.ok(await fs.stat(path.join(out, 'lib/modules', fx.version, 'kernel/drivers/ata/ahci.ko.xz')))
  assert.ok(await fs.stat(path.join(out, 'boot', `vmlinuz-${fx.version}`)))
  const list = (await kernel('select', fx.root, '--list')).out.trim().split('\n')
  assert.ok(list.includes('e1000e') && !list.includes('snd_hda_intel'))
})

test('kernel select reads additions and removals from a spec', async () => {
  const spec = path.join(fx.root, 'spec.yaml')
  await fs.writeFile(
    spec,
    'name: t\nkernel:\n  flavor: server\n  modules:\n    add: [snd-hda-intel]\n    remove: [r8169]\n',
  )
  const s = JSON.parse((await kernel('select', fx.root, '--spec', spec, '--json')).out)
  assert.ok(s.modules.includes('snd_hda_intel'))
  assert.ok(!s.modules.includes('r8169'))
})

test('bad input is a named error with exit code 2', async () => {
  const unknownModule = await failure('select', fx.root, '--add', 'e1000x')
  assert.equal(unknownModule.code, 'MODULE_UNKNOWN')
  assert.match(unknownModule.message, /"e1000x"/)
  assert.equal(
    (await failure('coverage', fx.root, '--modules', 'nonesuch', '--inventory', 'population')).code,
    'MODULE_UNKNOWN',
  )
  const notes = path.join(fx.root, 'notes.txt')
  await fs.writeFile(notes, 'not an inventory\n')
  const badInventory = await failure('coverage', fx.root, '--inventory', notes)
  assert.equal(badInventory.code, 'FORMAT_INVENTORY')
  assert.match(badInventory.message, /notes\.txt/)
  const badDeb = path.join(fx.root, 'bad.deb')
  await fs.writeFile(badDeb, 'garbage')
  const badKernel = await failure('analyze', badDeb)
  assert.equal(badKernel.code, 'FORMAT_KERNEL')
  assert.match(badKernel.message, /bad\.deb/)
  for (const e of [unknownModule, badInventory, badKernel]) assert.equal(exitCodeOf(e), 2)
  assert.equal((await failure('frobnicate')).code, 'USAGE')
  assert.equal((await failure('coverage', fx.root)).code, 'USAGE')
  assert.equal((await failure('coverage', fx.root, '--inventory', notes, '--add', 'e1000e')).code, 'USAGE')
  assert.equal((await failure('select', fx.root, '--compression', 'lz4')).code, 'USAGE')
})

test('kernel analyze refuses a depth or a top of 0, naming the option', async () => {
  for (const [option, value] of [
    ['--depth', '0'],
    ['--top', '0'],
    ['--depth', '1.5'],
  ]) {
    const e = await failure('analyze', fx.root, option!, value!)
    assert.equal(e.code, 'USAGE')
    assert.ok(e.message.includes(`${option}: "${value}"`), e.message)
    assert.equal(exitCodeOf(e), 2)
  }
})

test('kernel coverage --top 0 prints the class table without uncovered devices', async () => {
  const lspci = path.join(fx.root, 'lspci-top.txt')
  await fs.writeFile(lspci, '00:02.0 Ethernet controller [0200]: Solarflare SFC9020 [1924:0803]\n')
  const text = (await kernel('coverage', fx.root, '--modules', 'r8169', '--inventory', lspci, '--top', '0')).out
  assert.match(text, /^Net\/ethernet +0\.00% +0\/1/m)
  assert.doesNotMatch(text, /not covered/)
  assert.match(
    (await kernel('coverage', fx.root, '--modules', 'r8169', '--inventory', lspci)).out,
    /Net\/ethernet: not covered \(1 ids\)/,
  )
})
