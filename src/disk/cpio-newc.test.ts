import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { HwimageError } from '../errors.js'
import { decodeNewcHeader, encodeNewcHeader, encodeNewcTrailer, newcPad, S_IF, type NewcEntry } from './cpio-newc.js'

function entry(name: string, mode: number, fileSize = 0, ino = 1): NewcEntry {
  return {
    name,
    mode,
    ino,
    uid: 0,
    gid: 0,
    nlink: 1,
    mtime: 1_700_000_000,
    fileSize,
    devMajor: 0,
    devMinor: 0,
    rdevMajor: 0,
    rdevMinor: 0,
  }
}

function archive(members: { e: NewcEntry; data?: Uint8Array }[]): Uint8Array {
  const parts: Uint8Array[] = []
  for (const { e, data } of members) {
    parts.push(encodeNewcHeader(e))
    if (data) parts.push(data, new Uint8Array(newcPad(data.length)))
  }
  parts.push(encodeNewcTrailer())
  return Buffer.concat(parts)
}

test('encodeNewcHeader() writes an archive GNU cpio lists and extracts: a directory, a file, a symlink', () => {
  const data = new TextEncoder().encode('#!/bin/sh\necho hi\n')
  const target = new TextEncoder().encode('../bin/busybox')
  const bytes = archive([
    { e: entry('bin', S_IF.dir | 0o755, 0, 1) },
    { e: entry('bin/init', S_IF.reg | 0o755, data.length, 2), data },
    { e: entry('bin/sh', S_IF.lnk | 0o777, target.length, 3), data: target },
  ])
  const dir = mkdtempSync(join(tmpdir(), 'newc-'))
  try {
    const listing = execFileSync('cpio', ['-t', '--quiet'], { input: bytes }).toString()
    assert.deepEqual(listing.trim().split('\n'), ['bin', 'bin/init', 'bin/sh'])
    execFileSync('cpio', ['-i', '-d', '--quiet', '--no-absolute-filenames'], { input: bytes, cwd: dir })
    assert.equal(readFileSync(join(dir, 'bin/init'), 'utf8'), '#!/bin/sh\necho hi\n')
    assert.equal(statSync(join(dir, 'bin/init')).mode & 0o777, 0o755)
    assert.equal(readlinkSync(join(dir, 'bin/sh')), '../bin/busybox')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('encodeNewcHeader() agrees byte for byte with GNU cpio -o -H newc on a character device entry', () => {
  // `cpio -o` reads metadata from the file system; a device node needs no data, so the
  // header for /dev/null rebuilt from its stat fields must be identical.
  const fromCpio = execFileSync('cpio', ['-o', '-H', 'newc', '--quiet'], { input: 'dev/null\n', cwd: '/' })
  const st = statSync('/dev/null')
  const { entry: decoded } = decodeNewcHeader(fromCpio)
  assert.equal(decoded.name, 'dev/null')
  assert.equal(decoded.mode, st.mode)
  assert.equal(decoded.rdevMajor, 1)
  assert.equal(decoded.rdevMinor, 3)
  const ours = encodeNewcHeader(decoded)
  assert.deepEqual(ours, new Uint8Array(fromCpio.subarray(0, ours.length)))
})

test('decodeNewcHeader() reads back what encodeNewcHeader() wrote, data offset 4-byte aligned', () => {
  fc.assert(
    fc.property(
      fc.string({ minLength: 1, maxLength: 40 }).filter((s) => !s.includes('\0')),
      fc.nat(0xffff_ffff),
      fc.nat(0xffff_ffff),
      (name, size, ino) => {
        const e = { ...entry(name, S_IF.reg | 0o644, size, ino) }
        const bytes = encodeNewcHeader(e)
        const { entry: back, dataOffset } = decodeNewcHeader(bytes)
        assert.deepEqual(back, e)
        assert.equal(dataOffset, bytes.length)
        assert.equal(dataOffset % 4, 0)
      },
    ),
  )
})

test('decodeNewcHeader() rejects a wrong magic and a corrupted field with FORMAT_CPIO', () => {
  const good = encodeNewcHeader(entry('init', S_IF.reg | 0o755, 5))
  const badMagic = new Uint8Array(good)
  badMagic[5] = 0x32 // 070702: the CRC variant
  assert.throws(
    () => decodeNewcHeader(badMagic),
    (e: unknown) => e instanceof HwimageError && e.code === 'FORMAT_CPIO',
  )
  const badField = new Uint8Array(good)
  badField[20] = 0x7a // 'z' inside c_mode
  assert.throws(
    () => decodeNewcHeader(badField),
    (e: unknown) => e instanceof HwimageError && e.code === 'FORMAT_CPIO',
  )
  assert.throws(
    () => decodeNewcHeader(good.subarray(0, 100)),
    (e: unknown) => e instanceof HwimageError && e.code === 'FORMAT_CPIO',
  )
})

test('decodeNewcHeader() on random bytes gives only FORMAT_CPIO', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 200 }), (bytes) => {
      const withMagic = new Uint8Array(bytes)
      withMagic.set(new TextEncoder().encode('070701').subarray(0, withMagic.length))
      for (const b of [bytes, withMagic]) {
        try {
          decodeNewcHeader(b)
        } catch (e) {
          assert.ok(e instanceof HwimageError && e.code === 'FORMAT_CPIO', String(e))
        }
      }
    }),
  )
})
