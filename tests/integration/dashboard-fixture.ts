// serve's dashboard in a real browser: Debian's chromium driven by playwright-core (no
// browser download: the system's /usr/bin/chromium, `chromium` in scripts/setup.sh). Used by
// dashboard.test.ts with simulated agents, and meant for the QEMU deploy test, which can
// open the dashboard of its serve and assert what the page shows during a real deploy:
//
//   const d = await openDashboard(`http://127.0.0.1:${port}/`)
//   await d.waitForState(mac, 'deployed')
//   assert.deepEqual(d.errors, [])

import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { type Browser, type BrowserContext, chromium, type Locator, type Page } from 'playwright-core'

/** The browser: HWIMAGE_CHROMIUM, or Debian's. */
export const CHROMIUM = process.env.HWIMAGE_CHROMIUM ?? '/usr/bin/chromium'

/** Where screenshots go: HWIMAGE_TEST_OUTPUT_DIR, or .cache/test-output/dashboard. */
export const OUTPUT_DIR = resolve(process.env.HWIMAGE_TEST_OUTPUT_DIR ?? '.cache/test-output/dashboard')

/** The page and what it has said. */
export interface DashboardHandles {
  browser: Browser
  context: BrowserContext
  page: Page
  /** Console errors and uncaught exceptions, as "console: …" / "pageerror: …", in order. */
  errors: string[]
  /** Every console message and failed request, for a test's failure message. */
  console: string[]
  /** Answers the sign-in dialog (which appears when the API says 401) with `token`. */
  signIn(token: string): Promise<void>
  /** The machine's row on the Machines page. */
  row(mac: string): Locator
  /** Waits until the machine's row shows `state` (the page updates itself: no reload). */
  waitForState(mac: string, state: string, timeoutMs?: number): Promise<void>
  /** A PNG of the page (or of the element `selector` matches) in the output directory; returns its path. */
  screenshot(name: string, opts?: { fullPage?: boolean; selector?: string }): Promise<string>
  close(): Promise<void>
}

/** Launches chromium headless and opens `url` (serve's dashboard, e.g. http://127.0.0.1:8080/). */
export async function openDashboard(
  url: string,
  opts: { viewport?: { width: number; height: number }; outDir?: string } = {},
): Promise<DashboardHandles> {
  if (!existsSync(CHROMIUM))
    throw new Error(
      `No browser at ${CHROMIUM}: apt-get install chromium (scripts/setup.sh does), or set HWIMAGE_CHROMIUM`,
    )
  const outDir = opts.outDir ?? OUTPUT_DIR
  await mkdir(outDir, { recursive: true })
  // --no-sandbox: Chromium refuses to start as root with its sandbox (CI runs as root); the page is our own.
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] })
  try {
    const context = await browser.newContext({ viewport: opts.viewport ?? { width: 1280, height: 860 } })
    // Tests wait for what the page shows; a wrong expectation should fail in seconds, not in 30.
    context.setDefaultTimeout(10_000)
    const page = await context.newPage()
    const errors: string[] = []
    const log: string[] = []
    page.on('console', (m) => {
      log.push(`${m.type()}: ${m.text()}`)
      if (m.type() === 'error') errors.push(`console: ${m.text()}`)
    })
    page.on('pageerror', (e) => {
      log.push(`pageerror: ${e.message}`)
      errors.push(`pageerror: ${e.message}`)
    })
    page.on('requestfailed', (r) => log.push(`requestfailed: ${r.url()} ${r.failure()?.errorText ?? ''}`))
    await page.goto(url)
    const row = (mac: string) => page.locator(`table.machines tr[data-mac="${mac}"]`)
    return {
      browser,
      context,
      page,
      errors,
      console: log,
      async signIn(token) {
        const dialog = page.locator('dialog#sign-in')
        await dialog.waitFor({ state: 'visible' })
        await dialog.locator('input[name=token]').fill(token)
        await dialog.locator('button[type=submit]').click()
        await dialog.waitFor({ state: 'hidden' })
      },
      row,
      async waitForState(mac, state, timeoutMs = 10_000) {
        await row(mac)
          .and(page.locator(`[data-state="${state}"]`))
          .waitFor({ timeout: timeoutMs })
      },
      async screenshot(name, o = {}) {
        const file = join(outDir, `${name}.png`)
        if (o.selector) await page.locator(o.selector).screenshot({ path: file })
        else await page.screenshot({ path: file, fullPage: o.fullPage ?? false })
        return file
      },
      close: () => browser.close(),
    }
  } catch (e) {
    await browser.close()
    throw e
  }
}
