import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  deployCommandLine,
  dnsmasqConfig,
  grubConfig,
  grubFallbackConfig,
  ipxeChainScript,
  ipxeScript,
} from './boot-answers.js'
import { normalizeMac } from './mac.js'

const boot = {
  publicUrl: 'http://10.0.2.2:8080',
  mac: '52:54:00:12:34:56',
  token: 'tok-123',
  kernelArgs: 'console=ttyS0,115200n8',
}

test('deployCommandLine() carries the serve URL, the MAC, the token and the extra arguments', () => {
  assert.equal(
    deployCommandLine(boot),
    'hwimage.url=http://10.0.2.2:8080 hwimage.mac=52:54:00:12:34:56 hwimage.token=tok-123 console=ttyS0,115200n8',
  )
})

test('ipxeScript() for a machine that must deploy: #!ipxe, kernel and initrd over HTTP from serve, boot', () => {
  const s = ipxeScript({ action: 'deploy', boot })
  const lines = s.trim().split('\n')
  assert.equal(lines[0], '#!ipxe')
  assert.ok(lines.includes(`kernel http://10.0.2.2:8080/deploy/vmlinuz initrd=initrd ${deployCommandLine(boot)}`))
  assert.ok(lines.includes('initrd --name initrd http://10.0.2.2:8080/deploy/initrd'))
  assert.equal(lines.at(-1), 'boot')
})

test('ipxeScript() for an installed machine exits to the BIOS (the disk is next in the boot order) and holds no token', () => {
  const s = ipxeScript({ action: 'local', mac: boot.mac })
  assert.equal(s.split('\n')[0], '#!ipxe')
  assert.equal(s.trim().split('\n').at(-1), 'exit')
  assert.doesNotMatch(s, /kernel|token/)
})

test('grubConfig() loads the kernel and initrd by TFTP (no http in grubnetx64), or exits once installed', () => {
  const d = grubConfig({ action: 'deploy', boot })
  assert.match(
    d,
    /^linux \(tftp\)\/deploy\/vmlinuz hwimage\.url=http:\/\/10\.0\.2\.2:8080 hwimage\.mac=52:54:00:12:34:56 hwimage\.token=tok-123 console=ttyS0,115200n8$/m,
  )
  assert.match(d, /^initrd \(tftp\)\/deploy\/initrd$/m)
  assert.match(d, /^boot$/m)
  const l = grubConfig({ action: 'local', mac: boot.mac })
  assert.match(l, /^exit$/m)
  assert.doesNotMatch(l, /linux|token/)
})

test('grubFallbackConfig() sources grub.cfg-<mac-with-dashes> from the boot NIC and exits otherwise', () => {
  const s = grubFallbackConfig()
  assert.match(s, /source "\$\{prefix\}\/grub\.cfg-\$\{m1\}-\$\{m2\}-\$\{m3\}-\$\{m4\}-\$\{m5\}-\$\{m6\}"/)
  assert.match(s, /net_default_mac/)
  assert.match(s.trim(), /exit$/)
})

test('grubFallbackConfig() with enlisting boots the deploy environment without a token, the MAC from GRUB', () => {
  const s = grubFallbackConfig({ publicUrl: 'http://10.0.2.2:8080', kernelArgs: 'console=ttyS0' })
  assert.match(
    s,
    /^linux \(tftp\)\/deploy\/vmlinuz hwimage\.url=http:\/\/10\.0\.2\.2:8080 hwimage\.mac=\$\{net_default_mac\} hwimage\.enlist=1 console=ttyS0$/m,
  )
  assert.match(s, /^initrd \(tftp\)\/deploy\/initrd$/m)
  assert.doesNotMatch(s, /token|^exit$/m)
})

test('ipxeChainScript() chains to serve with the MAC iPXE expands', () => {
  assert.equal(
    ipxeChainScript('http://10.0.2.2:8080'),
    '#!ipxe\nchain http://10.0.2.2:8080/boot/ipxe?mac=${net0/mac} || exit\n',
  )
})

test('dnsmasqConfig() is proxy DHCP (no addresses, no DNS) with TFTP: shim for UEFI x86-64, boot.ipxe for iPXE, undionly for other BIOS ROMs', () => {
  const s = dnsmasqConfig({ subnet: '192.168.1.0', interface: 'eno1', tftpRoot: '/srv/hwimage/tftp' })
  const lines = s.split('\n')
  for (const l of [
    'port=0',
    'interface=eno1',
    'bind-interfaces',
    'dhcp-range=192.168.1.0,proxy',
    'enable-tftp',
    'tftp-root=/srv/hwimage/tftp',
    'dhcp-userclass=set:ipxe,iPXE',
  ])
    assert.ok(lines.includes(l), l)
  assert.ok(lines.some((l) => /^pxe-service=X86-64_EFI,.*,shimx64\.efi$/.test(l)))
  assert.ok(lines.some((l) => /^pxe-service=tag:ipxe,x86PC,.*,boot\.ipxe$/.test(l)))
  assert.ok(lines.some((l) => /^pxe-service=tag:!ipxe,x86PC,.*,undionly\.kpxe$/.test(l)))
  assert.ok(
    !lines.some((l) => /^dhcp-range=.*,\d+\.\d+\.\d+\.\d+,/.test(l)),
    "no address pool: the network's own DHCP server hands out addresses",
  )
  assert.ok(!dnsmasqConfig({ subnet: '10.0.0.0', tftpRoot: '/t' }).includes('interface='))
})

test('normalizeMac() accepts colons, dashes and bare hex in any case; refuses the rest', () => {
  for (const m of ['52:54:00:AB:cd:01', '52-54-00-ab-CD-01', '525400abcd01'])
    assert.equal(normalizeMac(m), '52:54:00:ab:cd:01')
  for (const m of ['52:54:00:ab:cd', '52:54-00:ab:cd:01', 'zz:54:00:ab:cd:01', '../etc', ''])
    assert.equal(normalizeMac(m), undefined, m)
})

test('the GRUB configs pass grub-script-check, and dnsmasq --test accepts the dnsmasq configuration', async () => {
  const { promises: fsp } = await import('node:fs')
  const os = await import('node:os')
  const path = await import('node:path')
  const { run } = await import('../tools/run.js')
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hwimage-boot-answers-'))
  try {
    for (const [name, text] of [
      ['deploy.cfg', grubConfig({ action: 'deploy', boot })],
      ['local.cfg', grubConfig({ action: 'local', mac: boot.mac })],
      ['grub.cfg', grubFallbackConfig()],
      ['enlist.cfg', grubFallbackConfig({ publicUrl: boot.publicUrl })],
    ] as const) {
      const file = path.join(dir, name)
      await fsp.writeFile(file, text)
      await run(['grub-script-check', file])
    }
    const conf = path.join(dir, 'dnsmasq.conf')
    await fsp.writeFile(conf, dnsmasqConfig({ subnet: '192.168.1.0', interface: 'eno1', tftpRoot: dir }))
    const r = await run(['dnsmasq', '--test', `--conf-file=${conf}`])
    assert.match(r.stderr + r.stdout, /syntax check OK/)
  } finally {
    await fsp.rm(dir, { recursive: true, force: true })
  }
})
