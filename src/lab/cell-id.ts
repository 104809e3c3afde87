// A cell's name: firmware--storage--nic, also its directory under the report's cells/.

import type { Cell } from './covering.js'

/** The id of a cell, safe as a directory name. */
export function cellId(c: Cell): string {
  return `${c.firmware}--${c.storage}--${c.nic}`.replace(/[^\w.+-]/g, '_')
}
