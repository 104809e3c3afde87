import { test } from 'node:test'
import assert from 'node:assert/strict'
import { lstat, mkdir, mkdtemp, rm, symlink, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { run } from '../tools/run.js'
import { DEFAULT_SPEC_YAML, parseSpec } from './spec.js'
import {
  canonicalJson,
  clampMtimes,
  deriveIds,
  derivedUuid,
  fixExt4InodeTimes,
  inodeTimeCommands,
  newestPackageEpoch,
  shadowWithLastChange,
  specDigest,
} from './reproducible.js'

const spec = parseSpec(DEFAULT_SPEC_YAML)

test('deriveIds() gives the same identifiers for the same spec and version, others for another spec, version or cache-blind', () => {
  const a = deriveIds(spec, '0.1.0')
  assert.deepEqual(deriveIds(parseSpec(DEFAULT_SPEC_YAML), '0.1.0'), a)
  assert.deepEqual(deriveIds({ ...spec, cache: '/elsewhere' }, '0.1.0'), a, 'the package cache is not an input')
  assert.notEqual(deriveIds({ ...spec, packages: ['htop'] }, '0.1.0').rootUuid, a.rootUuid)
  assert.notEqual(deriveIds(spec, '0.1.1').rootUuid, a.rootUuid)
  assert.match(a.rootUuid, /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
  assert.match(a.espVolumeId, /^[0-9A-F]{4}-[0-9A-F]{4}$/)
  const all = [
    a.rootUuid,
    a.rootHashSeed,
    a.diskGuid.toLowerCase(),
    ...Object.values(a.partitionGuids).map((g) => g.toLowerCase()),
  ]
  assert.equal(new Set(all).size, all.length, 'every identifier is its own')
  assert.notEqual(derivedUuid('x', 'a'), derivedUuid('x', 'b'))
})

test('specDigest() does not depend on key order; canonicalJson() sorts keys at every level and drops undefined', () => {
  assert.equal(
    canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: undefined } }),
    '{"a":{"d":[1,{"y":2,"z":1}]},"b":1}',
  )
  const reordered = Object.fromEntries(Object.entries(spec).reverse()) as typeof spec
  assert.equal(specDigest(reordered), specDigest(spec))
  assert.notEqual(specDigest({ ...spec, size: spec.size === 'fit' ? 1 : spec.size + 1048576 }), specDigest(spec))
})

test('shadowWithLastChange() sets every numeric last-change day to the epoch day and leaves other lines alone', () => {
  const text = 'root:*:20424:0:99999:7:::\n_apt:*:20425:0:99999:7:::\nnoaging:*::0:99999:7:::\n# odd line\n'
  const day = Math.floor(1795897038 / 86400)
  assert.equal(
    shadowWithLastChange(text, 1795897038),
    `root:*:${day}:0:99999:7:::\n_apt:*:${day}:0:99999:7:::\nnoaging:*::0:99999:7:::\n# odd line\n`,
  )
})

test('clampMtimes() sets times newer than the epoch to it, keeps older ones, and does not follow symlinks', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hwimage-clamp-'))
  try {
    await mkdir(join(dir, 'd'))
    await writeFile(join(dir, 'd/new'), 'x')
    await writeFile(join(dir, 'old'), 'y')
    await utimes(join(dir, 'old'), 1000, 1000)
    await symlink('old', join(dir, 'link'))
    const n = await clampMtimes(dir, 5000)
    assert.equal(n, 3, 'd/new, d and link (old is older)')
    assert.equal((await lstat(join(dir, 'd/new'))).mtimeMs, 5000_000)
    assert.equal((await lstat(join(dir, 'd'))).mtimeMs, 5000_000)
    assert.equal((await lstat(join(dir, 'link'))).mtimeMs, 5000_000)
    assert.equal((await lstat(join(dir, 'old'))).mtimeMs, 1000_000, 'the link target is untouched')
    assert.equal((await lstat(dir)).mtimeMs, 5000_000)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('newestPackageEpoch() is the newest changelog mtime under /usr/share/doc, and refuses a tree without one', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hwimage-sde-'))
  try {
    await assert.rejects(newestPackageEpoch(dir))
    for (const [pkg, name, t] of [
      ['a', 'changelog.Debian.gz', 1700000000],
      ['b', 'changelog.gz', 1700000500],
      ['c', 'README', 1800000000],
    ] as const) {
      await mkdir(join(dir, 'usr/share/doc', pkg), { recursive: true })
      await writeFile(join(dir, 'usr/share/doc', pkg, name), '')
      await utimes(join(dir, 'usr/share/doc', pkg, name), t, t)
    }
    assert.equal(await newestPackageEpoch(dir), 1700000500)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('fixExt4InodeTimes() sets ctime and atime of every used inode at an offset; e2fsck finds the file system clean; twice the same bytes', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hwimage-inode-times-'))
  try {
    const tree = join(dir, 'tree')
    await mkdir(join(tree, 'etc'), { recursive: true })
    for (let i = 0; i < 40; i++) await writeFile(join(tree, 'etc', `f${i}`), `file ${i}\n`)
    const offset = 1 << 20
    const make = async (name: string) => {
      const img = join(dir, name)
      await run(['truncate', '-s', '40M', img])
      await run(
        [
          'mkfs.ext4',
          '-F',
          '-q',
          '-b',
          '4096',
          '-U',
          derivedUuid('t', 'u'),
          '-E',
          `offset=${offset},hash_seed=${derivedUuid('t', 'h')}`,
          '-d',
          tree,
          img,
          '8192',
        ],
        { env: { E2FSPROGS_FAKE_TIME: '1700000000' } },
      )
      const n = await fixExt4InodeTimes(img, offset, 1700000000)
      return { img, n }
    }
    await utimes(join(tree, 'etc/f3'), 1600000000, 1600000000)
    const a = await make('a.img')
    // The file's inode changes in between (its ctime moves, its mtime is set back as it was): the images still match.
    await new Promise((r) => setTimeout(r, 1100))
    await utimes(join(tree, 'etc/f3'), 1600000000, 1600000000)
    const b = await make('b.img')
    assert.ok(a.n > 40, `${a.n} inodes set`)
    const stat = (await run(['debugfs', '-R', 'stat /etc/f3', `${a.img}?offset=${offset}`])).stdout
    assert.match(stat, /ctime: 0x6553f100/)
    assert.match(stat, /atime: 0x6553f100/)
    await run(['e2fsck', '-fn', `${a.img}?offset=${offset}`])
    await run(['cmp', a.img, b.img])
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('inodeTimeCommands() skips free inodes and refuses output without the counts', () => {
  const dump = [
    'Inode count:              16',
    'Inodes per group:         8',
    'Group 0: (Blocks 0-7)',
    '  Free inodes: 4-8',
    'Group 1: (Blocks 8-15)',
    '  Free inodes: 10, 12-16',
    '',
  ].join('\n')
  const cmds = inodeTimeCommands(dump, 5)
  const inodes = [...new Set(cmds.map((c) => Number(/<(\d+)>/.exec(c)![1])))]
  assert.deepEqual(inodes, [1, 2, 3, 9, 11])
  assert.ok(cmds.includes('sif <9> ctime @5') && cmds.includes('sif <9> atime @5'))
  assert.throws(() => inodeTimeCommands('nothing', 5))
})
