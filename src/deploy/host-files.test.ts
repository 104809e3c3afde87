import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mergedPath, parseLdd } from './host-files.js'

test('parseLdd() names every library of sgdisk as ldd resolves it, the loader included', () => {
  const libs = parseLdd(execFileSync('ldd', ['/usr/sbin/sgdisk']).toString())
  assert.ok(libs.some((l) => /\/libc\.so\.6$/.test(l)))
  assert.ok(libs.some((l) => /ld-linux-x86-64\.so\.2$/.test(l)))
  assert.ok(!libs.some((l) => l.includes('vdso')))
})

test('parseLdd() refuses a library ldd did not find', () => {
  assert.throws(
    () => parseLdd('\tlibmissing.so.1 => not found\n'),
    (e: unknown) => (e as { code?: string }).code === 'TOOL_MISSING',
  )
})

test('mergedPath() puts /lib, /bin, /sbin and /lib64 under usr/', () => {
  assert.equal(mergedPath('/lib/x86_64-linux-gnu/libc.so.6'), 'usr/lib/x86_64-linux-gnu/libc.so.6')
  assert.equal(mergedPath('/sbin/wipefs'), 'usr/sbin/wipefs')
  assert.equal(mergedPath('/usr/bin/zstd'), 'usr/bin/zstd')
  assert.equal(mergedPath('/lib64/ld-linux-x86-64.so.2'), 'usr/lib64/ld-linux-x86-64.so.2')
})
