import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { planLayout, MiB } from './layout.js'
import { InputError } from '../errors.js'

test('planLayout() places 14 BIOS boot, 15 ESP and 1 root last, 1 MiB aligned', () => {
  const l = planLayout({ size: 2048 * MiB, rootSize: 'fill', contentBytes: 900 * MiB, inodes: 40000 })
  assert.deepEqual(
    l.partitions.map((p) => p.number),
    [14, 15, 1],
  )
  assert.equal(l.partitions[0]!.offset, MiB)
  const root = l.partitions[2]!
  assert.equal(root.offset + root.size, l.imageBytes - MiB, 'root ends 1 MiB before the end (backup GPT)')
  assert.equal(l.rootFsBytes, root.size)
})

test('planLayout() keeps every partition aligned and in order for any fitting input', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 4000 }),
      fc.integer({ min: 100, max: 200000 }),
      fc.boolean(),
      (contentMiB, inodes, fit) => {
        const l = planLayout({
          size: fit ? 'fit' : 8192 * MiB,
          rootSize: fit ? 'fit' : 'fill',
          contentBytes: contentMiB * MiB,
          inodes,
        })
        let end = MiB
        for (const p of l.partitions) {
          assert.equal(p.offset % MiB, 0)
          assert.equal(p.size % MiB, 0)
          assert.ok(p.offset >= end, 'no overlap')
          end = p.offset + p.size
        }
        assert.ok(end <= l.imageBytes - MiB)
        assert.ok(l.rootFsBytes >= contentMiB * MiB)
      },
    ),
  )
})

test('planLayout() rejects an image size too small for the content, naming "size"', () => {
  assert.throws(
    () => planLayout({ size: 1024 * MiB, rootSize: 'fill', contentBytes: 1500 * MiB, inodes: 1000 }),
    (e: unknown) => {
      assert.ok(e instanceof InputError)
      assert.match(e.message, /field "size"/)
      return true
    },
  )
})

test('planLayout() rejects a root size too small for the content, naming "root_size"', () => {
  assert.throws(
    () => planLayout({ size: 'fit', rootSize: 500 * MiB, contentBytes: 800 * MiB, inodes: 1000 }),
    /field "root_size"/,
  )
})
