import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, open, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { installPreparer } from './install-preparer.js'
import { labSeed } from './lab-seed.js'
import { run } from '../tools/run.js'

test("installPreparer() installs the image onto a fresh disk file with the cell's seed partition last", async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hwimage-instprep-'))
  try {
    // A small GPT image: one 8 MiB x86-64 root partition.
    const image = join(dir, 'tiny.img')
    const fh = await open(image, 'w')
    await fh.truncate(16 * 1024 * 1024)
    await fh.close()
    await run(['sgdisk', '-o', '-n', '1:2048:+8M', '-t', '1:8304', image])
    const seed = labSeed({
      hostname: 'lab-7',
      reportUrl: 'http://10.0.2.2:4000/report/bios--ahci--e1000',
      instanceId: 'i-7',
    })
    const disks = await installPreparer({
      image: { path: image, format: 'raw' },
      cell: { firmware: 'bios', storage: 'ahci', nic: 'e1000' },
      workDir: dir,
      seed,
      sizeBytes: 64n * 1024n * 1024n,
    })
    assert.deepEqual(disks, [{ path: join(dir, 'disk.img'), format: 'raw', role: 'boot' }])
    assert.equal((await stat(disks[0]!.path)).size, 64 * 1024 * 1024)
    const table = JSON.parse((await run(['sfdisk', '--json', disks[0]!.path])).stdout).partitiontable
    const last = table.partitions.at(-1)
    assert.equal(last.name, 'cidata')
    assert.equal(last.size * 512, 16 * 1024 * 1024)
    assert.equal((last.start * 512) % (1024 * 1024), 0, 'the seed partition is 1 MiB aligned')
    const vol = `${disks[0]!.path}@@${last.start * 512}`
    assert.match((await run(['mdir', '-i', vol, '::'])).stdout, /Volume in drive : is CIDATA/)
    assert.match((await run(['mtype', '-i', vol, '::meta-data'])).stdout, /local-hostname: lab-7/)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
