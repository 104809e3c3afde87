import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ProgressPoster } from './progress-poster.js'

test('ProgressPoster: at most one report per interval, the latest each time, with the rate of the stage', async () => {
  const sent: Array<{ stage: string; done: number; rate?: number; at: number }> = []
  const t0 = performance.now()
  const poster = new ProgressPoster(
    async (p) => {
      sent.push({ ...p, at: performance.now() - t0 })
    },
    { intervalMs: 100 },
  )
  // 40 updates over ~400 ms: about 5 reports, not 40.
  for (let i = 1; i <= 40; i++) {
    poster.update({ stage: 'write', done: i * 1000, total: 40_000 })
    await new Promise((r) => setTimeout(r, 10))
  }
  poster.update({ stage: 'done', done: 40_000, total: 40_000 })
  await poster.flush()
  assert.ok(sent.length >= 3 && sent.length <= 7, `${sent.length} reports`)
  for (let i = 1; i < sent.length; i++)
    assert.ok(
      sent[i]!.at - sent[i - 1]!.at >= 95,
      `reports ${i - 1} and ${i} are ${sent[i]!.at - sent[i - 1]!.at} ms apart`,
    )
  assert.equal(sent[0]!.done, 1000, 'the first update goes out at once')
  assert.equal(sent[0]!.rate, undefined, 'no rate before a second report of the stage')
  assert.ok(sent[1]!.rate! > 0, 'a rate from the second report on')
  assert.deepEqual(
    { stage: sent.at(-1)!.stage, done: sent.at(-1)!.done },
    { stage: 'done', done: 40_000 },
    'flush sends the latest',
  )
})

test('ProgressPoster: a failing report is passed to onError and the next one still goes out', async () => {
  const errors: unknown[] = []
  let n = 0
  const poster = new ProgressPoster(
    async () => {
      if (++n === 1) throw new Error('serve is restarting')
    },
    { intervalMs: 20, onError: (e) => errors.push(e) },
  )
  poster.update({ stage: 'write', done: 1 })
  await new Promise((r) => setTimeout(r, 5))
  poster.update({ stage: 'write', done: 2 })
  await poster.flush()
  assert.equal(n, 2)
  assert.equal(errors.length, 1)
})
