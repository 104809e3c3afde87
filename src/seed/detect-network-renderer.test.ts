import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdir, mkdtemp, rm, symlink, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { debugfsArgv, decideNetworkRenderer, detectNetworkRenderer } from './detect-network-renderer.js'

const set = (...p: string[]) => new Set(p)
const ENI = ['/usr/sbin/ifup', '/usr/sbin/ifdown', '/usr/sbin/ifquery', '/etc/network/interfaces']

test("decideNetworkRenderer() picks eni (version 1) for an ifupdown image, as cloud-init's default priority does", () => {
  const d = decideNetworkRenderer({ files: set(...ENI, '/usr/sbin/netplan'), cloudConfigs: [] })
  assert.equal(d.renderer, 'eni')
  assert.equal(d.networkVersion, 1)
  assert.match(d.reason, /default priority/)
})

test('decideNetworkRenderer() picks netplan (version 2) when ifupdown is absent', () => {
  const d = decideNetworkRenderer({
    files: set('/usr/sbin/netplan', '/usr/sbin/ip', '/usr/bin/systemctl'),
    cloudConfigs: [],
  })
  assert.equal(d.renderer, 'netplan')
  assert.equal(d.networkVersion, 2)
})

test('decideNetworkRenderer() follows system_info.network.renderers, the last cloud.cfg.d file winning', () => {
  const cfg = (r: string) => `system_info:\n  network:\n    renderers: [${r}]\n`
  const d = decideNetworkRenderer({
    files: set(...ENI, '/usr/sbin/netplan'),
    cloudConfigs: [cfg('eni'), 'not: [valid', cfg('netplan, eni')],
  })
  assert.equal(d.renderer, 'netplan')
  assert.match(d.reason, /system_info.network.renderers \[netplan, eni\]/)
})

test('decideNetworkRenderer() needs /etc/network/interfaces for eni, and falls to networkd', () => {
  const d = decideNetworkRenderer({
    files: set('/usr/sbin/ifup', '/usr/sbin/ifdown', '/usr/sbin/ifquery', '/usr/sbin/ip', '/usr/bin/systemctl'),
    cloudConfigs: [],
  })
  assert.equal(d.renderer, 'networkd')
  assert.equal(d.networkVersion, 1)
})

test('decideNetworkRenderer() falls back to version 1 when nothing is found', () => {
  const d = decideNetworkRenderer({ files: set(), cloudConfigs: [] })
  assert.deepEqual([d.renderer, d.networkVersion], ['unknown', 1])
})

test('debugfsArgv() opens the filesystem at a byte offset', () => {
  assert.deepEqual(debugfsArgv('/i.img', 1048576n, 'ls -l /usr/sbin'), [
    'debugfs',
    '-R',
    'ls -l /usr/sbin',
    '/i.img?offset=1048576',
  ])
})

test('detectNetworkRenderer() reads an ext4 filesystem at an offset without mounting it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hwimage-detect-'))
  try {
    const root = join(dir, 'root')
    await mkdir(join(root, 'usr/sbin'), { recursive: true })
    await mkdir(join(root, 'usr/bin'), { recursive: true })
    await mkdir(join(root, 'etc/cloud/cloud.cfg.d'), { recursive: true })
    await symlink('usr/sbin', join(root, 'sbin'))
    for (const f of ['usr/sbin/netplan', 'usr/sbin/ip', 'usr/bin/systemctl']) await writeFile(join(root, f), '')
    await writeFile(join(root, 'etc/cloud/cloud.cfg'), 'users: [default]\n')
    const img = join(dir, 'disk.img')
    await writeFile(img, '')
    await truncate(img, 9 * 1024 * 1024)
    execFileSync('mkfs.ext4', ['-q', '-F', '-E', 'offset=1048576', '-d', root, img, '8M'])
    const d = await detectNetworkRenderer(img, 1048576)
    assert.equal(d.renderer, 'netplan')
    assert.equal(d.networkVersion, 2)
    await writeFile(
      join(root, 'etc/cloud/cloud.cfg.d/90-eni.cfg'),
      'system_info: {network: {renderers: [eni, networkd]}}\n',
    )
    execFileSync('mkfs.ext4', ['-q', '-F', '-E', 'offset=1048576', '-d', root, img, '8M'])
    assert.equal((await detectNetworkRenderer(img, 1048576n)).renderer, 'networkd')
    const wrong = await detectNetworkRenderer(img, 0)
    assert.deepEqual([wrong.renderer, wrong.networkVersion], ['unknown', 1])
    assert.match(wrong.reason, /version 1/)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('detectNetworkRenderer() falls back to version 1 for a file with no partition table', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hwimage-detect-'))
  try {
    const img = join(dir, 'x.img')
    await writeFile(img, new Uint8Array(65536))
    const d = await detectNetworkRenderer(img)
    assert.deepEqual([d.renderer, d.networkVersion], ['unknown', 1])
    assert.match(d.reason, /cannot read the image/)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
