import assert from 'node:assert/strict'
import { test } from 'node:test'
import { listenForReports, parseBody } from './report-listener.js'

test('listenForReports() yields POSTed JSON and form reports in order, then ends on close()', async () => {
  const l = await listenForReports({ port: 0, host: '127.0.0.1' })
  try {
    const url = `http://127.0.0.1:${l.port}`
    const r1 = await fetch(`${url}/report`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ instance_id: 'i-1', hostname: 'metal-01' }),
    })
    assert.equal(r1.status, 200)
    assert.deepEqual(await r1.json(), { ok: true })
    const r2 = await fetch(`${url}/phone/i-2`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'instance_id=i-2&hostname=metal-02',
    })
    assert.equal(r2.status, 200)
    const it = l.reports[Symbol.asyncIterator]()
    const a = await it.next()
    assert.equal(a.done, false)
    assert.equal(a.value!.path, '/report')
    assert.equal(a.value!.method, 'POST')
    assert.equal(a.value!.contentType, 'application/json')
    assert.deepEqual(a.value!.report, { instance_id: 'i-1', hostname: 'metal-01' })
    assert.match(a.value!.remote, /^127\.0\.0\.1:\d+$/)
    assert.ok(!Number.isNaN(Date.parse(a.value!.received)))
    const b = await it.next()
    assert.deepEqual([b.value!.path, b.value!.report], ['/phone/i-2', { instance_id: 'i-2', hostname: 'metal-02' }])
    const pending = it.next()
    await l.close()
    assert.deepEqual(await pending, { value: undefined, done: true })
  } finally {
    await l.close()
  }
})

test('listenForReports() refuses GET, bad JSON and oversized bodies without yielding them', async () => {
  const l = await listenForReports({ port: 0, host: '127.0.0.1' })
  try {
    const url = `http://127.0.0.1:${l.port}/`
    assert.equal((await fetch(url)).status, 405)
    assert.equal(
      (await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{nope' })).status,
      400,
    )
    const big = await fetch(url, { method: 'POST', body: 'x'.repeat(1024 * 1024 + 1) }).then(
      (r) => r.status,
      () => 413,
    )
    assert.equal(big, 413)
    await fetch(url, { method: 'POST', body: '{"ok": 1}' })
    const first = await l.reports[Symbol.asyncIterator]().next()
    assert.deepEqual(first.value!.report, { ok: 1 })
  } finally {
    await l.close()
  }
})

test('listenForReports() says which address could not be bound', async () => {
  const a = await listenForReports({ port: 0, host: '127.0.0.1' })
  try {
    await assert.rejects(
      listenForReports({ port: a.port, host: '127.0.0.1' }),
      (e: unknown) => e instanceof Error && /Cannot listen on 127.0.0.1:\d+: EADDRINUSE/.test(e.message),
    )
  } finally {
    await a.close()
  }
})

test('parseBody() parses JSON, form data, JSON without a type, and keeps other text', () => {
  assert.deepEqual(parseBody('{"a":1}', 'application/json'), { a: 1 })
  assert.deepEqual(parseBody('a=1&b=x+y', 'application/x-www-form-urlencoded'), { a: '1', b: 'x y' })
  assert.deepEqual(parseBody('[1]', ''), [1])
  assert.equal(parseBody('hello', 'text/plain'), 'hello')
  assert.throws(() => parseBody('{', 'application/json'))
})
