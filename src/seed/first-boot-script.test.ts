import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { promisify } from 'node:util'
import { firstBootScript, type FirstBootConfig } from './first-boot-script.js'

const pexec = promisify(execFile)

/** A fake root with cloud-init's run files, the script, and a server that records one POST. */
async function setup(config: Omit<FirstBootConfig, 'report'>, result: unknown | undefined) {
  const root = await mkdtemp(join(tmpdir(), 'hwimage-firstboot-'))
  await mkdir(join(root, 'run/cloud-init'), { recursive: true })
  await mkdir(join(root, 'var/log'), { recursive: true })
  if (result !== undefined) await writeFile(join(root, 'run/cloud-init/result.json'), JSON.stringify(result))
  await writeFile(join(root, 'run/cloud-init/status.json'), JSON.stringify({ v1: { 'modules-final': { errors: [], start: 1, finished: 2 }, stage: null } }))
  await writeFile(
    join(root, 'run/cloud-init/instance-data.json'),
    JSON.stringify({ v1: { instance_id: 'iid-test', local_hostname: 'metal-01', subplatform: 'seed-dir (/var/lib/cloud/seed/nocloud)' } }),
  )
  const received: { headers: IncomingHttpHeaders; body: Record<string, any> }[] = []
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', (c) => (body += c))
    req.on('end', () => {
      received.push({ headers: req.headers, body: JSON.parse(body) })
      res.end('{}')
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/report`
  const script = join(root, 'hwimage-first-boot')
  await writeFile(script, firstBootScript({ ...config, report: { url, token: 'tok-123' } }), { mode: 0o700 })
  const runAfterFinal = () =>
    pexec('python3', [script, '--after-final'], { env: { ...process.env, HWIMAGE_TEST_ROOT: root, HWIMAGE_FIRST_BOOT_WAIT: '0' } })
  const done = async () => {
    server.close()
    await rm(root, { recursive: true, force: true })
  }
  return { root, received, runAfterFinal, done }
}

const CONFIG = { contract: 'hwimage-seed/1', format: 'nocloud', label: 'CIDATA', partitionName: 'cidata', cleanup: false } as const

test('firstBootScript() is valid Python 3', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hwimage-firstboot-'))
  try {
    const file = join(dir, 's.py')
    await writeFile(file, firstBootScript({ ...CONFIG, cleanup: true, report: { url: "http://x/'''\"\"\"", token: 'a"b\\c' } }))
    await pexec('python3', ['-m', 'py_compile', file])
    const { stdout } = await pexec('python3', ['-c', `import runpy; g = runpy.run_path(${JSON.stringify(file)}, run_name="x"); print(g["CONFIG"]["report"]["token"])`])
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
    for (const a of body.addresses) assert.ok(a.ifname && a.address && ['inet', 'inet6'].includes(a.family), JSON.stringify(a))
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
