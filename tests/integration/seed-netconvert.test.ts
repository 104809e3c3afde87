// Seeds read by Debian's own cloud-init 22.4.2, in a throwaway chroot: the datasource
// code reads the seed files (NoCloud and ConfigDrive, from the seed directory instead
// of a mounted volume), user-data and vendor-data are consumed and merged the way the
// network stage does it, and the network config is rendered with `cloud-init devel
// net-convert` (ENI, networkd) and `netplan generate`. Nothing is applied to the host:
// no stage runs, no hostname or network is set.
//
// The chroot comes from a tarball made once with mmdebstrap (variant apt + cloud-init
// + netplan.io) and cached in /var/cache/hwimage (or $HWIMAGE_CACHE_DIR).

import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { after, before, test } from 'node:test'
import { promisify } from 'node:util'
import { renderNetworkConfigV1, renderNetworkConfigV2 } from '../../src/seed/network-config.js'
import { seedFiles, type SeedFilesOptions } from '../../src/seed/seed-files.js'
import { parseSeed, type Seed } from '../../src/seed/seed-schema.js'

const pexec = promisify(execFile)
const CACHE = process.env.HWIMAGE_CACHE_DIR ?? '/var/cache/hwimage'
const TARBALL = join(CACHE, 'cloud-init-bookworm.tar')
let root = ''

/** Builds the cached chroot tarball once (about a minute against Debian's mirror). */
async function ensureTarball(): Promise<void> {
  if (existsSync(TARBALL)) return
  await mkdir(CACHE, { recursive: true })
  const partial = `${TARBALL}.partial.tar`
  await pexec('mmdebstrap', ['--variant=apt', '--include=cloud-init,netplan.io', 'bookworm', partial], {
    maxBuffer: 64 * 1024 * 1024,
  })
  await rename(partial, TARBALL)
}

before(async () => {
  await ensureTarball()
  root = await mkdtemp(join(tmpdir(), 'hwimage-cloud-init-root-'))
  await pexec('tar', ['-C', root, '-xf', TARBALL])
  await writeFile(join(root, 'root/harness.py'), HARNESS)
  const { stdout } = await pexec('chroot', [root, 'dpkg-query', '-W', '-f', '${Version}', 'cloud-init'])
  assert.match(stdout, /^22\.4\.2/, 'the chroot must have Debian 12 cloud-init 22.4.2')
})

after(async () => {
  if (root) await rm(root, { recursive: true, force: true })
})

// Mirrors cloud-init's local then network stage up to consuming user-data and vendor-data.
const HARNESS = `
import json, os, shutil, sys
from cloudinit import sources, stages
from cloudinit.settings import PER_INSTANCE

fmt = sys.argv[1]
macs = json.loads(sys.argv[2])
for p in ("/var/lib/cloud/instances", "/var/lib/cloud/instance", "/var/lib/cloud/data"):
    if os.path.islink(p):
        os.unlink(p)
    else:
        shutil.rmtree(p, ignore_errors=True)
with open("/etc/cloud/cloud.cfg.d/99-hwimage-test.cfg", "w") as f:
    f.write("datasource_list: [%s]\\n" % ("ConfigDrive" if fmt == "configdrive" else "NoCloud"))
init = stages.Init(ds_deps=[sources.DEP_FILESYSTEM])
init.read_cfg()
init.initialize()
ds = init.fetch(existing="trust")
if hasattr(ds, "known_macs"):
    ds.known_macs = macs  # ConfigDrive looks NICs up in /sys otherwise
init.instancify()
init.update()
init.consume_data(PER_INSTANCE)
init._reset()
cfg = init.cfg
def ls(d):
    return sorted(os.listdir(d)) if os.path.isdir(d) else []
hn = ds.get_hostname(fqdn=False)
fq = ds.get_hostname(fqdn=True)
print(json.dumps({
    "datasource": str(ds),
    "instance_id": ds.get_instance_id(),
    "hostname": getattr(hn, "hostname", hn),
    "fqdn": getattr(fq, "hostname", fq),
    "public_keys": ds.get_public_ssh_keys(),
    "network_config": ds.network_config,
    "cfg": {k: cfg.get(k) for k in ("users", "runcmd", "manage_etc_hosts")},
    "user_scripts": [n for n in ls("/var/lib/cloud/instance/scripts") if n != "vendor"],
    "vendor_scripts": ls("/var/lib/cloud/instance/scripts/vendor"),
}, default=str))
`

interface CloudInitView {
  datasource: string
  instance_id: string
  hostname: string
  fqdn: string
  public_keys: string[]
  network_config: unknown
  cfg: { users: unknown[]; runcmd: unknown; manage_etc_hosts: unknown }
  user_scripts: string[]
  vendor_scripts: string[]
}

/** Writes the seed into the chroot's seed directory and returns what cloud-init made of it. */
async function readWithCloudInit(
  seed: Seed,
  opts: SeedFilesOptions & { format: 'nocloud' | 'configdrive' },
): Promise<CloudInitView> {
  const seedRoot = join(root, 'var/lib/cloud/seed')
  await rm(seedRoot, { recursive: true, force: true })
  const dir = join(seedRoot, opts.format === 'configdrive' ? 'config_drive' : 'nocloud')
  for (const f of seedFiles(seed, opts).files) {
    await mkdir(dirname(join(dir, f.path)), { recursive: true })
    await writeFile(join(dir, f.path), f.bytes)
  }
  const macs = Object.fromEntries((seed.network?.ethernets ?? []).map((e) => [e.mac, e.name]))
  const { stdout } = await pexec('chroot', [root, 'python3', '/root/harness.py', opts.format, JSON.stringify(macs)], {
    maxBuffer: 16 * 1024 * 1024,
  })
  return JSON.parse(stdout) as CloudInitView
}

/** Runs `cloud-init devel net-convert` in the chroot; returns every output file's text by path. */
async function netConvert(
  input: string,
  kind: 'yaml' | 'network_data.json',
  output: 'eni' | 'networkd' | 'netplan',
  macs: Record<string, string> = {},
): Promise<Record<string, string>> {
  const work = join(root, 'tmp/nc')
  await rm(work, { recursive: true, force: true })
  await mkdir(work, { recursive: true })
  await writeFile(join(work, 'in'), input)
  const macArgs = Object.entries(macs).flatMap(([mac, name]) => ['-m', `${name},${mac}`])
  await pexec('chroot', [
    root,
    'cloud-init',
    'devel',
    'net-convert',
    '-p',
    '/tmp/nc/in',
    '-k',
    kind,
    ...macArgs,
    '-d',
    '/tmp/nc/out',
    '-D',
    'debian',
    '-O',
    output,
  ])
  return readTree(join(work, 'out'))
}

async function readTree(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const rel of (await readdir(dir, { recursive: true })).map(String)) {
    const text = await readFile(join(dir, rel), 'utf8').catch(() => undefined)
    if (text !== undefined) out[rel] = text
  }
  return out
}

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHhwaW1hZ2UtdGVzdC1rZXk ops@example'
const SEED = parseSeed(`
hostname: metal-01
fqdn: metal-01.example.net
instance_id: iid-metal-01
users:
  - {name: ops, ssh_authorized_keys: ["${KEY}"], sudo: true, groups: [adm], password_hash: "$6$rounds=4096$salt$hash"}
network:
  ethernets:
    - {mac: "52:54:00:12:34:56", dhcp4: true}
    - mac: "52:54:00:aa:00:02"
      addresses: ["10.0.0.5/24", "2001:db8::5/64"]
      gateway4: 10.0.0.1
      gateway6: "2001:db8::1"
      nameservers: {addresses: [10.0.0.53], search: [example.net]}
      mtu: 9000
  bonds:
    - {name: bond0, interfaces: ["52:54:00:aa:00:10", "52:54:00:aa:00:11"], mode: 802.3ad, lacp_rate: fast, xmit_hash_policy: layer3+4}
  vlans:
    - {id: 101, link: bond0, addresses: ["192.168.101.5/24"]}
user_data: |
  #cloud-config
  users: [default, {name: alice}]
  runcmd: [[touch, /root/hello]]
  manage_etc_hosts: false
report: {url: "http://10.0.2.2:8080/"}
cleanup: true
`)
const MACS = Object.fromEntries(SEED.network!.ethernets.map((e) => [e.mac, e.name]))

function assertMergedConfig(view: CloudInitView): void {
  const names = view.cfg.users.map((u) => (typeof u === 'string' ? u : (u as { name: string }).name))
  assert.deepEqual(names, ['default', 'alice', 'ops'], 'the operator users first, the seed users appended')
  const ops = view.cfg.users[2] as Record<string, unknown>
  assert.equal(ops.sudo, 'ALL=(ALL) NOPASSWD:ALL')
  assert.equal(ops.hashed_passwd, '$6$rounds=4096$salt$hash')
  assert.deepEqual(ops.ssh_authorized_keys, [KEY])
  assert.deepEqual(view.cfg.runcmd, [['touch', '/root/hello']])
  assert.equal(view.cfg.manage_etc_hosts, false, "the operator's scalar wins over hwimage's")
  assert.deepEqual(
    view.vendor_scripts,
    ['hwimage-first-boot'],
    'the first-boot script lands in scripts/vendor under its name',
  )
}

test('NoCloud seed: cloud-init 22.4.2 reads instance-id, hostname, keys and version 1 network config as written', async () => {
  const view = await readWithCloudInit(SEED, { format: 'nocloud', networkVersion: 1 })
  assert.match(view.datasource, /^DataSourceNoCloud /)
  assert.equal(view.instance_id, 'iid-metal-01')
  assert.equal(view.hostname, 'metal-01')
  assert.equal(view.fqdn, 'metal-01.example.net')
  assert.deepEqual(view.public_keys, [KEY])
  assert.deepEqual(view.network_config, renderNetworkConfigV1(SEED.network!), 'MACs stay strings through PyYAML')
  assertMergedConfig(view)
})

test('NoCloud seed: a new instance-id makes a new instance', async () => {
  const view = await readWithCloudInit({ ...SEED, instanceId: 'iid-metal-01-reinstalled' }, { format: 'nocloud' })
  assert.equal(view.instance_id, 'iid-metal-01-reinstalled')
  const fresh = await readWithCloudInit({ ...SEED, instanceId: undefined } as Seed, { format: 'nocloud' })
  assert.match(fresh.instance_id, /^[0-9a-f-]{36}$/)
})

test('version 1 renders for ifupdown with bonds, VLANs, gateways and names by MAC', async () => {
  const files = await netConvert(JSON.stringify(renderNetworkConfigV1(SEED.network!)), 'yaml', 'eni')
  const eni = files['etc/network/interfaces.d/50-cloud-init']!
  for (const line of [
    'iface nic0 inet dhcp',
    'iface nic1 inet static',
    'address 10.0.0.5/24',
    'gateway 10.0.0.1',
    'dns-nameservers 10.0.0.53',
    'mtu 9000',
    'iface nic1 inet6 static',
    'gateway 2001:db8::1',
    'bond-master bond0',
    'bond-slaves none',
    'bond-mode 802.3ad',
    'bond-lacp-rate fast',
    'bond-xmit-hash-policy layer3+4',
    'iface bond0.101 inet static',
    'vlan-raw-device bond0',
  ]) {
    assert.ok(eni.includes(line), `ENI lacks "${line}":\n${eni}`)
  }
  const rules = files['etc/udev/rules.d/70-persistent-net.rules']!
  assert.match(rules, /ATTR\{address\}=="52:54:00:12:34:56", NAME="nic0"/)
  assert.match(rules, /ATTR\{address\}=="52:54:00:aa:00:11", NAME="nic3"/)
})

test('the networkd renderer of cloud-init 22.4 creates no bonds or VLANs (why ifupdown images get version 1 and netplan images version 2)', async () => {
  const files = await netConvert(JSON.stringify(renderNetworkConfigV1(SEED.network!)), 'yaml', 'networkd')
  const all = Object.values(files).join('\n')
  assert.match(all, /Name=nic0/)
  assert.doesNotMatch(all, /Kind=bond|Kind=vlan|Bond=bond0|VLAN=/)
  assert.ok(!Object.keys(files).some((p) => p.endsWith('.netdev')))
})

test('version 2 is read by cloud-init and rendered by netplan 0.106 into bonds and VLANs', async () => {
  const view = await readWithCloudInit(SEED, { format: 'nocloud', networkVersion: 2 })
  const v2 = renderNetworkConfigV2(SEED.network!)
  assert.deepEqual(view.network_config, v2)
  const np = join(root, 'tmp/np')
  await rm(np, { recursive: true, force: true })
  await mkdir(join(np, 'etc/netplan'), { recursive: true })
  await writeFile(join(np, 'etc/netplan/50-cloud-init.yaml'), JSON.stringify({ network: v2 }), { mode: 0o600 })
  await pexec('chroot', [root, 'netplan', 'generate', '--root-dir', '/tmp/np'])
  const out = await readTree(join(np, 'run/systemd/network'))
  assert.match(out['10-netplan-nic0.link']!, /MACAddress=52:54:00:12:34:56/)
  assert.match(out['10-netplan-nic0.link']!, /Name=nic0/)
  assert.match(out['10-netplan-bond0.netdev']!, /Kind=bond/)
  assert.match(out['10-netplan-bond0.netdev']!, /Mode=802.3ad/)
  assert.match(out['10-netplan-bond0.netdev']!, /LACPTransmitRate=fast/)
  assert.match(out['10-netplan-nic2.network']!, /Bond=bond0/)
  assert.match(out['10-netplan-bond0.101.netdev']!, /Kind=vlan/)
  assert.match(out['10-netplan-bond0.101.netdev']!, /Id=101/)
  assert.match(out['10-netplan-nic1.network']!, /Gateway=10.0.0.1/)
  assert.match(out['10-netplan-bond0.101.network']!, /Address=192.168.101.5\/24/)
  const eni = (await netConvert(JSON.stringify(v2), 'yaml', 'eni'))['etc/network/interfaces.d/50-cloud-init']!
  assert.match(eni, /vlan-raw-device bond0/)
})

test('config-drive seed: cloud-init reads uuid as instance-id, vendor_data2.json, and network_data.json with bonds and VLANs', async () => {
  const view = await readWithCloudInit(SEED, { format: 'configdrive' })
  assert.match(view.datasource, /^DataSourceConfigDrive /)
  assert.equal(view.instance_id, 'iid-metal-01')
  assert.equal(view.hostname, 'metal-01')
  assert.equal(view.fqdn, 'metal-01.example.net')
  assert.deepEqual(view.public_keys, [KEY])
  assertMergedConfig(view)
  const eni = (await netConvert(JSON.stringify(view.network_config), 'yaml', 'eni'))[
    'etc/network/interfaces.d/50-cloud-init'
  ]!
  for (const line of [
    'iface nic0 inet dhcp',
    'gateway 10.0.0.1',
    'bond-master bond0',
    'bond-slaves none',
    'iface bond0.101 inet static',
    'vlan-raw-device bond0',
  ]) {
    assert.ok(eni.includes(line), `ENI lacks "${line}":\n${eni}`)
  }
  assert.doesNotMatch(eni, /route add/, 'gateways must not depend on net-tools')
  const direct = await netConvert(
    new TextDecoder().decode(
      seedFiles(SEED, { format: 'configdrive' }).files.find((f) => f.path.endsWith('network_data.json'))!.bytes,
    ),
    'network_data.json',
    'eni',
    MACS,
  )
  assert.match(direct['etc/network/interfaces.d/50-cloud-init']!, /iface bond0.101 inet static/)
})

test('a seed without user_data gets hwimage cloud-config alone: exactly the seed users', async () => {
  const seed = parseSeed(`hostname: metal-02\nusers: [{name: ops, ssh_authorized_keys: ["${KEY}"]}]\n`)
  const view = await readWithCloudInit(seed, { format: 'nocloud' })
  assert.deepEqual(
    view.cfg.users.map((u) => (u as { name: string }).name),
    ['ops'],
  )
  assert.equal(view.cfg.manage_etc_hosts, true)
  assert.deepEqual(view.vendor_scripts, [])
  assert.equal(view.network_config, null)
})

test('a shell-script user_data runs next to the seed users', async () => {
  const seed = parseSeed(`users: [{name: ops}]\nuser_data: "#!/bin/sh\\ntouch /root/hello\\n"\n`)
  const view = await readWithCloudInit(seed, { format: 'nocloud' })
  assert.deepEqual(view.user_scripts, ['user-data'])
  assert.deepEqual(
    view.cfg.users.map((u) => (u as { name: string }).name),
    ['ops'],
  )
})
