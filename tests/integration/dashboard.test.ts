// The dashboard in Debian's chromium (make test) or firefox-esr (HWIMAGE_BROWSER=firefox,
// make test-firefox), both through puppeteer-core (dashboard-fixture.ts), against a real
// `hwimage serve` (the CLI, its SQLite state, the built test image read-only), with an operator token, and deploy agents played
// over HTTP on the routes the real agent uses (src/deploy/serve-client.ts): enlist,
// inventory, task, progress, the installed and failed events, the first-boot report.
// Everything is asserted from the DOM, without reloading the page: a machine appears when
// it enlists; an operator assigns it an image through the page's form (and the API says
// so); its progress bar advances; it reaches "deployed" with its phase times; a failed
// machine shows its error; redeploy and forget work; the Images page shows the manifest;
// no console errors; the token is never in serve's log. Screenshots go to OUTPUT_DIR.

import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { makeBuildDir, variantBuild } from '../../src/catalog/build-dir.fixture.js'
import { publish } from '../../src/catalog/publish.js'
import { pci } from '../../src/deploy/inventory.fixture.js'
import type { Inventory } from '../../src/deploy/inventory-types.js'
import { type DashboardHandles, OUTPUT_DIR, openDashboard } from './dashboard-fixture.js'
import { freePort, type MachineDoc, Serve } from './deploy-fixture.js'
import { makeTestKey, type TestKey, withGnupgHome } from '../../src/tools/gpg.fixture.js'
import { testImage } from './fixture.js'

const OPERATOR = 'dashboard-operator-token-5f0c1a9e'
const ENLISTING = '52:54:00:da:00:01'
const CONFIGURED = '52:54:00:da:00:02'
const GiB = 2 ** 30
const VIRTIO_BLK = pci('0000:00:05.0', '1af4', '1001', '010000', ['1af4', '0002'])
const LAB_REPORT = new URL('../../docs/lab/cloud/report.json', import.meta.url)
const VIRTIO_NET = pci('0000:00:03.0', '1af4', '1000', '020000', ['1af4', '0001'])

let dir: string
let serve: Serve
let port: number
let base: string
let d: DashboardHandles
/** The catalog's signing key: two serials of a fixture build are published with it. */
let key: TestKey
/** Set in the page once: still there at the end means the page never reloaded. */
const MARK = '__hwimageNoReload'

function inventory(mac: string): Inventory {
  const disk = (name: string, sizeBytes: number, serial: string) => ({
    path: `/dev/${name}`,
    name,
    sizeBytes,
    logicalSectorSize: 512,
    physicalSectorSize: 512,
    serial,
    rotational: false,
    removable: false,
    controller: VIRTIO_BLK.address,
  })
  return {
    version: 1,
    firmware: 'uefi-secureboot',
    cpus: 2,
    memoryBytes: 2 * GiB,
    pci: [VIRTIO_BLK, { ...VIRTIO_NET, driver: 'virtio-pci' }],
    disks: [disk('vda', 20 * GiB, 'SMALL-1'), disk('vdb', 200 * GiB, 'BIG-2')],
    nics: [{ name: 'ens3', mac, link: true, driver: 'virtio_net', pci: VIRTIO_NET.address }],
    uptimeSeconds: 11.5,
  }
}

/** A deploy agent as src/deploy/agent.ts talks to serve: JSON with the machine's token. */
class Agent {
  constructor(
    readonly mac: string,
    readonly token: string,
  ) {}
  private async call(method: string, what: string, body?: unknown): Promise<Record<string, unknown>> {
    const res = await fetch(`${base}/api/v1/machines/${this.mac}/${what}`, {
      method,
      headers: { authorization: `Bearer ${this.token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    })
    const doc = (await res.json()) as Record<string, unknown>
    assert.equal(res.status, 200, `${method} ${what}: ${JSON.stringify(doc)}`)
    return doc
  }
  inventory = (inv: Inventory) => this.call('POST', 'inventory', inv)
  task = () => this.call('GET', 'task')
  progress = (p: { stage: string; done: number; total?: number; rate?: number }) => this.call('POST', 'progress', p)
  event = (kind: string, fields: Record<string, unknown>) => this.call('POST', 'events', { kind, fields })
  report = (r: Record<string, unknown>) => this.call('POST', 'report', r)
}

/** GET /api/v1/machines/MAC as the operator. */
async function show(mac: string): Promise<MachineDoc & { disk: unknown }> {
  const res = await fetch(`${base}/api/v1/machines/${mac}`, { headers: { authorization: `Bearer ${OPERATOR}` } })
  assert.equal(res.status, 200, mac)
  return (await res.json()) as MachineDoc & { disk: unknown }
}

before(async () => {
  const image = testImage()
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hwimage-dashboard-'))
  // The test image's files, linked (it stays read-only), with a lab report beside them where
  // `hwimage test IMAGE_DIR --report IMAGE_DIR/lab-report` puts one: the cloud kernel's run kept in docs/lab.
  const imageDir = path.join(dir, 'image')
  await fsp.mkdir(path.join(imageDir, 'lab-report'), { recursive: true })
  for (const f of await fsp.readdir(image.dir)) await fsp.symlink(path.join(image.dir, f), path.join(imageDir, f))
  await fsp.copyFile(LAB_REPORT, path.join(imageDir, 'lab-report', 'report.json'))
  // A signed catalog (hwimage publish) of two serials of a small fixture build.
  key = await makeTestKey()
  const b1 = await makeBuildDir(path.join(dir, 'b1'), { date: '2026-12-01T10:00:00.000Z' })
  const b2 = await variantBuild(b1, path.join(dir, 'b2'), 2, '2026-12-02T10:00:00.000Z')
  const catalog = path.join(dir, 'catalog')
  await withGnupgHome(key, () => publish({ builds: [b1.dir, b2.dir], catalog, signKey: key.fingerprint }))
  port = await freePort()
  base = `http://127.0.0.1:${port}`
  const config = path.join(dir, 'serve.yaml')
  await fsp.writeFile(
    config,
    `listen: { host: 127.0.0.1, port: ${port} }
public_url: ${base}
state_dir: ${path.join(dir, 'state')}
unknown_macs: enlist
operator_token: ${OPERATOR}
images:
  default: ${imageDir}
catalog: { dir: ${catalog}, keyring: ${key.keyring} }
machines:
  ${CONFIGURED}: { name: rack1-node2, image: default }
`,
  )
  serve = await Serve.start(config)
  d = await openDashboard(`${base}/`)
  console.log(`# dashboard screenshots: ${OUTPUT_DIR}`)
})
after(async () => {
  await d?.close()
  if (serve) await serve.kill('SIGTERM')
  await key?.close()
  if (dir) await fsp.rm(dir, { recursive: true, force: true })
})

test('the dashboard asks for the operator token, then lists the configured machine', async () => {
  await d.signIn(OPERATOR)
  await d.waitForState(CONFIGURED, 'new')
  assert.equal(await d.row(CONFIGURED).locator('[data-field=name]').textContent(), 'rack1-node2')
  assert.equal(await d.row(CONFIGURED).locator('[data-field=image]').textContent(), 'default')
  await d.page.locator('#live[data-status=live]').waitFor()
  await d.page.evaluate((mark) => {
    ;(window as unknown as Record<string, boolean>)[mark] = true
  }, MARK)
})

let agent: Agent
test('a machine appears when it enlists, and shows "enlisted" once its inventory arrives', async () => {
  const res = await fetch(`${base}/api/v1/enlist`, { method: 'POST', body: JSON.stringify({ mac: ENLISTING }) })
  assert.equal(res.status, 200)
  agent = new Agent(ENLISTING, ((await res.json()) as { token: string }).token)
  await d.waitForState(ENLISTING, 'new')
  assert.equal((await agent.inventory(inventory(ENLISTING))).action, 'wait')
  await d.waitForState(ENLISTING, 'enlisted')
})

test("its page shows the inventory, the disk the hints choose, and the operator's assignment through the form changes its state through the API", async () => {
  const { page } = d
  await d.row(ENLISTING).locator('[data-field=name] a').click()
  await page.locator('.machine-head [data-field=mac]', { hasText: ENLISTING }).waitFor()
  // Without hints the first fixed disk is the target.
  await page.locator('tr[data-disk="/dev/vda"][data-chosen=true] .badge.target').waitFor()
  assert.match((await page.locator('section[aria-labelledby=h-inventory]').textContent()) ?? '', /uefi-secureboot/)
  assert.match((await page.locator('section[aria-labelledby=h-inventory]').textContent()) ?? '', /200 GiB/)
  const form = page.locator('form[data-action=assign]')
  await form.locator('select[name=image] option[value=default]').waitFor({ state: 'attached' })
  await form.locator('select[name=image]').selectOption('default')
  await form.locator('textarea[name=seed]').fill('hostname: rack1-node1\n')
  await form.locator('textarea[name=hints]').fill('size=>=100G')
  await form.locator('input[name=name]').fill('rack1-node1')
  await form.locator('button[type=submit]').click()
  await page.locator('.result.ok', { hasText: 'Assigned default' }).waitFor({ timeout: 15_000 })
  const doc = await show(ENLISTING)
  assert.equal(doc.machine.state, 'deploying')
  assert.equal(doc.machine.image, 'default')
  assert.equal(doc.machine.name, 'rack1-node1')
  assert.equal(doc.machine.hasSeed, true)
  assert.deepEqual(doc.machine.diskHints, ['size=>=100G'])
  assert.deepEqual(doc.disk, { path: '/dev/vdb' })
  // The page follows: the new state, the target moved to the disk the hints choose, the pre-flight verdict.
  await page.locator('.machine-head .state-deploying').waitFor()
  await page.locator('tr[data-disk="/dev/vdb"][data-chosen=true] .badge.target').waitFor()
  await page.locator('[data-verdict=ok]').waitFor()
  assert.match(
    (await page.locator('[data-verdict=ok]').textContent()) ?? '',
    /\/dev\/vdb with image default, kernel server/,
  )
})

test('its progress bar advances without a reload, on its page and in the list', async () => {
  const { page } = d
  const task = await agent.task()
  assert.equal(task.action, 'install')
  const total = 2 * GiB
  const bar = page.locator('.status progress')
  const doneOf = async () => Number(await bar.getAttribute('data-done'))
  await agent.progress({ stage: 'write', done: 0.1 * total, total, rate: 90 * 2 ** 20 })
  await page.locator('.status progress[data-done="' + 0.1 * total + '"]').waitFor()
  const first = await bar.evaluate((b: HTMLProgressElement) => b.value)
  assert.ok(Math.abs(first - 0.1) < 0.001, `bar at ${first}`)
  assert.match(
    (await page.locator('.status .progress-text').textContent()) ?? '',
    /^205 MiB of 2\.0 GiB · 90\.0 MiB\/s · ETA 20 s$/,
  )
  await agent.progress({ stage: 'write', done: 0.55 * total, total, rate: 95 * 2 ** 20 })
  await page.locator('.status progress[data-done="' + 0.55 * total + '"]').waitFor()
  assert.ok((await bar.evaluate((b: HTMLProgressElement) => b.value)) > first)
  assert.ok((await doneOf()) > 0.1 * total)
  await d.screenshot('machine-installing', { fullPage: true })
  // The list's answer, read by serve before the next change, reaches the page after that
  // change's stream message (another connection may be slower): the page must keep the newer.
  // The test holds the answer until the page shows the message, then lets it through.
  const raw = page.raw
  let answer: ((body: string) => void) | undefined
  let onRequest = (_req: import('puppeteer-core').HTTPRequest) => {}
  const asked = new Promise<{ body: Promise<string>; finished: Promise<void> }>((resolveAsked) => {
    onRequest = (req) => {
      if (req.isInterceptResolutionHandled()) return
      if (answer || !req.url().endsWith('/api/v1/machines?phases=1')) return void req.continue()
      const stale = fetch(req.url(), { headers: req.headers() }).then((r) => r.text())
      answer = (body) => void req.respond({ status: 200, contentType: 'application/json', body })
      const finished = new Promise<void>((done) => {
        const onDone = (r: import('puppeteer-core').HTTPRequest) => {
          if (r !== req) return
          raw.off('requestfinished', onDone)
          done()
        }
        raw.on('requestfinished', onDone)
      })
      resolveAsked({ body: stale, finished })
    }
    raw.on('request', onRequest)
  })
  await raw.setRequestInterception(true)
  await page.locator('nav a[data-nav=machines]').click()
  const held = await asked
  const staleBody = await held.body
  assert.equal(
    JSON.parse(staleBody).machines.find((m: MachineDoc['machine']) => m.mac === ENLISTING)?.progress?.done,
    0.55 * total,
  )
  await agent.progress({ stage: 'verify', done: 0.8 * total, total, rate: 300 * 2 ** 20 })
  const row = d.row(ENLISTING)
  await row.locator(`progress[data-done="${0.8 * total}"]`).waitFor()
  answer?.(staleBody)
  await held.finished
  await raw.setRequestInterception(false)
  raw.off('request', onRequest)
  // The answer is applied and drawn (at the next frame): the bar stays where the stream put it.
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))))
  assert.equal(await row.locator('progress').getAttribute('data-done'), String(0.8 * total))
  assert.equal(await row.locator('[data-field=stage]').textContent(), 'verify')
  assert.equal(await page.evaluate((mark) => (window as unknown as Record<string, boolean>)[mark], MARK), true)
})

let failedAgent: Agent
test('a failed machine shows its error in words in the list', async () => {
  const r = await fetch(`${base}/boot/ipxe?mac=${CONFIGURED}`)
  const token = /hwimage\.token=(\S+)/.exec(await r.text())?.[1]
  assert.ok(token)
  failedAgent = new Agent(CONFIGURED, token)
  assert.equal((await failedAgent.inventory(inventory(CONFIGURED))).action, 'install')
  await failedAgent.progress({ stage: 'write', done: 3 * 2 ** 20, total: 2 * GiB })
  await failedAgent.event('failed', {
    code: 'CHECKSUM_MISMATCH',
    message: 'Cannot install /dev/vda: the image read does not match SHA256SUMS',
    logTail: 'hwimage: reading http://…/debian-12-server-amd64.img.zst\nhwimage: error[CHECKSUM_MISMATCH]',
  })
  await d.waitForState(CONFIGURED, 'failed')
  assert.equal(
    await d.row(CONFIGURED).locator('[data-field=error]').textContent(),
    'CHECKSUM_MISMATCH: Cannot install /dev/vda: the image read does not match SHA256SUMS',
  )
  // One machine installing, one failed: the list as an operator watches it.
  await d.screenshot('machines-live', { selector: 'body' })
})

test('the enlisted machine reaches "deployed" with the time of each phase', async () => {
  await agent.progress({ stage: 'done', done: 2 * GiB, total: 2 * GiB })
  await agent.event('installed', {
    report: {
      digests: { sourceVerified: true },
      bytes: { read: 193e6, image: 2 * GiB, written: 591364096, skipped: 0, zeroed: 0 },
      seconds: { total: 21.4 },
    },
  })
  await d.waitForState(ENLISTING, 'installed')
  // The installed system boots after the install: its kernel's start (report time − uptime) is after "installed".
  await new Promise((r) => setTimeout(r, 700))
  await agent.report({
    event: 'first-boot',
    hostname: 'rack1-node1',
    instance_id: 'i-rack1-node1',
    addresses: ['10.0.2.15'],
    cloud_init: { status: 'done', errors: [] },
    uptime_seconds: 0.25,
    time: new Date().toISOString(),
  })
  await d.waitForState(ENLISTING, 'deployed')
  const phases = d.row(ENLISTING).locator('[data-field=phases]')
  for (const p of ['deployEnvironmentBoot', 'waitForAssignment', 'install', 'reboot', 'firstBoot', 'total'])
    await phases.locator(`[data-phase=${p}]`).waitFor()
  assert.match((await phases.locator('[data-phase=deployEnvironmentBoot]').textContent()) ?? '', /network boot 11\.5 s/)
  assert.match((await phases.locator('[data-phase=firstBoot]').textContent()) ?? '', /first boot 0\.3 s/)
  const api = await show(ENLISTING)
  assert.deepEqual(Object.keys(api.phases.seconds).sort(), [
    'deployEnvironmentBoot',
    'firstBoot',
    'install',
    'reboot',
    'total',
    'waitForAssignment',
  ])
  assert.equal(await d.page.evaluate((mark) => (window as unknown as Record<string, boolean>)[mark], MARK), true)
  await d.screenshot('machines', { fullPage: true })
  // Filtered by state.
  await d.page.locator('.filters a[data-state=failed]').click()
  // The failed machine was listed before the click too: wait for the deployed one to leave the list.
  await d.row(ENLISTING).waitFor({ state: 'detached', timeout: 10_000 })
  await d.row(CONFIGURED).waitFor()
  assert.equal(await d.row(ENLISTING).count(), 0)
  await d.page.locator('.filters a[data-state=all]').click()
  await d.row(ENLISTING).waitFor()
})

test("the deployed machine's page: phases, reports, the timeline", async () => {
  const { page } = d
  await d.row(ENLISTING).locator('[data-field=name] a').click()
  await page.locator('.machine-head .state-deployed').waitFor()
  const phases = page.locator('section[aria-labelledby=h-phases]')
  await phases.locator('[data-phase=install]').waitFor()
  assert.match((await phases.locator('[data-phase=deployEnvironmentBoot]').textContent()) ?? '', /11\.5 s/)
  const reports = (await page.locator('section[aria-labelledby=h-reports]').textContent()) ?? ''
  assert.match(reports, /564 MiB/)
  assert.match(reports, /rack1-node1/)
  assert.match(reports, /10\.0\.2\.15/)
  const kinds = await page
    .locator('ol.timeline li')
    .evaluateAll((lis) => lis.map((li) => (li as HTMLElement).dataset.kind))
  for (const k of ['enlisting', 'inventory', 'assigned', 'preflight', 'stage', 'installed', 'first-boot'])
    assert.ok(kinds.includes(k), `the timeline has ${k}: ${kinds.join(' ')}`)
  await d.screenshot('machine', { fullPage: true })
})

test('the failed machine: its page shows the error and the log tail; redeploy and forget go through the API', async () => {
  const { page } = d
  page.on('dialog', (dialog) => void dialog.accept())
  await page.locator('nav a[data-nav=machines]').click()
  await d.row(CONFIGURED).locator('[data-field=name] a').click()
  const failure = page.locator('.status .failure')
  await failure.waitFor()
  assert.match((await failure.textContent()) ?? '', /CHECKSUM_MISMATCH: Cannot install \/dev\/vda/)
  await failure.locator('summary').click()
  assert.match((await failure.locator('pre').textContent()) ?? '', /error\[CHECKSUM_MISMATCH\]/)
  await page.locator('button[data-action=redeploy]').click()
  await page.locator('.machine-head .state-deploying').waitFor()
  assert.equal((await show(CONFIGURED)).machine.state, 'deploying')
  await page.locator('button[data-action=forget]').click()
  await page.locator('table.machines').waitFor()
  await d.row(ENLISTING).waitFor()
  assert.equal(await d.row(CONFIGURED).count(), 0)
  const gone = await fetch(`${base}/api/v1/machines/${CONFIGURED}`, {
    headers: { authorization: `Bearer ${OPERATOR}` },
  })
  assert.equal(gone.status, 404)
})

test('the Images page shows what the manifest says', async () => {
  const { page } = d
  const m = testImage().manifest
  await page.locator('nav a[data-nav=images]').click()
  const card = page.locator('article.image[data-image=default]')
  await card.waitFor()
  const modes = await card.locator('[data-field=boot-modes] .badge').allTextContents()
  assert.ok(modes.includes('bios') && modes.includes('uefi'), modes.join(','))
  assert.match(
    (await card.locator('[data-field=kernel]').textContent()) ?? '',
    new RegExp(`^${m.kernel.flavor} ${m.kernel.version}$`),
  )
  assert.match(
    (await card.locator('[data-field=packages]').textContent()) ?? '',
    new RegExp(`^${Object.keys(m.packages).length}`),
  )
  await card.locator('details.packages summary').click()
  await card.locator('details.packages tr', { hasText: 'cloud-init' }).first().waitFor()
  // The lab's grid: a cell per firmware × storage × NIC, coloured by status, the diagnosis on hover.
  const lab = JSON.parse(await fsp.readFile(LAB_REPORT, 'utf8')) as {
    firmwares: string[]
    storages: string[]
    nics: string[]
    summary: { pass: number; fail: number }
    cells: Array<{ id: string; status: string; diagnosis?: { code: string; summary: string } }>
  }
  const grid = card.locator('table.lab-grid')
  await grid.waitFor()
  assert.deepEqual(await grid.locator('thead th').allTextContents(), ['storage', 'NIC', ...lab.firmwares])
  assert.equal(await grid.locator('td.lab-cell').count(), lab.firmwares.length * lab.storages.length * lab.nics.length)
  assert.equal(await grid.locator('td.lab-pass').count(), lab.summary.pass)
  assert.equal(await grid.locator('td.lab-fail').count(), lab.summary.fail)
  const failed = lab.cells.find((c) => c.status === 'fail')!
  const cell = grid.locator(`td[data-cell="${failed.id}"]`)
  assert.equal(await cell.textContent(), failed.diagnosis!.code)
  assert.match((await cell.getAttribute('title')) ?? '', new RegExp(`^${failed.diagnosis!.code}: `))
  await card.locator('details.packages summary').click()
  await d.screenshot('images', { fullPage: true })
})

test('the Images page shows the catalog: its signer, each product with its newest serial and the older ones folded', async () => {
  const { page } = d
  await page.locator('nav a[data-nav=images]').click()
  const cat = page.locator('section.catalog')
  await cat.waitFor()
  assert.equal(await cat.locator('[data-field=signed]').textContent(), `signed by ${key.fingerprint}`)
  const product = cat.locator('div.product[data-product="org.hwimage:debian:12:amd64:server"]')
  assert.match((await product.locator('h3').textContent()) ?? '', /bookworm\/server/)
  const newest = product.locator('article.image[data-image="org.hwimage:debian:12:amd64:server@20261202"]')
  assert.match((await newest.locator('h2').textContent()) ?? '', /^20261202newest/)
  assert.match((await newest.locator('[data-field=kernel]').textContent()) ?? '', /^server /)
  assert.equal(
    await product.locator('details > summary', { hasText: 'older serials' }).textContent(),
    'older serials (1)',
  )
  assert.equal(await product.locator('article.image[data-image$="@20261201"]').count(), 1)
  await d.screenshot('images-catalog', { selector: 'section.catalog' })
})

test('on a phone the machines list is one card per machine, with no horizontal scrolling', async () => {
  const { page } = d
  await page.setViewportSize({ width: 390, height: 844 })
  await page.locator('nav a[data-nav=machines]').click()
  await d.row(ENLISTING).waitFor()
  assert.equal(await page.locator('table.machines thead').evaluate((t) => getComputedStyle(t).display), 'none')
  assert.equal(await d.row(ENLISTING).evaluate((r) => getComputedStyle(r).display), 'block')
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth))
  await d.screenshot('machines-phone', { fullPage: true })
  await d.row(ENLISTING).locator('[data-field=name] a').click()
  await page.locator('.machine-head .state-deployed').waitFor()
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth))
  await d.screenshot('machine-phone', { fullPage: true })
})

test("no console errors on any page, and the operator token never reaches serve's log", async () => {
  // The one failed load the browser reports is the API's 401 that asked for the token.
  const unexpected = d.errors.filter(
    (e) => !/Failed to load resource: the server responded with a status of 401/.test(e),
  )
  assert.deepEqual(unexpected, [], d.console.join('\n'))
  await serve.kill('SIGTERM')
  assert.ok(!serve.log.includes(OPERATOR), 'the operator token is not in the log')
  assert.match(serve.log, /"path":"\/api\/v1\/stream\?access_token=\[redacted\]"/)
  assert.ok(!serve.log.includes(agent.token) && !serve.log.includes(failedAgent.token), 'no machine token either')
  serve = undefined as unknown as Serve
})
