// serve's dashboard in a real browser: Debian's chromium (the default, `make test`) or
// firefox-esr (HWIMAGE_BROWSER=firefox, `make test-firefox`), both driven by puppeteer-core
// (no browser download: executablePath is the system's /usr/bin/chromium or /usr/bin/firefox-esr,
// both in scripts/setup.sh). Used by dashboard.test.ts with simulated agents, and by the QEMU
// deploy test, which opens the dashboard of its serve during a real deploy:
//
//   const d = await openDashboard(`http://127.0.0.1:${port}/`)
//   await d.waitForState(mac, 'deployed')
//   assert.deepEqual(d.errors, [])
//
// A small locator (CSS steps, optionally filtered by text) that waits for what the page shows,
// so the tests assert the DOM without sleeps in both browsers.

import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import puppeteer, { type Browser, type Page as RawPage } from 'puppeteer-core'

/** Which browser: HWIMAGE_BROWSER=chromium (default) or firefox. */
export const BROWSER: 'chromium' | 'firefox' = process.env.HWIMAGE_BROWSER === 'firefox' ? 'firefox' : 'chromium'
/** The browser's executable: HWIMAGE_CHROMIUM / HWIMAGE_FIREFOX, or Debian's. */
export const EXECUTABLE =
  BROWSER === 'firefox'
    ? (process.env.HWIMAGE_FIREFOX ?? '/usr/bin/firefox-esr')
    : (process.env.HWIMAGE_CHROMIUM ?? '/usr/bin/chromium')

/** Where screenshots go: HWIMAGE_TEST_OUTPUT_DIR, or .cache/test-output/dashboard. */
export const OUTPUT_DIR = resolve(process.env.HWIMAGE_TEST_OUTPUT_DIR ?? '.cache/test-output/dashboard')

/** Tests wait for what the page shows; a wrong expectation should fail in seconds, not in 30. */
const DEFAULT_TIMEOUT = 10_000

interface Step {
  css: string
  hasText?: string
  /** Keep only elements that also match this selector. */
  and?: string
  first?: boolean
}

type State = 'attached' | 'detached' | 'visible' | 'hidden'

/** Runs in the page: the elements the steps select. */
function select(steps: Step[]): Element[] {
  let found: Element[] = [document.documentElement]
  let top = true
  for (const s of steps) {
    let next: Element[] = []
    if (s.and !== undefined) next = found.filter((e) => e.matches(s.and as string))
    else {
      for (const root of found) {
        const within = top ? document.querySelectorAll(s.css) : root.querySelectorAll(s.css)
        for (const e of within) if (!next.includes(e)) next.push(e)
      }
      top = false
      if (s.hasText !== undefined) next = next.filter((e) => (e.textContent ?? '').includes(s.hasText as string))
    }
    if (s.first) next = next.slice(0, 1)
    found = next
  }
  return found
}

/** Playwright-style locator over puppeteer: lazy, re-evaluated on every call. */
export class Locator {
  constructor(
    private readonly raw: RawPage,
    readonly steps: Step[],
  ) {}
  locator(css: string, opts: { hasText?: string } = {}): Locator {
    return new Locator(this.raw, [
      ...this.steps,
      { css, ...(opts.hasText !== undefined ? { hasText: opts.hasText } : {}) },
    ])
  }
  /** Only the elements that `other` (one CSS step) also matches. */
  and(other: Locator): Locator {
    return new Locator(this.raw, [...this.steps, { css: '', and: other.steps.map((s) => s.css).join('') }])
  }
  first(): Locator {
    return new Locator(this.raw, [...this.steps, { css: '', and: '*', first: true }])
  }
  private describe(): string {
    return this.steps
      .map((s) => (s.and !== undefined ? `&${s.and}` : s.css) + (s.hasText ? `[text~${s.hasText}]` : ''))
      .join(' >> ')
  }
  /** An expression the page evaluates (through the automation protocol, which the page's CSP does not govern). */
  private expr(then: string): string {
    return `((els) => ${then})((${select.toString()})(${JSON.stringify(this.steps)}))`
  }
  async waitFor(opts: { state?: State; timeout?: number } = {}): Promise<void> {
    const state = opts.state ?? 'visible'
    const visible =
      'els.some((e) => { const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0 && getComputedStyle(e).visibility !== "hidden" })'
    const test = {
      attached: 'els.length > 0',
      detached: 'els.length === 0',
      visible,
      hidden: `!${visible}`,
    }[state]
    try {
      await this.raw.waitForFunction(this.expr(test), { timeout: opts.timeout ?? DEFAULT_TIMEOUT, polling: 50 })
    } catch (e) {
      throw new Error(`waiting for ${this.describe()} to be ${state}: ${(e as Error).message}`)
    }
  }
  /** The first element, once it is attached. */
  private async handle() {
    await this.waitFor({ state: 'attached' })
    const h = await this.raw.evaluateHandle(this.expr('els[0]'))
    return h.asElement() as import('puppeteer-core').ElementHandle<Element>
  }
  async evaluate<R, A>(f: (e: never, arg: A) => R, arg?: A): Promise<R> {
    const h = await this.handle()
    const run = h.evaluate.bind(h) as unknown as (g: unknown, a: unknown) => Promise<R>
    return await run(f, arg)
  }
  async evaluateAll<R>(f: (els: Element[]) => R): Promise<R> {
    return (await this.raw.evaluate(this.expr(`(${f.toString()})(els)`))) as R
  }
  count = () => this.evaluateAll((els) => els.length)
  allTextContents = () => this.evaluateAll((els) => els.map((e) => e.textContent ?? ''))
  textContent = () => this.evaluate((e: Element) => e.textContent)
  getAttribute = (name: string) => this.evaluate((e: Element, n: string) => e.getAttribute(n), name)
  async click(): Promise<void> {
    await this.waitFor({ state: 'visible' })
    await (await this.handle()).click()
  }
  async fill(value: string): Promise<void> {
    await this.waitFor({ state: 'visible' })
    await this.evaluate((e: HTMLInputElement, v: string) => {
      e.focus()
      e.value = v
      e.dispatchEvent(new Event('input', { bubbles: true }))
      e.dispatchEvent(new Event('change', { bubbles: true }))
    }, value)
  }
  async selectOption(value: string): Promise<void> {
    await this.waitFor({ state: 'visible' })
    await (await this.handle()).select(value)
  }
  async screenshot(opts: { path: string }): Promise<void> {
    await this.waitFor({ state: 'visible' })
    await (await this.handle()).screenshot({ path: opts.path as `${string}.png` })
  }
}

/** The page as the tests use it: locators, evaluate, events, the viewport; `raw` is puppeteer's. */
export interface Page {
  raw: RawPage
  locator(css: string, opts?: { hasText?: string }): Locator
  evaluate: RawPage['evaluate']
  on: RawPage['on']
  setViewportSize(size: { width: number; height: number }): Promise<void>
}

/** The page and what it has said. */
export interface DashboardHandles {
  browser: Browser
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

/** Launches the browser headless and opens `url` (serve's dashboard, e.g. http://127.0.0.1:8080/). */
export async function openDashboard(
  url: string,
  opts: { viewport?: { width: number; height: number }; outDir?: string } = {},
): Promise<DashboardHandles> {
  if (!existsSync(EXECUTABLE))
    throw new Error(
      BROWSER === 'firefox'
        ? `No browser at ${EXECUTABLE}: apt-get install firefox-esr (scripts/setup.sh does), or set HWIMAGE_FIREFOX`
        : `No browser at ${EXECUTABLE}: apt-get install chromium (scripts/setup.sh does), or set HWIMAGE_CHROMIUM`,
    )
  const outDir = opts.outDir ?? OUTPUT_DIR
  await mkdir(outDir, { recursive: true })
  // --no-sandbox: Chromium refuses to start as root with its sandbox (CI runs as root); the page is our own.
  const browser =
    BROWSER === 'firefox'
      ? await puppeteer.launch({ browser: 'firefox', executablePath: EXECUTABLE, headless: true })
      : await puppeteer.launch({
          browser: 'chrome',
          executablePath: EXECUTABLE,
          headless: true,
          args: ['--no-sandbox'],
        })
  try {
    const raw = await browser.newPage()
    raw.setDefaultTimeout(DEFAULT_TIMEOUT)
    await raw.setViewport(opts.viewport ?? { width: 1280, height: 860 })
    const errors: string[] = []
    const log: string[] = []
    raw.on('console', (m) => {
      log.push(`${m.type()}: ${m.text()}`)
      if (m.type() === 'error') errors.push(`console: ${m.text()}`)
    })
    raw.on('pageerror', (e) => {
      const message = e instanceof Error ? e.message : String(e)
      log.push(`pageerror: ${message}`)
      errors.push(`pageerror: ${message}`)
    })
    raw.on('requestfailed', (r) => log.push(`requestfailed: ${r.url()} ${r.failure()?.errorText ?? ''}`))
    await raw.goto(url)
    const root = new Locator(raw, [])
    const page: Page = {
      raw,
      locator: (css, o) => root.locator(css, o),
      evaluate: raw.evaluate.bind(raw) as RawPage['evaluate'],
      on: raw.on.bind(raw) as RawPage['on'],
      setViewportSize: (size) => raw.setViewport(size),
    }
    const row = (mac: string) => page.locator(`table.machines tr[data-mac="${mac}"]`)
    return {
      browser,
      page,
      errors,
      console: log,
      async signIn(token) {
        const dialog = page.locator('dialog#sign-in')
        await dialog.waitFor({ state: 'visible', timeout: 15_000 })
        await dialog.locator('input[name=token]').fill(token)
        await dialog.locator('button[type=submit]').click()
        await dialog.waitFor({ state: 'hidden' })
      },
      row,
      async waitForState(mac, state, timeoutMs = DEFAULT_TIMEOUT) {
        await row(mac)
          .and(page.locator(`[data-state="${state}"]`))
          .waitFor({ timeout: timeoutMs })
      },
      async screenshot(name, o = {}) {
        const file = join(outDir, `${BROWSER === 'firefox' ? 'firefox-' : ''}${name}.png`) as `${string}.png`
        if (o.selector) await page.locator(o.selector).screenshot({ path: file })
        else await raw.screenshot({ path: file, fullPage: o.fullPage ?? false })
        return file
      },
      close: () => browser.close(),
    }
  } catch (e) {
    await browser.close()
    throw e
  }
}
