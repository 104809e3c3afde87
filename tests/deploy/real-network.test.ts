// Network boot on a real network (`make test-deploy`): no slirp. Two network namespaces
// joined by a bridge stand in for a rack: in one, the network's own DHCP server (dnsmasq
// handing out addresses, someone else's); in the other, `hwimage serve` and the dnsmasq
// proxy-DHCP + TFTP configuration `hwimage serve --dnsmasq` writes, and a QEMU machine on a
// tap device of the bridge. It takes its address from the DHCP server and its boot file from
// the proxy — under SeaBIOS, iPXE's boot.ipxe, which chains to serve over HTTP; under OVMF,
// shim, GRUB and its config by TFTP — boots the deploy environment, which takes an address
// with udhcpc, and enlists with its inventory. The rest of a deploy is the same as over
// slirp (tests/integration/deploy-e2e.test.ts).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { DEPLOY_MARKERS } from '../../src/deploy/init-script.js'
import { bootMachine } from '../../src/lab/boot.js'
import { classifyNic, classifyStorage, loadDeviceCatalog } from '../../src/tools/qemu-devices.js'
import { run } from '../../src/tools/run.js'
import { DEPLOY_DIR, KERNEL_ARGS, blankDisk, deployEnvironment, Serve } from '../integration/deploy-fixture.js'
import { CLI, testImage } from '../integration/fixture.js'

const SUBNET = '192.168.77'
const SERVE_IP = `${SUBNET}.1`
const DHCP_IP = `${SUBNET}.2`
const PORT = 8080

const ip = (...args: string[]) => run(['ip', ...args])

/** The rack: namespace `rack` (bridge br0 = 192.168.77.1, tap0 on it) and `dhcp` (192.168.77.2 on a veth into br0). */
async function makeRack(rack: string, dhcp: string): Promise<void> {
  await ip('netns', 'add', rack)
  await ip('netns', 'add', dhcp)
  await ip('-n', rack, 'link', 'set', 'lo', 'up')
  await ip('-n', dhcp, 'link', 'set', 'lo', 'up')
  await ip('-n', rack, 'link', 'add', 'br0', 'type', 'bridge')
  await ip('-n', rack, 'addr', 'add', `${SERVE_IP}/24`, 'dev', 'br0')
  await ip('-n', rack, 'link', 'set', 'br0', 'up')
  await ip('-n', rack, 'link', 'add', 'veth-dhcp', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', dhcp)
  await ip('-n', rack, 'link', 'set', 'veth-dhcp', 'master', 'br0', 'up')
  await ip('-n', dhcp, 'addr', 'add', `${DHCP_IP}/24`, 'dev', 'eth0')
  await ip('-n', dhcp, 'link', 'set', 'eth0', 'up')
  await ip('-n', rack, 'tuntap', 'add', 'dev', 'tap0', 'mode', 'tap')
  await ip('-n', rack, 'link', 'set', 'tap0', 'master', 'br0', 'up')
}

/** A foreground dnsmasq in a namespace, its log collected. */
function dnsmasq(ns: string, args: string[]): { child: ChildProcess; log: () => string } {
  let log = ''
  const child = spawn('ip', ['netns', 'exec', ns, 'dnsmasq', '--keep-in-foreground', '--log-facility=-', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  child.stdout!.on('data', (b: Buffer) => (log += b))
  child.stderr!.on('data', (b: Buffer) => (log += b))
  return { child, log: () => log }
}

/**
 * One machine on the rack's network: under SeaBIOS its iPXE ROM gets boot.ipxe from the proxy
 * and chains to serve over HTTP; under OVMF (no Secure Boot: the Secure Boot path is the same
 * files, booted over slirp in deploy-e2e) its PXE gets shimx64.efi, shim gets grubx64.efi, and
 * GRUB the fallback config, kernel and initrd, all by TFTP from dnsmasq.
 */
async function realNetwork(firmware: 'bios' | 'uefi', mac: string): Promise<void> {
  deployEnvironment()
  const dir = await mkdtemp('/var/tmp/hwimage-deploy-net-')
  await chmod(dir, 0o755) // dnsmasq drops root: the TFTP tree must be reachable by its user
  const rack = `hwi-rack-${process.pid}`
  const dhcp = `hwi-dhcp-${process.pid}`
  const children: ChildProcess[] = []
  let serve: Serve | undefined
  try {
    await makeRack(rack, dhcp)
    const config = join(dir, 'serve.yaml')
    await writeFile(
      config,
      [
        `listen: { host: 0.0.0.0, port: ${PORT} }`,
        `public_url: http://${SERVE_IP}:${PORT}`,
        `state_dir: ${join(dir, 'state')}`,
        `deploy_dir: ${DEPLOY_DIR}`,
        `tftp_root: ${join(dir, 'tftp')}`,
        `images: { default: ${testImage().dir} }`,
        'unknown_macs: enlist',
        `kernel_args: ${KERNEL_ARGS}`,
        '',
      ].join('\n'),
    )
    // The operator's way: serve writes dnsmasq's configuration for the rack's network.
    const conf = await run([CLI, 'serve', config, '--dnsmasq', `${SUBNET}.0`, '--interface', 'br0'])
    await writeFile(join(dir, 'dnsmasq-hwimage.conf'), conf.stdout)
    serve = await Serve.start(config, ['ip', 'netns', 'exec', rack])
    const proxy = dnsmasq(rack, [
      `--conf-file=${join(dir, 'dnsmasq-hwimage.conf')}`,
      `--pid-file=${join(dir, 'proxy.pid')}`,
    ])
    const server = dnsmasq(dhcp, [
      '--conf-file=/dev/null',
      '--port=0',
      '--interface=eth0',
      '--bind-interfaces',
      `--dhcp-range=${SUBNET}.100,${SUBNET}.150,255.255.255.0,1h`,
      `--dhcp-leasefile=${join(dir, 'leases')}`,
      `--pid-file=${join(dir, 'dhcp.pid')}`,
      '--log-dhcp',
      // UEFI: Debian's GRUB 2.06 takes its TFTP server from the DHCP server's ACK (its
      // next-server, siaddr), never from the proxy's offer (Fedora carries a patch for that,
      // "efinet: Add DHCP proxy support"; Debian does not): without this line it finds no
      // config on the DHCP server's host and stops at its prompt. The operator's one change to
      // the network's DHCP server (docs/deploy.md).
      ...(firmware === 'uefi' ? [`--dhcp-boot=shimx64.efi,,${SERVE_IP}`] : []),
    ])
    children.push(proxy.child, server.child)
    await new Promise((r) => setTimeout(r, 1000))
    for (const d of [proxy, server]) assert.equal(d.child.exitCode, null, `dnsmasq is running: ${d.log()}`)

    const disk = join(dir, 'disk0.raw')
    await blankDisk(disk)
    const catalog = await loadDeviceCatalog()
    const enlisted = () => /"path":"\/api\/v1\/machines\/[^"]+\/inventory","status":200/.test(serve!.log)
    const boot = await bootMachine({
      machine: {
        firmware,
        storage: classifyStorage(catalog, 'virtio-blk-pci'),
        nic: classifyNic(catalog, 'virtio-net-pci'),
        disks: [{ path: disk, format: 'raw', role: 'boot' }],
        memoryMiB: 2048,
        cpus: 2,
        macAddress: mac,
        netboot: { tap: 'tap0' },
        name: 'deploy-real-network',
      },
      wrap: ['ip', 'netns', 'exec', rack],
      workDir: dir,
      timeoutMs: 5 * 60_000,
      // Enlisted; or dnsmasq could not serve one of our files (then waiting is useless; shim's
      // probes for optional files, revocations_*.efi and shim_certificate_0.efi, miss normally).
      done: (c) =>
        enlisted() ||
        c.has('panic') ||
        /dnsmasq-tftp\[\d+\]: (cannot access|file \S+\/(boot\.ipxe|grubx64\.efi|vmlinuz|initrd) not found)/.test(
          proxy.log(),
        ),
    })
    const console = await readFile(boot.serialLog, 'utf8').catch(() => '')
    const context = `(${boot.outcome}) proxy dnsmasq:\n${proxy.log().slice(-2000)}\nDHCP server:\n${server.log().slice(-2000)}\nconsole:\n${console.slice(-3000)}`
    assert.ok(enlisted(), `the machine enlisted with its inventory ${context}`)

    // Its state, asked the operator's way from inside the rack's namespace (loopback: operator).
    const show = await run(['ip', 'netns', 'exec', rack, CLI, 'machines', 'show', mac, '--json'], {
      env: { ...process.env, HWIMAGE_SERVER: `http://127.0.0.1:${PORT}` },
    })
    const doc = JSON.parse(show.stdout) as {
      machine: { state: string; inventory: { firmware: string; nics: { mac: string }[] } | null }
    }
    assert.equal(doc.machine.state, 'enlisted')
    assert.equal(doc.machine.inventory?.firmware, firmware)
    assert.ok(doc.machine.inventory?.nics.some((n) => n.mac === mac))
    // Addresses came from the network's DHCP server only; the proxy only named boot files.
    const leases = await readFile(join(dir, 'leases'), 'utf8')
    assert.match(
      leases,
      new RegExp(`${mac} ${SUBNET.replaceAll('.', '\\.')}\\.1\\d\\d`),
      'a lease from the DHCP server',
    )
    assert.match(server.log(), new RegExp(`DHCPACK\\(eth0\\) ${SUBNET.replaceAll('.', '\\.')}\\.1\\d\\d ${mac}`))
    assert.doesNotMatch(proxy.log(), /DHCPACK/, 'the proxy gave no address')
    if (firmware === 'bios')
      assert.match(proxy.log(), /sent .*boot\.ipxe/, 'iPXE fetched boot.ipxe from the proxy dnsmasq by TFTP')
    else
      for (const f of ['shimx64.efi', 'grubx64.efi', 'grub/grub.cfg', 'deploy/vmlinuz', 'deploy/initrd'])
        assert.match(proxy.log(), new RegExp(`sent \\S*/tftp/${f} `), `${f} by TFTP from the proxy dnsmasq`)
    // The deploy environment's own DHCP: udhcpc got an address on the bridge's subnet.
    assert.match(
      console,
      new RegExp(`${DEPLOY_MARKERS.dhcp} \\S+ ${mac} ${SUBNET.replaceAll('.', '\\.')}\\.1\\d\\d/24`),
      context,
    )
    assert.match(
      console,
      new RegExp(`${DEPLOY_MARKERS.up} mac=${mac} url=http://${SERVE_IP.replaceAll('.', '\\.')}:${PORT}`),
    )
    // iPXE's chain request reached serve over the bridge, not loopback.
    if (firmware === 'bios')
      assert.match(
        serve.log,
        new RegExp(
          `"path":"/boot/ipxe\\?mac=[^"]+","status":200[^}]*"remote":"(::ffff:)?${SUBNET.replaceAll('.', '\\.')}\\.1\\d\\d"`,
        ),
      )
  } finally {
    for (const c of children) c.kill('SIGTERM')
    await serve?.kill('SIGTERM').catch(() => undefined)
    await ip('netns', 'del', rack).catch(() => undefined)
    await ip('netns', 'del', dhcp).catch(() => undefined)
    await rm(dir, { recursive: true, force: true })
  }
}

test(
  'a real network under SeaBIOS: addresses from the network DHCP server, boot.ipxe from the dnsmasq proxy serve configured; iPXE chains to serve, the deploy environment enlists',
  {
    timeout: 10 * 60_000,
  },
  () => realNetwork('bios', '52:54:00:d0:00:21'),
)

test(
  'a real network under OVMF: addresses from the network DHCP server, shim, GRUB, its config and the deploy environment by TFTP from the dnsmasq proxy; it enlists',
  {
    timeout: 10 * 60_000,
  },
  () => realNetwork('uefi', '52:54:00:d0:00:22'),
)
