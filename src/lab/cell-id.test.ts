import { test } from 'node:test'
import assert from 'node:assert/strict'
import { cellId } from './cell-id.js'

test('cellId() names a cell as firmware--storage--nic, safe for a directory', () => {
  assert.equal(cellId({ firmware: 'uefi-sb', storage: 'virtio-blk', nic: 'e1000' }), 'uefi-sb--virtio-blk--e1000')
  assert.equal(cellId({ firmware: 'bios', storage: 'a/b c', nic: 'x' }), 'bios--a_b_c--x')
})
