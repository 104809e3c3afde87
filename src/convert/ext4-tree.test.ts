import assert from 'node:assert/strict'
import { test } from 'node:test'
import { debugfsQuote, parseDeviceNumbers, parseEaList, parseLsP, splitAnswers } from './ext4-tree.js'

test('parseLsP() reads debugfs ls -p lines, skipping . and ..', () => {
  const text = '/12/040755/0/0/.//\n/2/040755/0/0/..//\n/13/020644/0/0/null/0/\n/14/100644/0/5/a b/3/\n'
  assert.deepEqual(parseLsP('/dev', text), [
    { path: '/dev/null', inode: 13, mode: 0o020644 },
    { path: '/dev/a b', inode: 14, mode: 0o100644 },
  ])
  assert.deepEqual(parseLsP('/', '/11/040700/0/0/lost+found//\n'), [{ path: '/lost+found', inode: 11, mode: 0o040700 }])
})

test('splitAnswers() cuts debugfs -f output at each echoed request', () => {
  assert.deepEqual(splitAnswers('debugfs: ls -p /\n/2/a\n\ndebugfs: stat <2>\nInode: 2\n'), ['/2/a\n\n', 'Inode: 2\n'])
  assert.deepEqual(splitAnswers('debugfs: ea_list <5>\ndebugfs: ea_list <6>\n'), ['', ''])
})

test("parseEaList() names the attributes in both of debugfs' value forms", () => {
  const text =
    'Extended attributes:\n  security.capability (20) = 00 00 00 02 00 20 00 00\n  user.note = "hello" (5)\n  system.data (0)\n'
  assert.deepEqual(parseEaList(text), ['security.capability', 'user.note'])
  assert.deepEqual(parseEaList(''), [])
})

test("parseDeviceNumbers() reads a device node's major and minor from stat", () => {
  assert.deepEqual(parseDeviceNumbers('Device major/minor number: 01:03 (hex 01:03)\n'), { major: 1, minor: 3 })
  assert.equal(parseDeviceNumbers('Inode: 12   Type: regular\n'), undefined)
})

test('debugfsQuote() quotes a path and refuses what debugfs cannot be told', () => {
  assert.equal(debugfsQuote('/usr/share/a b'), '"/usr/share/a b"')
  assert.throws(() => debugfsQuote('/a"b'), /quote or a newline/)
})
