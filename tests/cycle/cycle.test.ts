// hwimage cycle with a changed spec (issue 14): the test image published into a fresh
// catalog, then a cycle of the default spec plus one package builds (one full build,
// about 3 minutes: here in make test-cycle, not in make test) and publishes a new serial
// whose CHANGELOG names the package added and the spec change.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { run } from '../../src/tools/run.js'
import { CLI, testImage } from '../integration/fixture.js'

const image = testImage()

test('hwimage cycle of a changed spec publishes a new serial with a CHANGELOG naming the added package', async () => {
  const dir = await mkdtemp('/var/tmp/hwimage-cycle-changed-')
  try {
    const cat = join(dir, 'catalog')
    await run([CLI, 'publish', image.dir, '--catalog', cat])
    const spec = join(dir, 'changed.yaml')
    await writeFile(spec, 'kernel:\n  flavor: server\npackages: [htop]\n')
    const r = await run([CLI, 'cycle', spec, '--catalog', cat, '--json'], { okStatus: [0, 1, 2, 3] })
    assert.equal(r.status, 0, r.stderr.slice(-2000))
    const report = JSON.parse(r.stdout) as {
      status: string
      serial: string
      previous: string
      reasons: { kind: string }[]
    }
    assert.equal(report.status, 'published')
    assert.ok(report.reasons.some((x) => x.kind === 'spec'))
    assert.notEqual(report.serial, report.previous)
    const products = JSON.parse(await readFile(join(cat, 'streams/v1/org.hwimage:images.json'), 'utf8'))
    const versions = products.products['org.hwimage:debian:12:amd64:server'].versions
    assert.deepEqual(Object.keys(versions).sort(), [report.previous, report.serial].sort())
    const item = versions[report.serial].items.changelog
    assert.equal(item.ftype, 'changelog')
    const text = await readFile(join(cat, item.path), 'utf8')
    assert.match(text, new RegExp(`changes since ${report.previous.replace('.', '\\.')}`))
    assert.match(text, /packages added:\n(?: {2}.*\n)* {2}htop \S+\n/)
    assert.match(text, /build:\n {2}the spec changed\n/)
    await run(['sha256sum', '-c', '--quiet', '--ignore-missing', 'SHA256SUMS'], { cwd: join(cat, item.path, '..') })
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
