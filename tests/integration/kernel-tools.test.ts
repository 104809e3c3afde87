// The kernel tools on Debian's real generic kernel: downloaded with apt-get into
// the cache (/var/cache/hwimage, or $HWIMAGE_CACHE_DIR) on a fresh machine, reused
// after. Checks analyze against du, the server set against the goals
// (≤ 40 MiB with vmlinuz, ≥ 99% of each storage class and of Net/ethernet), the
// reduced tree with depmod -e, modinfo and modprobe, and bad input through the CLI.

import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { run } from '../../src/tools/run.js'
import { analyzeKernel } from '../../src/kernel/kernel-analyze.js'
import { defaultCacheDir, openKernel, type KernelTree } from '../../src/kernel/kernel-package.js'
import { fetchKernelPackage } from '../../src/kernel/kernel-fetch.js'
import { measureCoverage } from '../../src/kernel/coverage.js'
import { parseInventory } from '../../src/kernel/inventory.js'
import { kernelSystemMap } from '../../src/kernel/kernel-symbols.js'
import { selectServerModules, type ServerModuleSelection } from '../../src/kernel/server-modules.js'
import { LAB_MUST_HAVES } from '../../src/kernel/server-policy.js'
import { writeModuleTree, type WrittenTree } from '../../src/kernel/module-tree-writer.js'
import { CLI } from './fixture.js'

const MiB = 1024 * 1024
const ROOT = resolve(fileURLToPath(import.meta.url), '..', '..', '..')
const POPULATION = resolve(ROOT, '..', 'shared', 'data', 'pci-device-population.md')
const LAB = join(ROOT, 'tests', 'integration', 'fixtures', 'qemu-lab.modalias')
const STORAGE = [
  'Storage/ata',
  'Storage/nvme',
  'Storage/raid',
  'Storage/sas',
  'Storage/scsi',
  'Storage/ide',
  'Storage/other',
]

let deb: string
let tree: KernelTree
let selection: ServerModuleSelection
let written: WrittenTree
let out: string

before(async () => {
  deb = await fetchKernelPackage('linux-image-amd64', { cacheDir: defaultCacheDir() })
  tree = await openKernel(deb)
  selection = await selectServerModules(tree)
  out = await mkdtemp(join(tmpdir(), 'hwimage-server-kernel-'))
  written = await writeModuleTree(tree, new Set(selection.modules), out, { compression: 'xz' })
})
after(async () => {
  if (out) await rm(out, { recursive: true, force: true })
})

/** `du -b -c` over a list of files: the apparent sizes, summed by du itself. */
async function du(files: string[]): Promise<number> {
  const r = await run(['du', '-b', '-c', '--files0-from=-'], { input: files.join('\0') + '\0' })
  const total = r.stdout.trim().split('\n').pop()!
  return Number(total.split('\t')[0])
}

async function filesUnder(dir: string, nameRegex?: string): Promise<string[]> {
  const argv = ['find', dir, '-type', 'f', ...(nameRegex ? ['-regex', nameRegex] : []), '-print0']
  return (await run(argv)).stdout.split('\0').filter(Boolean)
}

test('the generic kernel is the versioned package linux-image-amd64 depends on', () => {
  assert.match(deb, /linux-image-6\.1\.0-\d+-amd64_[^/]+_amd64\.deb$/)
  assert.match(tree.version, /^6\.1\.0-\d+-amd64$/)
  assert.ok(tree.vmlinuzPath)
})

test('analyze totals match du over the unpacked tree', async () => {
  const a = analyzeKernel(tree)
  const modules = await filesUnder(tree.modulesDir, '.*\\.ko')
  assert.equal(a.moduleCount, modules.length)
  assert.equal(a.moduleBytes, await du(modules))
  assert.equal(a.treeBytes, await du(await filesUnder(tree.modulesDir)))
  assert.equal(a.vmlinuzBytes, await du([tree.vmlinuzPath!]))
  assert.equal(a.footprintBytes, a.vmlinuzBytes + a.treeBytes)
  assert.equal(
    a.subsystems.reduce((s, g) => s + g.bytes, 0),
    a.moduleBytes,
  )
  assert.ok(a.footprintBytes > 300 * MiB, `the generic kernel is large (${(a.footprintBytes / MiB).toFixed(1)} MiB)`)
})

test('the server set holds the lab must-haves and every name the policy gives', () => {
  assert.deepEqual(selection.missingFromKernel, [])
  for (const m of LAB_MUST_HAVES) assert.ok(selection.modules.includes(m), `${m} is in the server set`)
  assert.equal(selection.symbolsChecked, true)
})

test('the reduced kernel weighs at most 40 MiB, vmlinuz included, a tenth of the generic one', () => {
  const generic = analyzeKernel(tree).footprintBytes
  const f = written.prune.footprintBytes
  console.log(
    `footprint: server ${(f / MiB).toFixed(2)} MiB (vmlinuz ${(written.prune.vmlinuzBytes / MiB).toFixed(2)} + modules ${(written.prune.treeBytes / MiB).toFixed(2)}), generic ${(generic / MiB).toFixed(2)} MiB, ratio ${(f / generic).toFixed(3)}`,
  )
  assert.ok(f <= 40 * MiB, `server footprint ${(f / MiB).toFixed(2)} MiB`)
  assert.equal(written.prune.kept, selection.modules.length)
})

test('depmod finds no unresolved symbols in the reduced tree', async () => {
  assert.deepEqual(written.unresolved, [])
  // And once more, the plain way, on the written tree itself.
  const map = join(out, 'System.map')
  await writeFile(map, await kernelSystemMap(tree))
  const r = await run(['depmod', '-n', '-e', '-F', map, '-b', out, tree.version])
  assert.doesNotMatch(r.stderr, /needs unknown symbol/)
})

test("compressed modules keep their signature and load through modprobe's indexes", async () => {
  const ahci = join(out, 'lib', 'modules', tree.version, 'kernel', 'drivers', 'ata', 'ahci.ko.xz')
  const packed = await run(['modinfo', '-F', 'signer', ahci])
  const original = await run(['modinfo', '-F', 'signer', join(tree.modulesDir, tree.modules.get('ahci')!.path)])
  assert.ok(packed.stdout.trim().length > 0, 'the compressed module is signed')
  assert.equal(packed.stdout, original.stdout)
  const key = await run(['modinfo', '-F', 'sig_key', ahci])
  assert.match(key.stdout, /^[0-9A-F:]+\n$/)
  const plan = await run([
    'modprobe',
    '-d',
    out,
    '-S',
    tree.version,
    '--show-depends',
    'pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01',
  ])
  assert.match(plan.stdout, /insmod \S+\/libata\.ko\.xz/)
  assert.match(plan.stdout, /insmod \S+\/ahci\.ko\.xz/)
})

test('the server set covers at least 99% of each storage class and of Net/ethernet in the population table', async () => {
  const inv = parseInventory(await readFile(POPULATION, 'utf8'), POPULATION)
  const report = measureCoverage(
    { name: 'server', tree, modules: new Set(selection.modules) },
    { name: 'all', tree, modules: new Set(tree.modules.keys()) },
    [inv],
  )
  const lines: string[] = []
  for (const cls of [...STORAGE, 'Net/ethernet', 'Usb controller']) {
    const c = report.classes.find((x) => x.class === cls)
    assert.ok(c, `${cls} is in the table`)
    lines.push(`${cls}: ${((c.share ?? 0) * 100).toFixed(3)}% (${c.covered}/${c.baselineDriven})`)
    if (cls === 'Usb controller') continue
    assert.ok(c.baselineDriven > 0, `${cls}: the generic kernel drives some of it`)
    assert.ok(c.share !== null && c.share >= 0.99, `${cls}: ${c.covered}/${c.baselineDriven}`)
  }
  console.log(lines.join('\n'))
})

test('the server set drives every device of the QEMU lab', async () => {
  const inv = parseInventory(await readFile(LAB, 'utf8'), LAB)
  const report = measureCoverage(
    { name: 'server', tree, modules: new Set(selection.modules) },
    { name: 'all', tree, modules: new Set(tree.modules.keys()) },
    [inv],
  )
  for (const c of report.classes) {
    if (c.class === 'Bridge') continue // the q35 host bridge needs no driver
    assert.equal(c.covered, c.devices, `${c.class}: ${JSON.stringify(c.notCovered)}`)
  }
  assert.equal(report.classes.find((c) => c.class === 'virtio')?.covered, 3)
})

test('bad input through the CLI: a named error and exit code 2', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hwimage-kernel-bad-'))
  try {
    const notes = join(dir, 'notes.txt')
    await writeFile(notes, 'this is not an inventory\n')
    const junk = join(dir, 'kernel.deb')
    await writeFile(junk, 'not a package')
    const cases: [string[], string, RegExp][] = [
      [['kernel', 'select', deb, '--add', 'e1000x'], 'MODULE_UNKNOWN', /"e1000x"/],
      [['kernel', 'coverage', deb, '--inventory', notes], 'FORMAT_INVENTORY', /notes\.txt/],
      [['kernel', 'analyze', junk], 'FORMAT_KERNEL', /kernel\.deb/],
    ]
    for (const [argv, code, names] of cases) {
      const r = await run([CLI, ...argv], { okStatus: [2] })
      assert.equal(r.status, 2)
      assert.match(r.stderr, new RegExp(`error\\[${code}\\]`))
      assert.match(r.stderr, names)
      assert.equal(r.stdout, '')
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
