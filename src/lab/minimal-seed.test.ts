import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse } from 'yaml'
import { makeMinimalSeedVolume, minimalSeedFiles } from './minimal-seed.js'
import { run } from '../tools/run.js'

test('minimalSeedFiles() sets the hostname and prints hwimage\'s marker lines from runcmd', () => {
  const f = minimalSeedFiles({ hostname: 'hwimage-demo', instanceId: 'i-1' })
  assert.deepEqual(parse(f['meta-data']), { 'instance-id': 'i-1', 'local-hostname': 'hwimage-demo' })
  assert.ok(f['user-data'].startsWith('#cloud-config\n'))
  const ud = parse(f['user-data'])
  assert.equal(ud.runcmd.length, 1)
  assert.match(ud.runcmd[0][2], /echo "HWIMAGE-READY \$\(hostname\)" > \/dev\/ttyS0/)
  assert.match(ud.runcmd[0][2], /df -B1 \/ \| sed "s\|\^\|HWIMAGE-DF \|" > \/dev\/ttyS0/)
  assert.equal(ud.phone_home, undefined)
})

test('minimalSeedFiles() phones home to the report URL when one is given', () => {
  const ud = parse(minimalSeedFiles({ hostname: 'h', reportUrl: 'http://10.0.2.2:8000/report/$INSTANCE_ID' })['user-data'])
  assert.deepEqual(ud.phone_home, { url: 'http://10.0.2.2:8000/report/$INSTANCE_ID', post: ['instance_id', 'hostname', 'fqdn'], tries: 10 })
})

test('minimalSeedFiles() makes a new instance id each time unless given one', () => {
  assert.notEqual(minimalSeedFiles({ hostname: 'h' })['meta-data'], minimalSeedFiles({ hostname: 'h' })['meta-data'])
})

test('makeMinimalSeedVolume() writes a FAT volume labelled CIDATA that holds both files', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hwimage-seed-'))
  try {
    const vol = join(dir, 'seed.img')
    await makeMinimalSeedVolume(vol, { hostname: 'lab-1', instanceId: 'i-42' })
    assert.equal((await run(['fsck.vfat', '-n', vol])).status, 0)
    assert.match((await run(['mdir', '-i', vol, '::'])).stdout, /Volume in drive : is CIDATA/)
    assert.equal((await run(['mtype', '-i', vol, '::meta-data'])).stdout, minimalSeedFiles({ hostname: 'lab-1', instanceId: 'i-42' })['meta-data'])
    assert.match((await run(['mtype', '-i', vol, '::user-data'])).stdout, /^#cloud-config\nruncmd:/)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
