// Partitions of a loop device, as paths that open. `partx --add` adds them to the kernel
// (BLKPG, so a loop device needs no partition scanning); the node to open is made here with
// mknod from sysfs's MAJ:MIN, in a directory of the test's own, instead of waiting for
// /dev/loopNpM: a container's static /dev never gets one, and udev may remove and re-add
// it while it handles the change.

import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { run } from '../../src/tools/run.js'

export interface PartitionNodes {
  /** The node of partition `n`, e.g. partition(1) for the root filesystem. */
  partition(n: number): string
  /** Drops the partitions from the kernel and removes the nodes. */
  release(): Promise<void>
}

/** Adds the partitions of `dev` (its table as written) and makes a node for each in `dir`. */
export async function partitionNodes(dev: string, dir: string): Promise<PartitionNodes> {
  // Not `partx --update`: util-linux 2.38 stops it at the partition count (3 here), so
  // partitions 14 and 15 never came (the CI failure this helper fixes). --add walks them all.
  await run(['partx', '--delete', dev], { okStatus: [0, 1] })
  await run(['partx', '--add', dev])
  const name = basename(dev)
  const sys = `/sys/class/block/${name}`
  const nodeDir = await mkdtemp(join(dir, `${name}-partitions-`))
  const nodes = new Map<number, string>()
  for (let attempt = 0; ; attempt++) {
    const parts = (await readdir(sys)).filter((e) => e.startsWith(`${name}p`) && existsSync(join(sys, e, 'partition')))
    if (parts.length > 0) {
      for (const p of parts) {
        const n = Number(readFileSync(join(sys, p, 'partition'), 'utf8'))
        const [major, minor] = readFileSync(join(sys, p, 'dev'), 'utf8')
          .trim()
          .split(':')
        const node = join(nodeDir, p)
        await run(['mknod', node, 'b', major!, minor!])
        nodes.set(n, node)
      }
      break
    }
    if (attempt >= 50)
      throw new Error(`partx --update ${dev} added no partitions (${sys} lists ${(await readdir(sys)).join(' ')})`)
    await new Promise((r) => setTimeout(r, 100))
  }
  return {
    partition(n) {
      const node = nodes.get(n)
      if (!node) throw new Error(`${dev} has no partition ${n} (it has ${[...nodes.keys()].join(', ')})`)
      return node
    },
    async release() {
      await run(['partx', '--delete', dev], { okStatus: [0, 1] })
      await rm(nodeDir, { recursive: true, force: true })
    },
  }
}
