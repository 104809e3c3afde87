import assert from 'node:assert/strict'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { test } from 'node:test'
import { HwimageError, UsageError } from '../../errors.js'
import type { MatrixResult } from '../../lab/matrix.js'
import type { CommandContext } from '../command.js'
import { testCommand } from './test.js'

function context() {
  const stdout = new PassThrough()
  let out = ''
  stdout.on('data', (c) => (out += c))
  const ctx: CommandContext = { stdout, stderr: new PassThrough(), signal: new AbortController().signal }
  return { ctx, out: () => out }
}

const run = (flavor: string, status: 'pass' | 'fail'): MatrixResult => ({
  image: {
    path: `/img/${flavor}.img`,
    name: `debian-12-${flavor}-amd64`,
    kernelFlavor: flavor,
    kernelVersion: '6.1.0-56',
  },
  mode: 'all',
  firmwares: ['bios'],
  storages: ['ahci'],
  nics: ['e1000'],
  jobs: 2,
  memoryMiB: 1024,
  timeoutSeconds: 900,
  started: '2026-11-26T00:00:00.000Z',
  seconds: 300,
  summary: { pass: status === 'pass' ? 1 : 0, fail: status === 'fail' ? 1 : 0, notApplicable: 0 },
  cells: [
    {
      firmware: 'bios',
      storage: 'ahci',
      nic: 'e1000',
      id: 'bios--ahci--e1000',
      status,
      seconds: status === 'pass' ? 150 : 90,
      serialLog: 'cells/bios--ahci--e1000/serial.log',
      ...(status === 'fail'
        ? {
            diagnosis: {
              code: 'root-device-missing' as const,
              summary: 'The initramfs gave up waiting for the root device',
            },
          }
        : {}),
    },
  ],
})

test('hwimage test --compare prints earlier runs side by side, labelled by kernel flavor, booting nothing', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hwimage-compare-'))
  try {
    for (const [flavor, status] of [
      ['generic', 'pass'],
      ['cloud', 'fail'],
    ] as const) {
      await mkdir(join(dir, flavor))
      await writeFile(join(dir, flavor, 'report.json'), JSON.stringify(run(flavor, status)))
    }
    const { ctx, out } = context()
    assert.equal(await testCommand.run(['--compare', join(dir, 'generic'), join(dir, 'cloud', 'report.json')], ctx), 0)
    const text = out()
    assert.match(
      text,
      /^- \*\*generic\*\*: debian-12-generic-amd64 \(generic 6\.1\.0-56\) — 1 pass, 0 fail, 0 not applicable \(full matrix\)$/m,
    )
    assert.match(text, /^\| storage \| NIC \| generic bios \| cloud bios \|$/m)
    assert.match(
      text,
      /^\| ahci \| e1000 \| pass 150 s \[log\]\(\S*generic\/cells\/bios--ahci--e1000\/serial\.log\) \| \*\*FAIL\*\* root-device-missing 90 s \[log\]\(\S*cloud\/cells\/bios--ahci--e1000\/serial\.log\) \|$/m,
    )
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('hwimage test --compare needs two report directories that hold lab reports', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hwimage-compare-'))
  try {
    await assert.rejects(
      testCommand.run(['--compare', dir], context().ctx),
      (e: unknown) => e instanceof UsageError && /two or more/.test(e.message),
    )
    await assert.rejects(
      testCommand.run(['--compare', dir, join(dir, 'missing')], context().ctx),
      (e: unknown) => e instanceof HwimageError && e.exitCode === 2 && /Cannot compare/.test(e.message),
    )
    await writeFile(join(dir, 'report.json'), '{"something": "else"}')
    await assert.rejects(
      testCommand.run(['--compare', dir, dir], context().ctx),
      (e: unknown) => e instanceof HwimageError && e.code === 'FORMAT_REPORT',
    )
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
