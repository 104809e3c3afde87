import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { HwimageError } from '../errors.js'
import { MachineStore } from './state/store.js'
import { grubConfigName, syncMachineGrubConfig, syncTftpTree, type TftpTreeOptions } from './tftp-tree.js'

const MAC = '52:54:00:00:00:01'
let dir: string
let store: MachineStore
let o: TftpTreeOptions
before(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hwimage-tftp-'))
  await fsp.writeFile(path.join(dir, 'shim'), 'shim')
  await fsp.writeFile(path.join(dir, 'grub'), 'grub')
  store = MachineStore.open(path.join(dir, 'state'))
  store.syncConfigured([{ mac: MAC, name: 'n1', image: 'default', diskHints: [] }])
  o = {
    root: path.join(dir, 'tftp'),
    publicUrl: 'http://10.0.2.2:8080',
    shim: path.join(dir, 'shim'),
    grub: path.join(dir, 'grub'),
  }
})
after(async () => {
  store.close()
  await fsp.rm(dir, { recursive: true, force: true })
})
const cfg = () => fsp.readFile(path.join(o.root, grubConfigName(MAC)), 'utf8')

test('grubConfigName() is grub/grub.cfg-<mac with dashes>, as GRUB looks it up', () => {
  assert.equal(grubConfigName(MAC), 'grub/grub.cfg-52-54-00-00-00-01')
})

test('the per-MAC GRUB config keeps its token while it is valid, gets a new one after redeploy, says exit once installed, goes with the machine', async () => {
  await syncTftpTree(store, o)
  assert.equal(await fsp.readFile(path.join(o.root, 'shimx64.efi'), 'utf8'), 'shim')
  assert.equal(await fsp.readFile(path.join(o.root, 'grubx64.efi'), 'utf8'), 'grub')
  const first = /hwimage\.token=(\S+)/.exec(await cfg())![1]!
  assert.equal(store.checkToken(MAC, first), 'ok')
  assert.equal(await syncMachineGrubConfig(store, o, MAC), 'kept')
  assert.match(
    await cfg(),
    new RegExp(`hwimage\\.token=${first}\\b`),
    'a machine between two TFTP reads keeps its token',
  )
  store.redeploy(MAC)
  assert.equal(await syncMachineGrubConfig(store, o, MAC), 'deploy')
  const second = /hwimage\.token=(\S+)/.exec(await cfg())![1]!
  assert.notEqual(second, first)
  store.recordEvent(MAC, 'installed', {})
  assert.equal(await syncMachineGrubConfig(store, o, MAC), 'local')
  assert.doesNotMatch(await cfg(), /token|linux/)
  store.remove(MAC)
  assert.equal(await syncMachineGrubConfig(store, o, MAC), 'removed')
  await assert.rejects(cfg(), { code: 'ENOENT' })
})

test('a shim that cannot be read is TOOL_MISSING', async () => {
  await assert.rejects(
    syncTftpTree(store, { ...o, shim: '/usr/lib/shim/shimx64.efi.signed.missing' }),
    (e: unknown) => e instanceof HwimageError && e.code === 'TOOL_MISSING',
  )
})
