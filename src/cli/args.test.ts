import { test } from 'node:test'
import assert from 'node:assert/strict'
import { UsageError } from '../errors.js'
import { commaList, parseFirmware, parseSize, positiveInt, repeatedList, wholeNumber } from './args.js'

const usage = (option: string) => (e: unknown) =>
  e instanceof UsageError && e.code === 'USAGE' && e.message.includes(option)

test('positiveInt() takes a count of 1 or more', () => {
  assert.equal(positiveInt('1', '--jobs'), 1)
  assert.equal(positiveInt('900', '--timeout'), 900)
})

test('positiveInt() rejects 0, negatives and non-integers with a UsageError naming the option', () => {
  for (const bad of ['0', '-1', '1.5', 'x', '']) assert.throws(() => positiveInt(bad, '--depth'), usage('--depth'), bad)
  assert.throws(() => positiveInt('0', '--memory'), {
    message: 'Cannot parse --memory: "0" is not a positive whole number',
  })
})

test('wholeNumber() takes 0 but rejects negatives and non-integers', () => {
  assert.equal(wholeNumber('0', '--top'), 0)
  for (const bad of ['-1', '2.5', 'many']) assert.throws(() => wholeNumber(bad, '--top'), usage('--top'), bad)
})

test('parseSize() reads bytes with binary suffixes and rejects other text', () => {
  assert.equal(parseSize('4096', '--size'), 4096n)
  assert.equal(parseSize('20G', '--disk-size'), 20n << 30n)
  assert.equal(parseSize('1.5GiB', '--disk-size'), 3n << 29n)
  assert.equal(parseSize('512m', '--size'), 512n << 20n)
  assert.throws(() => parseSize('20 gigs', '--disk-size'), usage('--disk-size'))
})

test('commaList() trims, drops repeats and refuses an empty list', () => {
  assert.deepEqual(commaList(' ahci, nvme,ahci,', '--storage'), ['ahci', 'nvme'])
  assert.throws(() => commaList(' , ', '--nic'), usage('--nic'))
})

test('repeatedList() flattens repeated and comma-separated values', () => {
  assert.deepEqual(repeatedList(['a,b', ' c ']), ['a', 'b', 'c'])
  assert.deepEqual(repeatedList(undefined), [])
})

test('parseFirmware() takes bios, uefi and uefi-sb only', () => {
  assert.equal(parseFirmware('uefi-sb'), 'uefi-sb')
  assert.throws(
    () => parseFirmware('coreboot'),
    (e: unknown) => e instanceof UsageError && /"coreboot".*bios, uefi, uefi-sb/.test(e.message),
  )
})
