import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parse } from 'yaml'
import { consoleMarkersCloudConfig, labSeed, withConsoleMarkers } from './lab-seed.js'
import { parseSeed } from '../seed/seed-schema.js'
import { seedFiles } from '../seed/seed-files.js'

/** The text of a seed file, with any base64 MIME parts decoded. */
const text = (files: { path: string; bytes: Uint8Array }[], name: string) => {
  const raw = rawText(files, name)
  const parts = raw
    .split(/\n\n/)
    .map((block) =>
      /^[A-Za-z0-9+/=\n]+$/.test(block.split('\n--')[0]!)
        ? Buffer.from(block.split('\n--')[0]!, 'base64').toString('utf8')
        : block,
    )
  return parts.join('\n\n')
}
const rawText = (files: { path: string; bytes: Uint8Array }[], name: string) =>
  new TextDecoder().decode(files.find((f) => f.path === name)!.bytes)

test('consoleMarkersCloudConfig() prints the ready marker and df lines on the serial console', () => {
  const script = (consoleMarkersCloudConfig().runcmd as string[][])[0]![2]!
  assert.match(script, /echo "HWIMAGE-READY \$\(hostname\)" > \/dev\/ttyS0/)
  assert.match(script, /df -B1 \/ \| sed "s\|\^\|HWIMAGE-DF \|" > \/dev\/ttyS0/)
})

test('labSeed() sets the hostname, the markers and the report URL in the NoCloud files', () => {
  const seed = labSeed({ hostname: 'lab-1', reportUrl: 'http://10.0.2.2:4567/report/cell-1', instanceId: 'i-1' })
  assert.equal(seed.hostname, 'lab-1')
  assert.deepEqual(seed.report, { url: 'http://10.0.2.2:4567/report/cell-1' })
  const files = seedFiles(seed).files
  assert.equal(parse(text(files, 'meta-data'))['local-hostname'], 'lab-1')
  assert.match(text(files, 'user-data'), /HWIMAGE-READY/)
  assert.match(text(files, 'vendor-data'), /http:\/\/10\.0\.2\.2:4567\/report\/cell-1/)
})

test('withConsoleMarkers() adds the markers as vendor-data and leaves a seed with its own alone', () => {
  const plain = parseSeed('hostname: web-1\n')
  assert.match(withConsoleMarkers(plain).vendorData!, /^#cloud-config\nruncmd:/)
  const own = parseSeed('hostname: web-1\nvendor_data: "#cloud-config\\n{}"\n')
  assert.equal(withConsoleMarkers(own), own)
})
