import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { promisify } from 'node:util'
import { firstBootScript, type FirstBootConfig } from './first-boot-script.js'

const pexec = promisify(execFile)

/** A fake root with cloud-init's run files, the script, and a server that records one POST. */
async function setup(
  config: Omit<FirstBootConfig, 'report'>,
  result: unknown | undefined,
  opts: { dropFirst?: number } = {},
) {
  let drop = opts.dropFirst ?? 0
  const root = await mkdtemp(join(tmpdir(), 'hwimage-firstboot-'))
  await mkdir(join(root, 'run/cloud-init'), { recursive: true })
  await mkdir(join(root, 'var/log'), { recursive: true })
  if (result !== undefined) await writeFile(join(root, 'run/cloud-init/result.json'), JSON.stringify(result))
  await writeFile(
    join(root, 'run/cloud-init/status.json'),
    JSON.stringify({ v1: { 'modules-final': { errors: [], start: 1, finished: 2 }, stage: null } }),
  )
  await writeFile(
    join(root, 'run/cloud-init/instance-data.json'),
    JSON.stringify({
      v1: {
        instance_id: 'iid-test',
        local_hostname: 'metal-01',
        subplatform: 'seed-dir (/var/lib/cloud/seed/nocloud)',
      },
    }),
  )
  // biome-ignore lint/suspicious/noExplicitAny: the reports' JSON is probed field by field by the asserts
  const received: { headers: IncomingHttpHeaders; body: Record<string, any> }[] = []
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', (c) => (body += c))
    req.on('end', () => {
      received.push({ headers: req.headers, body: JSON.parse(body) })
      // A lost answer: the request arrived, the client never hears back.
      if (drop-- > 0) res.socket?.destroy()
      else res.end('{}')
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/report`
  const script = join(root, 'hwimage-first-boot')
  await writeFile(script, firstBootScript({ ...config, report: { url, token: 'tok-123' } }), { mode: 0o700 })
  const runAfterFinal = () =>
    pexec('python3', [script, '--after-final'], {
      env: { ...process.env, HWIMAGE_TEST_ROOT: root, HWIMAGE_FIRST_BOOT_WAIT: '0' },
    })
  const done = async () => {
    server.close()
    await rm(root, { recursive: true, force: true })
  }
  return { root, received, runAfterFinal, done }
}

const CONFIG = {
  contract: 'hwimage-seed/1',
  format: 'nocloud',
  label: 'CIDATA',
  partitionName: 'cidata',
  cleanup: false,
} as const

test('firstBootScript() is valid Python 3', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hwimage-firstboot-'))
  try {
    const file = join(dir, 's.py')
    await writeFile(
      file,
      firstBootScript({ ...CONFIG, cleanup: true, report: { url: 'http://x/\'\'\'"""', token: 'a"b\\c' } }),
    )
    await pexec('python3', ['-m', 'py_compile', file])
    const { stdout } = await pexec('python3', [
      '-c',
      `import runpy; g = runpy.run_path(${JSON.stringify(file)}, run_name="x"); print(g["CONFIG"]["report"]["token"])`,
    ])
    assert.equal(stdout.trim(), 'a"b\\c')
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('the first-boot script POSTs a JSON report with instance-id, hostname, addresses and cloud-init result', async () => {
  const t = await setup(CONFIG, { v1: { datasource: 'DataSourceNoCloud [seed=/dev/vda16][dsmode=net]', errors: [] } })
  try {
    await t.runAfterFinal()
    assert.equal(t.received.length, 1)
    const { headers, body } = t.received[0]!
    assert.equal(headers['content-type'], 'application/json')
    assert.equal(headers.authorization, 'Bearer tok-123')
    assert.equal(body.contract, 'hwimage-seed/1')
    assert.equal(body.event, 'first-boot')
    assert.equal(body.instance_id, 'iid-test')
    assert.equal(body.hostname, hostname())
    assert.ok(Array.isArray(body.addresses))
    for (const a of body.addresses)
      assert.ok(a.ifname && a.address && ['inet', 'inet6'].includes(a.family), JSON.stringify(a))
    assert.deepEqual(body.cloud_init, {
      status: 'done',
      datasource: 'DataSourceNoCloud [seed=/dev/vda16][dsmode=net]',
      errors: [],
      stages: { 'modules-final': { errors: [], start: 1, finished: 2 } },
    })
    assert.deepEqual(body.seed, { format: 'nocloud', cleanup: null })
    const kept = JSON.parse(await readFile(join(t.root, 'var/log/hwimage-first-boot.json'), 'utf8'))
    assert.equal(kept.instance_id, 'iid-test')
    assert.ok(!JSON.stringify(kept).includes('tok-123'))
  } finally {
    await t.done()
  }
})

test('a report whose answer was lost is sent again with the same Idempotency-Key (serve records it once)', async () => {
  const t = await setup(CONFIG, { v1: { datasource: 'DataSourceNoCloud', errors: [] } }, { dropFirst: 1 })
  try {
    await t.runAfterFinal()
    assert.equal(t.received.length, 2, 'retried after the lost answer')
    const keys = t.received.map((r) => r.headers['idempotency-key'])
    const bootId = (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim()
    assert.deepEqual(keys, [`"first-boot:${bootId}"`, `"first-boot:${bootId}"`])
    assert.deepEqual(t.received[1]!.body, t.received[0]!.body, 'the same report')
  } finally {
    await t.done()
  }
})

test('without systemd-run the first-boot script waits for cloud-init in a detached child and still reports', async () => {
  const t = await setup(CONFIG, { v1: { datasource: 'x', errors: [] } })
  try {
    // A systemd-run that fails, first in PATH: the host's service manager is never asked.
    const bin = join(t.root, 'fakebin')
    await mkdir(bin)
    await writeFile(join(bin, 'systemd-run'), '#!/bin/sh\necho "no systemd here" >&2\nexit 1\n', { mode: 0o755 })
    await pexec('python3', [join(t.root, 'hwimage-first-boot')], {
      env: {
        ...process.env,
        PATH: `${bin}:${process.env.PATH}`,
        HWIMAGE_TEST_ROOT: t.root,
        HWIMAGE_FIRST_BOOT_WAIT: '30',
      },
    })
    for (let i = 0; i < 100 && t.received.length === 0; i++) await new Promise((r) => setTimeout(r, 100))
    assert.equal(t.received.length, 1)
    assert.equal(t.received[0]!.body.instance_id, 'iid-test')
    // The child logs after the server has answered: wait for the line.
    const logFile = join(t.root, 'var/log/hwimage-first-boot.log')
    let log = ''
    for (let i = 0; i < 100 && !/reported to http/.test(log); i++) {
      await new Promise((r) => setTimeout(r, 50))
      log = await readFile(logFile, 'utf8').catch(() => '')
    }
    assert.match(log, /reported to http/)
  } finally {
    await t.done()
  }
})

test('the first-boot script reports cloud-init errors, and "unknown" when the final result never came', async () => {
  const failed = await setup(CONFIG, { v1: { datasource: 'x', errors: ['runcmd failed'] } })
  try {
    await failed.runAfterFinal()
    assert.equal(failed.received[0]!.body.cloud_init.status, 'error')
    assert.deepEqual(failed.received[0]!.body.cloud_init.errors, ['runcmd failed'])
  } finally {
    await failed.done()
  }
  const missing = await setup(CONFIG, undefined)
  try {
    await missing.runAfterFinal()
    assert.equal(missing.received[0]!.body.cloud_init.status, 'unknown')
  } finally {
    await missing.done()
  }
})

test('the first-boot script leaves a seed it did not read from a partition alone, and says why', async () => {
  const t = await setup({ ...CONFIG, cleanup: true }, { v1: { datasource: 'x', errors: [] } })
  try {
    await t.runAfterFinal()
    const cleanup = t.received[0]!.body.seed.cleanup
    assert.equal(cleanup.done, false)
    assert.match(cleanup.reason, /did not read the seed from a device/)
  } finally {
    await t.done()
  }
})

/** A fake /dev and /sys under the test root: disk "vdz" (a GPT image file) and its partition 2 "vdz2" (a FAT file). */
async function fakeSeedPartition(root: string, partName: string): Promise<{ disk: string; part: string }> {
  const { makeSeedVolume } = await import('./make-seed-volume.js')
  const { parseSeed } = await import('./seed-schema.js')
  await mkdir(join(root, 'dev'), { recursive: true })
  const disk = join(root, 'dev/vdz')
  await writeFile(disk, '')
  await pexec('truncate', ['-s', '64M', disk])
  await pexec('sgdisk', [
    '-n',
    '1:2048:+32M',
    '-c',
    '1:root',
    '-n',
    '2:96256:+16M',
    '-c',
    `2:${partName}`,
    '-t',
    '2:0700',
    disk,
  ])
  const v = await makeSeedVolume(parseSeed('hostname: metal-01\n'))
  const part = join(root, 'dev/vdz2')
  await writeFile(part, await readFile(v.path))
  await v.dispose()
  const sysPart = join(root, 'sys/devices/virtual/block/vdz/vdz2')
  await mkdir(sysPart, { recursive: true })
  await writeFile(join(sysPart, 'partition'), '2\n')
  await writeFile(join(sysPart, 'size'), `${32768}\n`)
  await writeFile(
    join(sysPart, 'uevent'),
    `MAJOR=252\nMINOR=2\nDEVNAME=vdz2\nDEVTYPE=partition\nPARTN=2\nPARTNAME=${partName}\n`,
  )
  await mkdir(join(root, 'sys/class/block'), { recursive: true })
  await symlink('../../devices/virtual/block/vdz/vdz2', join(root, 'sys/class/block/vdz2'))
  await writeFile(
    join(root, 'run/cloud-init/instance-data.json'),
    JSON.stringify({
      v1: { instance_id: 'iid-test', local_hostname: 'metal-01', subplatform: 'config-disk (/dev/vdz2)' },
    }),
  )
  return { disk, part }
}

async function partitionNumbers(disk: string): Promise<string[]> {
  const { stdout } = await pexec('sfdisk', ['--json', disk])
  return (JSON.parse(stdout).partitiontable.partitions as { node: string }[]).map((p) => p.node.slice(-1))
}

test('cleanup zeroes the seed partition, deletes its GPT entry and keeps a local seed with the same instance-id', async () => {
  const t = await setup({ ...CONFIG, cleanup: true }, { v1: { datasource: 'x', errors: [] } })
  try {
    const { disk, part } = await fakeSeedPartition(t.root, 'cidata')
    assert.deepEqual(await partitionNumbers(disk), ['1', '2'])
    await t.runAfterFinal()
    const cleanup = t.received[0]!.body.seed.cleanup
    assert.equal(cleanup.done, true, JSON.stringify(cleanup))
    assert.equal(cleanup.device, '/dev/vdz2')
    assert.equal(cleanup.partition, 2)
    assert.equal(cleanup.zeroed_bytes, 16 * 1024 * 1024)
    assert.equal(cleanup.deleted_with, 'sfdisk')
    assert.deepEqual(await partitionNumbers(disk), ['1'])
    const bytes = await readFile(part)
    assert.equal(bytes.length, 16 * 1024 * 1024)
    assert.ok(
      bytes.every((b) => b === 0),
      'every byte of the seed partition is zero',
    )
    assert.equal(
      await readFile(join(t.root, 'var/lib/cloud/seed/nocloud/meta-data'), 'utf8'),
      'instance-id: "iid-test"\nlocal-hostname: "metal-01"\n',
    )
    assert.equal(await readFile(join(t.root, 'var/lib/cloud/seed/nocloud/user-data'), 'utf8'), '')
  } finally {
    await t.done()
  }
})

test("cleanup leaves a partition alone unless its GPT name and label are the seed's", async () => {
  const t = await setup({ ...CONFIG, cleanup: true }, { v1: { datasource: 'x', errors: [] } })
  try {
    const { disk, part } = await fakeSeedPartition(t.root, 'data')
    await t.runAfterFinal()
    const cleanup = t.received[0]!.body.seed.cleanup
    assert.equal(cleanup.done, false)
    assert.match(cleanup.reason, /partition name 'data' and filesystem label 'CIDATA' are not the seed's/)
    assert.deepEqual(await partitionNumbers(disk), ['1', '2'])
    assert.ok((await readFile(part)).some((b) => b !== 0))
  } finally {
    await t.done()
  }
})
