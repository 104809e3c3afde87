import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { FormatError } from '../errors.js'
import {
  compareSerials,
  decodeIndex,
  decodeProducts,
  encodeDoc,
  expandedFields,
  type IndexDoc,
  isRfc2822,
  isSafePath,
  type ProductsDoc,
  rfc2822,
  signedIndex,
  signedPath,
} from './simplestreams.js'

const SHA = 'a'.repeat(64)
const products = (): ProductsDoc => ({
  format: 'products:1.0',
  content_id: 'org.hwimage:images',
  datatype: 'image-ids',
  updated: 'Wed, 02 Dec 2026 10:27:20 +0000',
  products: {
    'org.hwimage:debian:12:amd64:server': {
      arch: 'amd64',
      versions: {
        '20261202': {
          kernel_version: '6.1.0-57-amd64',
          items: { zst: { ftype: 'img.zst', path: 'images/x/20261202/a.img.zst', sha256: SHA, size: 10 } },
        },
      },
    },
  },
})
const index = (): IndexDoc => ({
  format: 'index:1.0',
  updated: 'Wed, 02 Dec 2026 10:27:20 +0000',
  index: {
    'org.hwimage:images': {
      path: 'streams/v1/org.hwimage:images.json',
      format: 'products:1.0',
      datatype: 'image-ids',
      updated: 'Wed, 02 Dec 2026 10:27:20 +0000',
      products: ['org.hwimage:debian:12:amd64:server'],
    },
  },
})

const refused = (f: () => unknown, message: RegExp) =>
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof FormatError)
    assert.equal(e.code, 'FORMAT_CATALOG')
    assert.match(e.message, message)
    return true
  })

test('rfc2822() writes the form simplestreams writes (weekday, two-digit day, +0000)', () => {
  assert.equal(rfc2822(new Date('2026-12-02T10:27:20.663Z')), 'Wed, 02 Dec 2026 10:27:20 +0000')
  assert.equal(rfc2822(new Date('2024-02-29T00:00:05Z')), 'Thu, 29 Feb 2024 00:00:05 +0000')
})

test('isRfc2822() accepts every rfc2822() output and refuses a wrong weekday or ISO 8601', () => {
  fc.assert(
    fc.property(fc.date({ min: new Date('1970-01-01'), max: new Date('2200-01-01'), noInvalidDate: true }), (d) =>
      isRfc2822(rfc2822(d)),
    ),
  )
  assert.equal(isRfc2822('Tue, 02 Dec 2026 10:27:20 +0000'), false)
  assert.equal(isRfc2822('2026-12-02T10:27:20Z'), false)
  assert.equal(isRfc2822('Wed, 2 Dec 2026 10:27:20 GMT'), false)
})

test('decodeProducts(encodeDoc(x)) is x, and the JSON is indented by one space', () => {
  const text = encodeDoc(products())
  assert.match(text, /^\{\n "format": "products:1\.0",\n/)
  assert.deepEqual(decodeProducts(text, 'p'), products())
  assert.deepEqual(decodeIndex(encodeDoc(index()), 'i'), index())
})

test('decodeIndex() refuses a missing index, another format, an entry without a path or with an absolute one', () => {
  refused(() => decodeIndex('{"format":"index:1.0"}', 'i'), /"index" is missing/)
  refused(() => decodeIndex(encodeDoc({ ...index(), format: 'index:2.0' } as never), 'i'), /expected "index:1\.0"/)
  const noPath = index() as unknown as { index: Record<string, Record<string, unknown>> }
  delete noPath.index['org.hwimage:images']!.path
  refused(() => decodeIndex(JSON.stringify(noPath), 'i'), /"path" is missing/)
  const abs = index()
  abs.index['org.hwimage:images']!.path = '/etc/passwd'
  refused(() => decodeIndex(encodeDoc(abs), 'i'), /not a relative path/)
  refused(() => decodeIndex('{"format":', 'i'), /Cannot parse i/)
  refused(() => decodeIndex(encodeDoc({ ...index(), updated: '2026-12-02' }), 'i'), /not an RFC 2822 date/)
})

test('decodeProducts() refuses an item path that leaves the mirror, a bad sha256 or size, a missing content_id', () => {
  const item = (p: ProductsDoc) => p.products['org.hwimage:debian:12:amd64:server']!.versions['20261202']!.items.zst!
  for (const bad of ['../../etc/passwd', 'images/../../x', 'http://evil/x', '']) {
    const p = products()
    item(p).path = bad
    refused(() => decodeProducts(encodeDoc(p), 'p'), /"path"/)
  }
  const sha = products()
  item(sha).sha256 = 'A'.repeat(64)
  refused(() => decodeProducts(encodeDoc(sha), 'p'), /"sha256"/)
  const size = products()
  ;(item(size) as { size: unknown }).size = '10'
  refused(() => decodeProducts(encodeDoc(size), 'p'), /"size"/)
  const noId = products() as Partial<ProductsDoc>
  delete noId.content_id
  refused(() => decodeProducts(JSON.stringify(noId), 'p'), /"content_id"/)
  const noItems = products()
  delete (noItems.products['org.hwimage:debian:12:amd64:server']!.versions['20261202'] as { items?: unknown }).items
  refused(() => decodeProducts(encodeDoc(noItems), 'p'), /"items" is missing/)
})

test('a corrupted byte of a products file gives FORMAT_CATALOG or a document, never a TypeError', () => {
  const text = encodeDoc(products())
  fc.assert(
    fc.property(fc.nat(text.length - 1), fc.integer({ min: 32, max: 126 }), (at, ch) => {
      const broken = text.slice(0, at) + String.fromCharCode(ch) + text.slice(at + 1)
      try {
        decodeProducts(broken, 'p')
      } catch (e) {
        assert.ok(e instanceof FormatError, String(e))
      }
    }),
  )
})

test('signedIndex() points every products path at the .sjson; signedPath() leaves other names alone', () => {
  assert.equal(signedIndex(index()).index['org.hwimage:images']!.path, 'streams/v1/org.hwimage:images.sjson')
  assert.equal(index().index['org.hwimage:images']!.path, 'streams/v1/org.hwimage:images.json')
  assert.equal(signedPath('streams/v1/index.json'), 'streams/v1/index.sjson')
  assert.equal(signedPath('a.sjson'), 'a.sjson')
})

test('compareSerials() orders YYYYMMDD[.N] with N as a number; isSafePath() refuses dot segments', () => {
  assert.deepEqual(['20261202.10', '20261201', '20261202.2', '20261202'].sort(compareSerials), [
    '20261201',
    '20261202',
    '20261202.2',
    '20261202.10',
  ])
  assert.equal(isSafePath('images/debian/12/amd64/server/20261202/x.img.zst'), true)
  for (const p of ['./x', 'a//b', 'a/./b', 'a\\b', 'a/..']) assert.equal(isSafePath(p), false, p)
})

test("expandedFields() carries the product's fields down to a version, the version's winning", () => {
  const p = products().products['org.hwimage:debian:12:amd64:server']!
  p.kernel_version = 'old'
  assert.deepEqual(expandedFields(p, p.versions['20261202']!), { arch: 'amd64', kernel_version: '6.1.0-57-amd64' })
})
