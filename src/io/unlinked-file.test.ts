import assert from 'node:assert/strict'
import { promises as fsp, readlinkSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import { openUnlinkedFile } from './unlinked-file.js'

for (const where of ['/dev/shm', os.tmpdir()]) {
  for (const noTmpfile of [false, true]) {
    test(`openUnlinkedFile() in ${where}${noTmpfile ? ' without O_TMPFILE' : ''} gives a read-write file with no name`, async () => {
      const dir = await fsp.mkdtemp(path.join(where, 'hwimage-unlinked-'))
      try {
        const fh = await openUnlinkedFile(dir, 'hwimage-spool-', { noTmpfile })
        try {
          assert.deepEqual(await fsp.readdir(dir), [], 'nothing in the directory')
          assert.match(readlinkSync(`/proc/self/fd/${fh.fd}`), / \(deleted\)$/)
          assert.equal((await fh.stat()).nlink, 0)
          await fh.write(Buffer.from('spooled'), 0, 7, 4096)
          const back = Buffer.alloc(7)
          await fh.read(back, 0, 7, 4096)
          assert.equal(back.toString(), 'spooled')
          assert.equal((await fh.stat()).size, 4096 + 7)
        } finally {
          await fh.close()
        }
        assert.deepEqual(await fsp.readdir(dir), [])
      } finally {
        await fsp.rm(dir, { recursive: true, force: true })
      }
    })
  }
}
