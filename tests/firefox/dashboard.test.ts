// The dashboard in Firefox (Debian's firefox-esr, `scripts/setup.sh`), driven by
// puppeteer-core over WebDriver BiDi (no browser download: executablePath is the system's).
// playwright-core drives chromium in tests/integration/dashboard.test.ts; its BiDi Firefox
// (channel "moz-firefox") cannot start firefox-esr 153 (it sends
// emulation.setMediaFeaturesOverride, which that Firefox does not know): DEPENDENCIES.md.
// Against a real serve (in process, its SQLite state, an operator token), agents played
// over the machine routes: sign-in on the 401, a machine appears when it enlists, the
// list's progress bar advances without a reload over the live stream, deployed with its
// phase times, no console errors beyond the 401. `make test-firefox`; not in `make test`.

import assert from 'node:assert/strict'
import { existsSync, promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import puppeteer, { type Browser, type Page } from 'puppeteer-core'
import { ServeClient } from '../../src/deploy/serve-client.js'
import { loadServeConfig } from '../../src/serve/config.js'
import { startServe, type RunningServe } from '../../src/serve/server.js'

const FIREFOX = process.env.HWIMAGE_FIREFOX ?? '/usr/bin/firefox-esr'
const OUTPUT_DIR = path.resolve(process.env.HWIMAGE_TEST_OUTPUT_DIR ?? '.cache/test-output/dashboard')
const OPERATOR = 'firefox-operator-token-8c1d'
const CONFIGURED = '52:54:00:ff:00:01'
const ENLISTING = '52:54:00:ff:00:02'
const MARK = '__hwimageNoReload'
const MiB = 2 ** 20

let dir: string
let serve: RunningServe
let browser: Browser
let page: Page
const errors: string[] = []

before(async () => {
  assert.ok(
    existsSync(FIREFOX),
    `No browser at ${FIREFOX}: apt-get install firefox-esr (scripts/setup.sh does), or set HWIMAGE_FIREFOX`,
  )
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hwimage-firefox-'))
  const images = path.join(dir, 'images')
  await fsp.mkdir(images)
  await fsp.writeFile(path.join(images, 'default.img.zst'), 'not read by this test')
  const config = path.join(dir, 'serve.yaml')
  await fsp.writeFile(
    config,
    `listen: { host: 127.0.0.1, port: 0 }\npublic_url: http://127.0.0.1:8080\nstate_dir: ${path.join(dir, 'state')}\nunknown_macs: enlist\noperator_token: ${OPERATOR}\nimages:\n  default: ${images}\nmachines:\n  ${CONFIGURED}: { name: rack1-ff1, image: default }\n`,
  )
  serve = await startServe(await loadServeConfig(config), { port: 0, host: '127.0.0.1' })
  await fsp.mkdir(OUTPUT_DIR, { recursive: true })
  browser = await puppeteer.launch({ browser: 'firefox', executablePath: FIREFOX, headless: true })
  page = await browser.newPage()
  await page.setViewport({ width: 1280, height: 860 })
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`)
  })
  page.on('pageerror', (e) => errors.push(`pageerror: ${(e as Error).message}`))
  await page.goto(`${serve.url}/`)
})
after(async () => {
  await browser?.close()
  await serve?.close()
  await fsp.rm(dir, { recursive: true, force: true })
})

const row = (mac: string) => `table.machines tr[data-mac="${mac}"]`

test('Firefox: the sign-in dialog on the 401, then the Machines page from the API', async () => {
  await page.waitForSelector('dialog#sign-in', { visible: true, timeout: 15_000 })
  await page.type('dialog#sign-in input[name=token]', OPERATOR)
  await page.click('dialog#sign-in button[type=submit]')
  await page.waitForSelector('dialog#sign-in', { hidden: true })
  await page.waitForSelector(`${row(CONFIGURED)}[data-state="new"]`)
  await page.evaluate((m) => ((window as unknown as Record<string, boolean>)[m] = true), MARK)
})

test('Firefox: a machine appears when it enlists, without a reload', async () => {
  const r = await fetch(`${serve.url}/api/v1/enlist`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ mac: ENLISTING }),
  })
  assert.equal(r.status, 200)
  await page.waitForSelector(`${row(ENLISTING)}[data-state="new"]`)
})

test('Firefox: the progress bar advances over the live stream, then deployed with the phase times; no reload, no console errors beyond the 401', async () => {
  const d = serve.store.boot(CONFIGURED, 'enlist', 'ipxe')
  assert.equal(d.action, 'deploy')
  const agent = new ServeClient({ url: serve.url, mac: CONFIGURED, token: (d as { token: string }).token })
  await page.waitForSelector(`${row(CONFIGURED)}[data-state="deploying"]`)
  const total = 1000 * MiB
  for (const f of [0.1, 0.55, 0.8]) {
    await agent.progress({ stage: 'write', done: f * total, total, rate: 90 * MiB })
    await page.waitForSelector(`${row(CONFIGURED)} progress[data-done="${f * total}"]`)
  }
  await page.screenshot({ path: path.join(OUTPUT_DIR, 'firefox-installing.png') })
  await agent.event('installed', { report: { bytes: { written: total } } })
  await agent.report({ hostname: 'rack1-ff1' })
  await page.waitForSelector(`${row(CONFIGURED)}[data-state="deployed"]`)
  // Every phase the API timed is in the row, by name.
  const doc = (await (
    await fetch(`${serve.url}/api/v1/machines/${CONFIGURED}`, { headers: { authorization: `Bearer ${OPERATOR}` } })
  ).json()) as { phases: { seconds: Record<string, number> } }
  const timed = Object.keys(doc.phases.seconds).sort()
  assert.ok(timed.includes('install'), timed.join(', '))
  for (const p of timed) await page.waitForSelector(`${row(CONFIGURED)} [data-field=phases] [data-phase=${p}]`)
  const shown = await page.$$eval(`${row(CONFIGURED)} [data-field=phases] [data-phase]`, (els) =>
    els.map((e) => (e as HTMLElement).dataset.phase ?? '').sort(),
  )
  assert.deepEqual(shown, timed)
  assert.equal(
    await page.evaluate((m) => (window as unknown as Record<string, boolean>)[m], MARK),
    true,
    'the page never reloaded',
  )
  await page.screenshot({ path: path.join(OUTPUT_DIR, 'firefox-deployed.png') })
  assert.deepEqual(
    errors.filter((e) => !/401|Unauthorized/i.test(e)),
    [],
  )
})
