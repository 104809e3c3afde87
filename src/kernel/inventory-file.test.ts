import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { InputError } from '../errors.js'
import { populationTablePath, readInventoryFile } from './inventory-file.js'

test('populationTablePath() is ../shared/data/ beside the repository', () => {
  const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
  assert.equal(populationTablePath(), path.join(path.dirname(repo), 'shared', 'data', 'pci-device-population.md'))
})

test('readInventoryFile() reads and recognises an inventory file', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hwimage-inv-'))
  try {
    const file = path.join(dir, 'modalias.txt')
    await fs.writeFile(file, 'pci:v000010ECd00008168sv00001AF4sd00001100bc02sc00i00\n')
    const inv = await readInventoryFile(file)
    assert.equal(inv.format, 'modalias')
    assert.equal(inv.source, file)
    assert.equal(inv.devices.length, 1)
  } finally {
    await fs.rm(dir, { recursive: true, force: true })
  }
})

test('readInventoryFile() says NOT_FOUND for a file that is not there', async () => {
  await assert.rejects(
    readInventoryFile('/nonexistent/lspci.txt'),
    (e: unknown) =>
      e instanceof InputError && e.code === 'NOT_FOUND' && /"\/nonexistent\/lspci\.txt": no such file/.test(e.message),
  )
})
