// Reproducible builds (issue 14, docs/build.md "Reproducible builds"): the default spec
// built once more, from the warm package cache, into a temporary directory gives the
// same bytes as the image `make test-images` built — every output file's SHA-256 — and
// a manifest.json that differs only in `build` (seconds, date, host). One extra build
// (2–3 minutes on the 2-core machine), in `make test` as the issue asks: the boots it
// saved (first-boot's Secure Boot boot, folded into the network deploy) pay for it.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { Manifest } from '../../src/build/manifest.js'
import { run } from '../../src/tools/run.js'
import { CLI, testImage } from './fixture.js'

const image = testImage()

test('the default spec built again is bit-identical to the test image: .img, .img.zst, .img.bmap, .qcow2; the manifest differs only in build', async () => {
  assert.ok(
    image.manifest.inputs,
    'the test image was built by an hwimage that records its inputs (rebuild it: make test-images)',
  )
  assert.equal(
    image.manifest.spec.name,
    'debian-12-server-amd64',
    'HWIMAGE_TEST_IMAGE_DIR holds the default spec (the build below uses it)',
  )
  const dir = await mkdtemp('/var/tmp/hwimage-repro-')
  try {
    const started = Date.now()
    const out = join(dir, 'again')
    await run([CLI, 'build', '-o', out], { inheritStderr: true })
    const seconds = Math.round((Date.now() - started) / 1000)
    const again = JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8')) as Manifest
    const sums = (d: string) => readFile(join(d, 'SHA256SUMS'), 'utf8')
    const first = await sums(image.dir)
    const second = await sums(out)
    console.log(`second build: ${seconds} s\nfirst:\n${first}second:\n${second}`)
    // Every file SHA256SUMS lists, including the raw image, checked against the files themselves.
    await run(['sha256sum', '--quiet', '-c', join(image.dir, 'SHA256SUMS')], { cwd: out })
    assert.equal(second, first)
    assert.deepEqual(
      again.files.map((f) => f.name).sort(),
      ['.img', '.img.bmap', '.img.zst', '.qcow2'].map((s) => `${image.manifest.name}${s}`).sort(),
    )
    const { build: b1, ...rest1 } = image.manifest
    const { build: b2, ...rest2 } = again
    assert.deepEqual(rest2, rest1)
    assert.notEqual(b2.date, b1.date, 'two builds, not one read twice')
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
