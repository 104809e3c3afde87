import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { makeFixtureImage } from '../../install/image.fixture.js'
import { loadServeConfig } from '../config.js'
import { rawRequest, writeConfig } from '../serve.fixture.js'
import { startServe, type RunningServe } from '../server.js'
import { dashboardDir } from './dashboard.js'

const OPERATOR = 'op-token-for-the-dashboard-0123'
let dir: string
let serve: RunningServe

before(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hwimage-dashboard-route-'))
  const out = path.join(dir, 'out')
  await fsp.mkdir(out)
  await makeFixtureImage(out, { formats: ['zst'] })
  const file = await writeConfig(dir, out, `operator_token: ${OPERATOR}\n`)
  serve = await startServe(await loadServeConfig(file), { port: 0, host: '127.0.0.1' })
})
after(async () => {
  await serve?.close()
  await fsp.rm(dir, { recursive: true, force: true })
})

test('GET / is the dashboard, without a token (the page holds no data), with a Content-Security-Policy; the API still wants the token', async () => {
  const r = await rawRequest(serve.url, '/')
  assert.equal(r.status, 200)
  assert.equal(r.headers['content-type'], 'text/html; charset=utf-8')
  assert.match(String(r.headers['content-security-policy']), /default-src 'none'; script-src 'self'/)
  assert.equal(r.headers['x-content-type-options'], 'nosniff')
  assert.match(r.body.toString(), /<script type="module" src="\/ui\/app\.js"><\/script>/)
  assert.equal((await rawRequest(serve.url, '/', { method: 'HEAD' })).status, 200)
  assert.equal((await rawRequest(serve.url, '/', { method: 'POST' })).status, 405)
  assert.equal((await rawRequest(serve.url, '/api/v1/machines')).status, 401)
})

test('every file the page loads is served with its type: the ones index.html names and every module an import names', async () => {
  const root = dashboardDir()
  const html = await fsp.readFile(path.join(root, 'index.html'), 'utf8')
  const wanted = new Set([...html.matchAll(/(?:src|href)="\/ui\/([^"]+)"/g)].map((m) => m[1]!))
  for (const f of await fsp.readdir(root))
    if (f.endsWith('.js'))
      for (const m of (await fsp.readFile(path.join(root, f), 'utf8')).matchAll(/from '\.\/([^']+)'/g))
        wanted.add(m[1]!)
  assert.ok(wanted.has('app.js') && wanted.has('machines.js') && wanted.has('style.css'), [...wanted].join(' '))
  const types: Record<string, RegExp> = { '.js': /^text\/javascript/, '.css': /^text\/css/, '.svg': /^image\/svg\+xml/ }
  for (const f of wanted) {
    const r = await rawRequest(serve.url, `/ui/${f}`)
    assert.equal(r.status, 200, f)
    assert.match(String(r.headers['content-type']), types[path.extname(f)]!, f)
    assert.deepEqual(r.body, await fsp.readFile(path.join(root, f)), f)
  }
})

test('/ui/ refuses traversal, hidden files and other file types (400/404), and nothing from outside dashboard/ comes back', async () => {
  const pkg = await fsp.readFile(path.join(dashboardDir(), '..', 'package.json'), 'utf8')
  for (const p of [
    '/ui/../package.json',
    '/ui/%2e%2e/package.json',
    '/ui/..%2fpackage.json',
    '/ui/%2e%2e%2fpackage.json',
    '/ui/%252e%252e%252fpackage.json',
    '/ui/..%5cpackage.json',
    '/ui/app.js%00',
    '/ui//etc/passwd',
    '/ui/%2fetc%2fpasswd',
    '/ui/.hidden.js',
    '/ui/missing.js',
    '/ui/app.ts',
    '/ui/package.json',
    '/../package.json',
    '/ui/a/b.js',
  ]) {
    const r = await rawRequest(serve.url, p)
    assert.ok(r.status === 400 || r.status === 404, `${p}: ${r.status}`)
    assert.ok(!r.body.toString().includes(pkg.slice(0, 60)), `${p} leaked package.json`)
  }
})
