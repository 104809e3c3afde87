// Inventories read from files, by name: a path, or `population` for the device
// population table in ../shared/data/ beside the repository (read there at run time,
// never copied in).

import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { InputError } from '../errors.js'
import { parseInventory, type Inventory } from './inventory.js'

/** The inventory name that stands for the population table. */
export const POPULATION = 'population'

/** Where the population table is: ../shared/data/pci-device-population.md beside the repository. */
export function populationTablePath(): string {
  // src/kernel/inventory-file.ts and dist/kernel/inventory-file.js both sit two levels below the root.
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
  return path.resolve(root, '..', 'shared', 'data', 'pci-device-population.md')
}

/** Reads and parses an inventory file (or the population table); NOT_FOUND when it cannot be read. */
export async function readInventoryFile(name: string): Promise<Inventory> {
  const file = name === POPULATION ? populationTablePath() : name
  const text = await readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new InputError(
      'NOT_FOUND',
      `Cannot read inventory "${file}": ${e.code === 'ENOENT' ? 'no such file' : e.message}`,
    )
  })
  return parseInventory(text, file)
}
