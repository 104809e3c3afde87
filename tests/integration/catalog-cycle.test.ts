// hwimage cycle with nothing changed (issue 14): the test image published into a fresh
// catalog, then `hwimage cycle` of the default spec finds hwimage's version, the spec's
// digest and every package's version on the mirror unchanged — exit 3, nothing written,
// no build. It asks Debian's mirror (apt-get update into its own state directory): when
// a package moved on the mirror since the test image was built, the cycle reports it and
// this test fails naming the package (the image is then older than the mirror: rebuild it).
// The changed-spec cycle (a build) is in tests/cycle (make test-cycle).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { run } from '../../src/tools/run.js'
import { CLI, testImage } from './fixture.js'

const image = testImage()

async function listing(dir: string): Promise<string[]> {
  const out: string[] = []
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name)
      if (e.isDirectory()) await walk(p)
      else out.push(`${p} ${(await stat(p)).mtimeMs}`)
    }
  }
  await walk(dir)
  return out.sort()
}

test('hwimage cycle with nothing changed since the published test image exits 3 and writes nothing', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hwimage-cycle-'))
  try {
    const cat = join(dir, 'catalog')
    await run([CLI, 'publish', image.dir, '--catalog', cat])
    const before = await listing(cat)
    const started = Date.now()
    const r = await run([CLI, 'cycle', '--catalog', cat, '--json', '--work', join(dir, 'work')], {
      okStatus: [0, 1, 2, 3],
    })
    const seconds = (Date.now() - started) / 1000
    console.log(`no-change cycle: ${seconds.toFixed(1)} s`)
    const report = JSON.parse(r.stdout) as {
      status: string
      reasons: { kind: string; detail: string }[]
      previous: string
    }
    assert.deepEqual(report.reasons, [], 'nothing changed since the test image was built')
    assert.equal(r.status, 3, r.stderr)
    assert.equal(report.status, 'unchanged')
    assert.equal(report.previous, image.manifest.build.date.slice(0, 10).replaceAll('-', ''))
    assert.deepEqual(await listing(cat), before, 'the catalog is untouched')
    await assert.rejects(stat(join(dir, 'work')), 'nothing was built')
    // --check says the same, with the same exit status.
    const check = await run([CLI, 'cycle', '--catalog', cat, '--check'], { okStatus: [0, 3] })
    assert.equal(check.status, 3)
    assert.match(check.stdout, /unchanged/)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
