// Which cells of the firmware × storage × NIC matrix to boot. `covering`: the
// fewest cells in which every firmware, every storage controller and every NIC
// appears at least once, using only cells a firmware can boot; `all`: every cell.
//
// The NIC has no constraint, so the problem is a minimum edge cover of the
// bipartite graph firmware—storage whose edges are the applicable pairs (Gallai:
// its size is |vertices| − |maximum matching|), padded to at least one cell per NIC.
// The maximum matching is found with augmenting paths (Kuhn), which is exact.

/** One boot: a firmware, a storage controller and a NIC. */
export interface Cell<F extends string = string> {
  firmware: F
  storage: string
  nic: string
}

/** The dimensions of a matrix and which firmware can boot from which controller. */
export interface MatrixAxes<F extends string = string> {
  firmwares: readonly F[]
  storages: readonly string[]
  nics: readonly string[]
  applicable: (firmware: F, storage: string) => boolean
}

/** Every firmware × storage × NIC cell, applicable or not, in axis order. */
export function allCells<F extends string>(axes: MatrixAxes<F>): Cell<F>[] {
  return axes.firmwares.flatMap((firmware) =>
    axes.storages.flatMap((storage) => axes.nics.map((nic) => ({ firmware, storage, nic }))),
  )
}

/** The smallest set of applicable cells covering every firmware, storage and NIC that any applicable cell can cover. */
export function coveringCells<F extends string>(axes: MatrixAxes<F>): Cell<F>[] {
  const { firmwares, storages, nics, applicable } = axes
  if (nics.length === 0) return []
  const edges = (f: F) => storages.filter((s) => applicable(f, s))
  const coverableF = firmwares.filter((f) => edges(f).length > 0)
  const coverableS = storages.filter((s) => firmwares.some((f) => applicable(f, s)))

  // Maximum matching firmware → storage (Kuhn's augmenting paths).
  const matchOfS = new Map<string, F>()
  const tryAugment = (f: F, seen: Set<string>): boolean => {
    for (const s of edges(f)) {
      if (seen.has(s)) continue
      seen.add(s)
      const other = matchOfS.get(s)
      if (other === undefined || tryAugment(other, seen)) {
        matchOfS.set(s, f)
        return true
      }
    }
    return false
  }
  for (const f of coverableF) tryAugment(f, new Set())

  // Edge cover: the matching, plus one edge for each vertex it leaves uncovered.
  const pairs: [F, string][] = coverableS.filter((s) => matchOfS.has(s)).map((s) => [matchOfS.get(s)!, s])
  const uses = new Map<F, number>(coverableF.map((f) => [f, pairs.filter(([pf]) => pf === f).length]))
  // The most constrained controllers first, so the flexible ones can even out the
  // firmwares (a report that boots each firmware about as often is more telling).
  const firmwaresFor = (s: string) => firmwares.filter((x) => applicable(x, s)).length
  const unmatched = coverableS.filter((s) => !matchOfS.has(s)).sort((a, b) => firmwaresFor(a) - firmwaresFor(b))
  for (const s of unmatched) {
    const f = firmwares.filter((x) => applicable(x, s)).sort((a, b) => uses.get(a)! - uses.get(b)!)[0]!
    pairs.push([f, s])
    uses.set(f, uses.get(f)! + 1)
  }
  for (const f of coverableF) {
    if (pairs.some(([pf]) => pf === f)) continue
    pairs.push([f, edges(f)[0]!])
  }

  if (pairs.length === 0) return []
  // More NICs than pairs: repeat applicable pairs not used yet, then any.
  const spare = firmwares
    .flatMap((f) => edges(f).map((s) => [f, s] as [F, string]))
    .filter(([f, s]) => !pairs.some(([pf, ps]) => pf === f && ps === s))
  for (let i = 0; pairs.length < nics.length; i++) pairs.push(spare.shift() ?? pairs[i]!)

  // Keep the firmware order of the axes, then storage order, for a stable report.
  pairs.sort(
    (a, b) => storages.indexOf(a[1]) - storages.indexOf(b[1]) || firmwares.indexOf(a[0]) - firmwares.indexOf(b[0]),
  )
  return pairs.map(([firmware, storage], i) => ({ firmware, storage, nic: nics[i % nics.length]! }))
}
