// OpenStack Ironic (Debian 12: 21.4) deploys the test image into a QEMU machine, end to end,
// with hwimage's deploy environment as its agent (issue 17, docs/ironic.md):
//   1. `baremetal node create --driver ipmi` (the BMC: OpenIPMI's ipmi_sim, lab/ironic/bmc.sh),
//      manage, provide, deploy with an HTTP image URL (raw + bmap) and its SHA-256 and a config
//      drive (`hwimage seed --ironic`: hostname, a user with an SSH key, a static address, the
//      first-boot report). Ironic powers the machine on through ipmitool, it network boots
//      (OVMF Secure Boot: shim → grubnetx64 from Ironic's TFTP root) the deploy environment,
//      which runs `hwimage ironic-agent`; deploying → wait call-back → active; Ironic powers it
//      off and on from disk; the image boots under Secure Boot, cloud-init reads the config drive
//      (SSH to the static address, the hostname), the first-boot report arrives.
//   2. The image written to the same disk as stock ironic-python-agent writes a raw image, with
//      a config drive made as it makes one (sgdisk -e, a config-2 partition in the last 64 MiB
//      by parted, an ISO 9660 config-2 by genisoimage), no agent involved: powered on through
//      Ironic, cloud-init reads it (a new instance, a new hostname, SSH to the static address).
//   3. A deploy with a wrong SHA-256 on the same machine: deploy failed, the reason in
//      last_error, no valid GPT on the disk.
//   4. The machine's disk swapped for a 4Kn one: deployed to active, the config drive written
//      as IPA writes it there (a vfat CONFIG-2 volume, not the ISO), read by cloud-init.
// Needs `make setup-ironic`; `make test-ironic` (not make test). The boots run under
// flock /tmp/hwimage-qemu.lock, held by a child for the whole file.

import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { mkdir, mkdtemp, open, readFile, rm, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { listenForReports, type ReportListener } from '../../src/seed/report-listener.js'
import { run } from '../../src/tools/run.js'
import { CLI, testImage } from '../integration/fixture.js'
import { freePort, nextReport, opsUser, ssh, sshKey } from '../integration/guest.js'

const LAB = join(import.meta.dirname, '../../lab/ironic')
const MAC = '52:54:00:12:34:01'
const STATIC = '10.0.2.50'
const deployEnv = process.env.HWIMAGE_DEPLOY_ENV_DIR ?? ''
const image = testImage()
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

let dir = ''
let env: Record<string, string> = {}
let node = ''
let disk = ''
let serial = ''
let sshPort = 0
let key = ''
let listener: ReportListener | undefined
let lockHolder: Promise<unknown> | undefined
let imageServer: ChildProcess | undefined
let imageBase = ''

/** `baremetal ARGS` against the lab's Ironic; its stdout. */
async function bm(...args: string[]): Promise<string> {
  return (await run(['baremetal', ...args], { env })).stdout.trim()
}
const field = (f: string) => bm('node', 'show', node, '-f', 'value', '-c', f)
const serialText = () => (existsSync(serial) ? readFileSync(serial, 'utf8') : '')
const chassisLog = () => {
  const f = join(dir, 'bmc/node1/chassis.log')
  return existsSync(f) ? readFileSync(f, 'utf8') : ''
}

/** The host's address toward its default route: the image server listens there, so that both
 * Ironic's conductor (which HEADs the URL) and the guest (through QEMU's NAT) reach it. */
async function hostAddress(): Promise<string> {
  const out = (await run(['ip', '-o', '-4', 'route', 'get', '192.0.2.1'])).stdout
  const m = / src (\d+\.\d+\.\d+\.\d+)/.exec(out)
  assert.ok(m?.[1], `no source address in: ${out}`)
  return m[1]
}

/** `baremetal node set` arguments naming the raw image by HTTP URL (its bmap beside it) and `sha256`. */
const imageInfo = (sha256: string) => [
  '--instance-info',
  `image_source=${imageBase}/disk.img`,
  '--instance-info',
  'image_os_hash_algo=sha256',
  '--instance-info',
  `image_os_hash_value=${sha256}`,
  '--instance-info',
  'image_disk_format=raw',
]

let sha = ''

/** `hwimage seed --ironic` for `hostname`: user ops with the test's key, the static address, the report's URL. */
async function configDriveFor(hostname: string): Promise<string> {
  const pub = (await readFile(`${key}.pub`, 'utf8')).trim()
  const seed = join(dir, `${hostname}.yaml`)
  await writeFile(
    seed,
    [
      `hostname: ${hostname}`,
      ...opsUser(pub),
      'network:',
      '  ethernets:',
      `    - mac: "${MAC}"`,
      `      addresses: ["${STATIC}/24"]`,
      '      gateway4: 10.0.2.2',
      '      nameservers: {addresses: [10.0.2.3]}',
      'report:',
      `  url: http://10.0.2.2:${listener!.port}/`,
      '',
    ].join('\n'),
  )
  const out = join(dir, `${hostname}.configdrive.b64`)
  await run([CLI, 'seed', seed, '--ironic', '-o', out, '--image', image.img])
  return out
}

interface Phases {
  [phase: string]: number
}

/** Polls the node until `done` states, recording when each provision state and each marker
 * (a test of the serial console or the BMC's log) was first seen (seconds since `t0`). */
async function follow(
  t0: number,
  done: readonly string[],
  markers: Record<string, () => boolean>,
  timeoutS: number,
): Promise<{ state: string; seen: Phases; states: string[] }> {
  const seen: Phases = {}
  const states: string[] = []
  const deadline = Date.now() + timeoutS * 1000
  for (;;) {
    const state = await field('provision_state')
    if (states.at(-1) !== state) {
      states.push(state)
      seen[state] ??= (Date.now() - t0) / 1000
    }
    for (const [name, test] of Object.entries(markers))
      if (!(name in seen) && test()) seen[name] = (Date.now() - t0) / 1000
    if (done.includes(state)) return { state, seen, states }
    if (Date.now() > deadline)
      throw new Error(`node still ${state} after ${timeoutS} s (states: ${states.join(' → ')})`)
    await sleep(1000)
  }
}

before(async () => {
  assert.ok(
    existsSync(join(deployEnv, 'initrd')),
    'HWIMAGE_DEPLOY_ENV_DIR names a deploy environment (make deploy-env)',
  )
  dir = await mkdtemp('/tmp/hwimage-ironic-test-')
  // The QEMU lock, held by a child (so that Ironic, ipmi_sim and QEMU do not inherit it).
  lockHolder = run([
    'flock',
    '/tmp/hwimage-qemu.lock',
    'sh',
    '-c',
    `echo locked > ${dir}/locked; while [ ! -e ${dir}/release ]; do sleep 1; done`,
  ])
  while (!existsSync(join(dir, 'locked'))) await sleep(1000)

  const [api, http, bmc, agent, images] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ]
  sshPort = await freePort()
  env = {
    IRONIC_API_PORT: String(api),
    IRONIC_HTTP_PORT: String(http),
    IRONIC_DEPLOY_ENV_DIR: deployEnv,
    OS_AUTH_TYPE: 'none',
    OS_ENDPOINT: `http://127.0.0.1:${api}`,
    OS_BAREMETAL_API_VERSION: 'latest',
  }
  const lab = join(dir, 'lab')
  const started = Date.now()
  await run([join(LAB, 'start.sh'), lab], { env })
  console.log(`Ironic up in ${((Date.now() - started) / 1000).toFixed(1)} s`)

  // The image and its bmap over HTTP (Python's server, as the lab's HTTP root).
  const addr = await hostAddress()
  const root = join(dir, 'images')
  await mkdir(root)
  await run(['ln', '-s', image.img, join(root, 'disk.img')])
  await run(['ln', '-s', image.bmap, join(root, 'disk.img.bmap')])
  imageServer = spawn('python3', ['-m', 'http.server', String(images), '--bind', addr, '--directory', root], {
    stdio: 'ignore',
  })
  imageBase = `http://${addr}:${images}`
  for (let i = 0; ; i++) {
    const r = await run(['curl', '-sfI', `${imageBase}/disk.img`], { okStatus: [0, 7] })
    if (r.status === 0) break
    assert.ok(i < 20, 'the image server did not answer')
    await sleep(250)
  }

  disk = join(dir, 'node1.img')
  await writeFile(disk, '')
  await truncate(disk, 8 * 1024 ** 3)
  await run([join(LAB, 'bmc.sh'), lab, 'node1', String(bmc), disk, MAC, String(sshPort), String(agent)], {
    env: { ...env, LAB_SSH_GUEST: STATIC },
  })
  dir = lab
  serial = join(lab, 'bmc/node1/serial.log')
  node = await bm(
    'node',
    'create',
    '--driver',
    'ipmi',
    '--name',
    'node1',
    '--driver-info',
    'ipmi_address=127.0.0.1',
    '--driver-info',
    `ipmi_port=${bmc}`,
    '--driver-info',
    'ipmi_username=admin',
    '--driver-info',
    'ipmi_password=password',
    '--driver-info',
    `deploy_kernel=file://${deployEnv}/vmlinuz`,
    '--driver-info',
    `deploy_ramdisk=file://${deployEnv}/initrd`,
    '--driver-info',
    `kernel_append_params=console=ttyS0 ipa-advertise-host=127.0.0.1 ipa-advertise-port=${agent}`,
    '--property',
    'capabilities=boot_mode:uefi',
    '-f',
    'value',
    '-c',
    'uuid',
  )
  await bm('port', 'create', '--node', node, MAC)
  await bm('node', 'manage', '--wait', '120', node)
  await bm('node', 'provide', '--wait', '120', node)
  assert.equal(await field('provision_state'), 'available')
  key = join(dir, 'id_ed25519')
})

after(async () => {
  if (dir) await run([join(LAB, 'stop.sh'), dir], { env, okStatus: [0, 1] }).catch(() => {})
  imageServer?.kill()
  listener?.close()
  if (dir) await writeFile(join(dir, '../release'), '').catch(() => {})
  await lockHolder?.catch(() => {})
  if (dir && !process.env.HWIMAGE_KEEP_IRONIC_TEST) await rm(join(dir, '..'), { recursive: true, force: true })
})

test('Ironic deploys the image through the ipmi driver and hwimage ironic-agent: active, boots from disk under Secure Boot, cloud-init reads the config drive, the first-boot report arrives', async () => {
  await sshKey(key, 'ironic-test')
  listener = await listenForReports({ port: 0, host: '127.0.0.1' })
  const configDrive = await configDriveFor('ironic-node1')
  const sums = await readFile(join(image.dir, 'SHA256SUMS'), 'utf8')
  sha =
    new RegExp(`^([0-9a-f]{64})\\s+\\*?${image.manifest.image.file.replaceAll('.', '\\.')}$`, 'm').exec(sums)?.[1] ?? ''
  assert.ok(sha, `the image's digest in SHA256SUMS:\n${sums}`)
  await bm('node', 'set', node, ...imageInfo(sha))

  const t0 = Date.now()
  const serialBefore = serialText().length
  const since = () => serialText().slice(serialBefore)
  await bm('node', 'deploy', node, '--config-drive', configDrive)
  const r = await follow(
    t0,
    ['active', 'deploy failed'],
    {
      'powered on': () => /power on \(boot pxe\)/.test(chassisLog()),
      'agent up': () => /HWIMAGE-IRONIC-AGENT-START/.test(since()),
      'lookup done': () => /ironic-agent: lookup: node /.test(since()),
      'image written': () => /command execute_deploy_step: SUCCEEDED/.test(since()),
    },
    1800,
  )
  assert.equal(r.state, 'active', `last_error: ${await field('last_error')}; states ${r.states.join(' → ')}`)
  assert.ok(r.states.includes('wait call-back'), `states: ${r.states.join(' → ')}`)
  const activeAt = (Date.now() - t0) / 1000
  // Ironic's sequence through the BMC: boot device pxe, power on; the agent's power_off (from
  // inside the machine, as IPA does it); boot device disk, power on.
  const chassis = chassisLog()
  assert.match(
    chassis,
    /boot device pxe\n.*power on \(boot pxe\)[\s\S]*boot device default[\s\S]*power on \(boot disk\)/,
    chassis,
  )
  const text = since()
  for (const command of [
    'get_deploy_steps',
    'execute_deploy_step',
    'get_partition_uuids',
    'install_bootloader',
    'power_off',
  ])
    assert.match(text, new RegExp(`command ${command}: SUCCEEDED`), `the agent ran ${command}`)
  assert.doesNotMatch(text, /MaxListenersExceededWarning/)

  // The first boot from disk: the report, then SSH to the static address.
  const report = await nextReport(listener, 1500 * 1000)
  const firstBoot = (Date.now() - t0) / 1000
  console.log(
    `phases (s from deploy): ${Object.entries(r.seen)
      .map(([k, v]) => `${k} ${v.toFixed(0)}`)
      .join(', ')}, active ${activeAt.toFixed(0)}, first-boot report ${firstBoot.toFixed(0)}`,
  )
  console.log(`BMC log:\n${chassis}`)
  const body = report.report as { hostname?: string }
  assert.equal(body.hostname, 'ironic-node1', JSON.stringify(report.report))
  assert.equal(await ssh(key, sshPort, 'hostname'), 'ironic-node1')
  const addrs = await ssh(key, sshPort, 'ip', '-o', '-4', 'addr', 'show')
  assert.match(addrs, new RegExp(`inet ${STATIC.replaceAll('.', '\\.')}/24`))
  assert.doesNotMatch(addrs, /10\.0\.2\.15/, 'the static address, not a DHCP lease')
  const sb = await ssh(
    key,
    sshPort,
    'od',
    '-An',
    '-tu1',
    '/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c',
  )
  assert.equal(sb.trim().split(/\s+/).at(-1), '1', `SecureBoot variable: ${sb}`)
  const ds = await ssh(key, sshPort, 'sudo', 'cat', '/run/cloud-init/instance-data.json')
  const v1 = JSON.parse(ds).v1
  assert.equal(v1.platform, 'configdrive', 'cloud-init read the config drive')
  // The agent's config-2 partition: the disk's last (the image has 3 or 4 before it).
  assert.match(v1.subplatform, /^config-disk \(\/dev\/vda\d\)$/, v1.subplatform)
})

test('a config drive made as stock ironic-python-agent makes it (config-2 partition in the last 64 MiB, ISO 9660 config-2) boots with cloud-init reading it', async () => {
  await bm('node', 'power', 'off', '--power-timeout', '60', node)
  const work = join(dir, 'ipa-configdrive')
  await mkdir(join(work, 'openstack/latest'), { recursive: true })
  const uuid = 'b2f0c7a4-6f55-4d8e-9a51-0c1e1e7a0d17'
  await writeFile(
    join(work, 'openstack/latest/meta_data.json'),
    JSON.stringify({
      uuid,
      hostname: 'stock-ipa-node1',
      name: 'stock-ipa-node1',
      public_keys: { k: (await readFile(`${key}.pub`, 'utf8')).trim() },
    }),
  )
  await writeFile(
    join(work, 'openstack/latest/network_data.json'),
    JSON.stringify({
      links: [{ id: 'eth0', type: 'phy', ethernet_mac_address: MAC }],
      networks: [
        {
          id: 'n0',
          type: 'ipv4',
          link: 'eth0',
          ip_address: STATIC,
          netmask: '255.255.255.0',
          routes: [{ network: '0.0.0.0', netmask: '0.0.0.0', gateway: '10.0.2.2' }],
        },
      ],
      services: [{ type: 'dns', address: '10.0.2.3' }],
    }),
  )
  await writeFile(
    join(work, 'openstack/latest/user_data'),
    `#cloud-config\nusers: [default, {name: ops, sudo: "ALL=(ALL) NOPASSWD:ALL", ssh_authorized_keys: [${JSON.stringify((await readFile(`${key}.pub`, 'utf8')).trim())}]}]\n`,
  )
  const iso = join(dir, 'ipa-configdrive.iso')
  // What stock IPA does with a raw whole-disk image and a config drive (ironic-lib 5.4,
  // disk_utils.create_config_drive_partition on a GPT disk without a config-2 partition): the
  // image as it is onto the disk, the backup GPT moved to the disk's end (sgdisk -e), parted
  // mkpart config-2 -64MiB -0, the ISO dd'd onto the new partition. The agent's disk is erased
  // first so that nothing of hwimage's install is left.
  await truncate(disk, 0)
  await truncate(disk, 8 * 1024 ** 3)
  await run(['dd', `if=${image.img}`, `of=${disk}`, 'bs=4M', 'conv=notrunc,sparse', 'status=none'])
  await run([
    'genisoimage',
    '-quiet',
    '-o',
    iso,
    '-ldots',
    '-allow-lowercase',
    '-allow-multidot',
    '-l',
    '-publisher',
    'ironic',
    '-J',
    '-r',
    '-V',
    'config-2',
    work,
  ])
  await run(['sgdisk', '-e', disk])
  await run(['parted', '-a', 'optimal', '-s', '--', disk, 'mkpart', 'config-2', '-64MiB', '-0'])
  const after = (await run(['sgdisk', '-p', disk])).stdout
  const m = /^\s+(\d+)\s+(\d+)\s+(\d+)\s.*config-2\s*$/m.exec(after)
  assert.ok(m?.[2], after)
  const partition = m[1]
  assert.equal(Number(m[2]), 8 * 2 ** 21 - 64 * 2048, 'the partition starts 64 MiB before the disk end')
  await run(['dd', `if=${iso}`, `of=${disk}`, 'bs=512', `seek=${m[2]}`, 'conv=notrunc,fsync', 'status=none'])
  assert.match((await run(['sgdisk', '-v', disk])).stdout, /No problems found/)
  assert.equal(
    (
      await run(['blkid', '-o', 'value', '-s', 'LABEL', '--probe', '--offset', String(Number(m[2]) * 512), disk])
    ).stdout.trim(),
    'config-2',
  )

  const t0 = Date.now()
  await bm('node', 'power', 'on', '--power-timeout', '60', node)
  let hostname = ''
  for (const deadline = Date.now() + 900_000; Date.now() < deadline; await sleep(5000)) {
    hostname = await ssh(key, sshPort, 'hostname').catch(() => '')
    if (hostname) break
  }
  console.log(`second boot: SSH after ${((Date.now() - t0) / 1000).toFixed(0)} s`)
  assert.equal(hostname, 'stock-ipa-node1')
  const ds = JSON.parse(await ssh(key, sshPort, 'sudo', 'cat', '/run/cloud-init/instance-data.json'))
  assert.equal(ds.v1.instance_id, uuid)
  assert.equal(ds.v1.platform, 'configdrive')
  assert.equal(
    ds.v1.subplatform,
    `config-disk (/dev/vda${partition})`,
    'read from the partition made as stock IPA makes it',
  )
  assert.match(
    chassisLog(),
    /power off, pid \d+\n(?:.*\n)*.*power on \(boot disk\), pid \d+\n$/,
    'powered off and on through the BMC',
  )
})

test('a deploy with a wrong SHA-256 on the same machine ends in deploy failed with the reason in last_error, and the disk has no valid GPT', async () => {
  await bm('node', 'undeploy', '--wait', '300', node)
  assert.equal(await field('provision_state'), 'available')
  // Tear-down empties instance_info: the image again, with a wrong digest.
  await bm('node', 'set', node, ...imageInfo('0'.repeat(64)))
  const t0 = Date.now()
  const serialBefore = serialText().length
  await bm('node', 'deploy', node)
  const r = await follow(
    t0,
    ['active', 'deploy failed'],
    { 'agent up': () => serialText().slice(serialBefore).includes('HWIMAGE-IRONIC-AGENT-START') },
    1800,
  )
  assert.equal(r.state, 'deploy failed')
  const err = await field('last_error')
  assert.match(err, /CHECKSUM_MISMATCH/)
  assert.match(err, /expected 0{64}/)
  console.log(`wrong checksum: deploy failed after ${((Date.now() - t0) / 1000).toFixed(0)} s: ${err.slice(0, 300)}`)
  await bm('node', 'power', 'off', '--power-timeout', '60', node)
  // Neither GPT header is on the disk (the installer zeroed both ends first; the image from
  // before, with its backup header at the disk's end after sgdisk -e, is gone too).
  const fh = await open(disk)
  try {
    const sector = Buffer.alloc(512)
    await fh.read(sector, 0, 512, 512)
    assert.notEqual(sector.subarray(0, 8).toString('latin1'), 'EFI PART', 'no primary GPT header at LBA 1')
    const { size } = await fh.stat()
    await fh.read(sector, 0, 512, size - 512)
    assert.notEqual(sector.subarray(0, 8).toString('latin1'), 'EFI PART', 'no backup GPT header at the last LBA')
  } finally {
    await fh.close()
  }
  assert.match(
    (await run(['sgdisk', '-p', disk], { okStatus: [0, 1, 2, 3, 4] })).stdout,
    /Creating new GPT entries/,
    'sgdisk finds no table',
  )
})

test('on a disk with 4096-byte sectors: deployed to active, the config drive written as a vfat CONFIG-2 volume, cloud-init reads it', async () => {
  // The same machine with its disk swapped for an empty 4Kn one (powered off: the deploy failed).
  await bm('node', 'power', 'off', '--power-timeout', '60', node)
  const disk4k = join(dir, 'node1-4kn.img')
  await writeFile(disk4k, '')
  await truncate(disk4k, 8 * 1024 ** 3)
  const vmEnv = join(dir, 'bmc/node1/vm.env')
  const envText = (await readFile(vmEnv, 'utf8')).replace(/^DISK=.*$/m, `DISK=${disk4k}`)
  await writeFile(vmEnv, envText.replace(/^DISK_SECTOR=.*$/m, 'DISK_SECTOR=4096'))
  await bm('node', 'set', node, ...imageInfo(sha))
  const configDrive = await configDriveFor('ironic-4kn')
  const t0 = Date.now()
  const serialBefore = serialText().length
  await bm('node', 'deploy', node, '--config-drive', configDrive)
  const r = await follow(
    t0,
    ['active', 'deploy failed'],
    { 'image written': () => /command execute_deploy_step: SUCCEEDED/.test(serialText().slice(serialBefore)) },
    1800,
  )
  assert.equal(r.state, 'active', `last_error: ${await field('last_error')}; states ${r.states.join(' → ')}`)
  const report = await nextReport(listener!, 1500 * 1000)
  console.log(
    `4Kn: image written ${r.seen['image written']?.toFixed(0)} s, active ${r.seen.active?.toFixed(0)} s, first-boot report ${((Date.now() - t0) / 1000).toFixed(0)} s`,
  )
  assert.equal((report.report as { hostname?: string }).hostname, 'ironic-4kn')
  assert.equal(await ssh(key, sshPort, 'cat', '/sys/block/vda/queue/logical_block_size'), '4096')
  assert.equal(await ssh(key, sshPort, 'hostname'), 'ironic-4kn')
  const v1 = JSON.parse(await ssh(key, sshPort, 'sudo', 'cat', '/run/cloud-init/instance-data.json')).v1
  assert.equal(v1.platform, 'configdrive')
  const dev = /^config-disk \((\/dev\/vda\d)\)$/.exec(v1.subplatform)?.[1]
  assert.ok(dev, v1.subplatform)
  assert.equal(await ssh(key, sshPort, 'sudo', 'blkid', '-o', 'value', '-s', 'TYPE', dev), 'vfat')
  assert.equal(await ssh(key, sshPort, 'sudo', 'blkid', '-o', 'value', '-s', 'LABEL', dev), 'CONFIG-2')
})
