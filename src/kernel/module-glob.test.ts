import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { globMatches, globToRegExp } from './module-glob.js'

test('globMatches() follows fnmatch for *, ? and bracket expressions', () => {
  assert.ok(globMatches('pci:v00008086d*sv*', 'pci:v00008086d000010D3sv00001AF4'))
  assert.ok(!globMatches('pci:v00008086d*', 'pci:v000010ECd00008168'))
  assert.ok(globMatches('usb:v0BDAp8153d[0-2]*', 'usb:v0BDAp8153d1000dc00'))
  assert.ok(!globMatches('usb:v0BDAp8153d[0-2]*', 'usb:v0BDAp8153d3000dc00'))
  assert.ok(globMatches('dmi:*svn[!A-Z]ujitsu*', 'dmi:bvnX:svnfujitsu:pn'))
  assert.ok(!globMatches('dmi:*svn[!a-z]ujitsu*', 'dmi:bvnX:svnfujitsu:pn'))
  assert.ok(globMatches('acpi*:PNP0A0?:*', 'acpi:PNP0A08:'))
})

test('globMatches() lets * cross slashes and treats a backslash as a quote', () => {
  assert.ok(globMatches('of:N*T*', 'of:Nfoo/barT'))
  assert.ok(globMatches('a\\*b', 'a*b'))
  assert.ok(!globMatches('a\\*b', 'axb'))
})

test('globToRegExp() takes a [ with no closing ] literally', () => {
  assert.ok(globToRegExp('x[y').test('x[y'))
})

test('a glob made of literal characters matches exactly itself', () => {
  fc.assert(
    fc.property(
      fc.string({ unit: fc.constantFrom('a', 'Z', '0', ':', '.', '/', '-', '(', '$', '^', '+', '{') }),
      (s) => {
        assert.ok(globMatches(s, s))
        assert.ok(!globMatches(s, s + 'x'))
      },
    ),
  )
})
