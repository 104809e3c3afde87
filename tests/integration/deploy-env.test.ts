// The deploy environment, built and booted from the network: SeaBIOS with QEMU's iPXE
// NIC ROM (kernel and initrd over HTTP from a node:http server on 127.0.0.1, which the
// guest reaches as 10.0.2.2), and OVMF with Secure Boot (Microsoft-signed shim →
// Debian-signed grubnetx64 → the Debian-signed kernel, all over slirp's TFTP).
// REUSE_TEST_IMAGE=1 reuses .cache/deploy-env when its manifest is there.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { copyFile, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { createReadStream } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { buildDeploy, DEPLOY_SIZE_GOAL, type DeployManifest } from '../../src/deploy/build-deploy.js'
import { DEPLOY_MARKERS } from '../../src/deploy/init-script.js'
import { stripControl } from '../../src/lab/console-watch.js'
import { OVMF_FILES } from '../../src/tools/qemu.js'
import { spawnTool } from '../../src/tools/run.js'
import { HOST_FILES } from '../../src/tools/programs.js'

const DIR = resolve(process.env.HWIMAGE_DEPLOY_ENV_DIR ?? '.cache/deploy-env')
const SHIM = Object.keys(HOST_FILES).find((f) => f.endsWith('shimx64.efi.signed'))!
const GRUBNET = Object.keys(HOST_FILES).find((f) => f.endsWith('grubnetx64.efi.signed'))!

let manifest: DeployManifest

async function environment(): Promise<DeployManifest> {
  if (manifest) return manifest
  if (process.env.REUSE_TEST_IMAGE === '1') {
    const text = await readFile(join(DIR, 'manifest.json'), 'utf8').catch(() => undefined)
    if (text) return (manifest = JSON.parse(text) as DeployManifest)
  }
  await rm(DIR, { recursive: true, force: true })
  return (manifest = await buildDeploy({ outDir: DIR, measureParts: false }))
}

/** Boots QEMU until `done` holds on the console (or the timeout); returns the console text. */
async function boot(
  args: string[],
  serialLog: string,
  timeoutMs: number,
  done: (text: string) => boolean,
): Promise<string> {
  const child = spawnTool(['qemu-system-x86_64', ...args, '-serial', `file:${serialLog}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let stderr = ''
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()))
  const exited = new Promise<void>((r) => child.on('exit', () => r()))
  const deadline = Date.now() + timeoutMs
  let text = ''
  let gone = false
  void exited.then(() => (gone = true))
  try {
    while (Date.now() < deadline && !gone) {
      await new Promise((r) => setTimeout(r, 500))
      text = stripControl(await readFile(serialLog, 'utf8').catch(() => ''))
      if (done(text)) break
    }
  } finally {
    child.kill('SIGKILL')
    await exited
  }
  if (gone && !done(text)) assert.fail(`QEMU exited early: ${stderr.slice(-500)}`)
  return text
}

function checkConsole(text: string, log: string): void {
  assert.match(
    text,
    new RegExp(`${DEPLOY_MARKERS.dhcp} \\S+ 52:54:00:12:34:56 10\\.0\\.2\\.15/24 router 10\\.0\\.2\\.2`),
    `a DHCP lease on the boot NIC (${log})`,
  )
  assert.match(
    text,
    new RegExp(`${DEPLOY_MARKERS.up} mac=52:54:00:12:34:56 `),
    `the boot MAC from the command line (${log})`,
  )
  assert.match(text, new RegExp(`${DEPLOY_MARKERS.version} hwimage \\d+\\.\\d+\\.\\d+`), `hwimage ran (${log})`)
  // The kernel itself logs its command line ("Command line: …"), token included: hence one-time
  // tokens. What runs after it (/init, hwimage) never prints it.
  assert.doesNotMatch(text.slice(text.indexOf('Run /init')), /secret-token-123/, '/init never prints the token')
  const inv = new RegExp(`${DEPLOY_MARKERS.inventoryBegin}\\n(.*)\\n${DEPLOY_MARKERS.inventoryEnd}`).exec(text)
  assert.ok(inv, `the inventory was printed (${log})`)
  const inventory = JSON.parse(inv[1]!) as { nics: { mac: string }[]; cpus: number; firmware: string }
  assert.ok(
    inventory.nics.some((n) => n.mac === '52:54:00:12:34:56'),
    'the inventory lists the NIC',
  )
  assert.equal(inventory.cpus, 2)
}

const finished = (t: string) => t.includes(DEPLOY_MARKERS.done) || t.includes(DEPLOY_MARKERS.failed)

test('build-deploy: kernel + initramfs within 64 MiB, every part measured, zstd the kernel can unpack', async () => {
  const m = await environment()
  const kernel = (await stat(join(DIR, 'vmlinuz'))).size
  const initrd = (await stat(join(DIR, 'initrd'))).size
  assert.equal(m.kernel.bytes, kernel)
  assert.equal(m.initramfs.bytes, initrd)
  assert.equal(m.total.bytes, kernel + initrd)
  assert.ok(m.total.bytes <= DEPLOY_SIZE_GOAL, `${m.total.bytes} bytes is over the 64 MiB goal`)
  assert.ok(m.kernel.rdZstd, 'the kernel has CONFIG_RD_ZSTD')
  assert.ok(m.parts.modules.count > 1000, `the server module set (${m.parts.modules.count})`)
  assert.match(m.parts.hwimage.nodeVersion, /^v20\./)
  assert.ok(m.parts.programs.programs.some((p) => p.endsWith('/sgdisk')))
  // The initrd starts with zstd's frame magic (RFC 8878 §3.1.1).
  const head = new Uint8Array(4)
  const fh = await (await import('node:fs/promises')).open(join(DIR, 'initrd'))
  await fh.read(head, 0, 4, 0)
  await fh.close()
  assert.deepEqual([...head], [0x28, 0xb5, 0x2f, 0xfd])
})

test('deploy environment boots under SeaBIOS via iPXE and HTTP: DHCP, hwimage, inventory', {
  timeout: 200_000,
}, async () => {
  await environment()
  const work = await mkdtemp(join(tmpdir(), 'deploy-bios-'))
  const server = http.createServer((req, res) => {
    const name = req.url === '/vmlinuz' ? 'vmlinuz' : req.url === '/initrd' ? 'initrd' : undefined
    if (!name) return void res.writeHead(404).end()
    void stat(join(DIR, name)).then((st) => {
      res.writeHead(200, { 'content-length': st.size })
      createReadStream(join(DIR, name)).pipe(res)
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as AddressInfo).port
  try {
    await mkdir(join(work, 'tftp'))
    await writeFile(
      join(work, 'tftp/boot.ipxe'),
      `#!ipxe\nkernel http://10.0.2.2:${port}/vmlinuz console=tty0 console=ttyS0,115200n8 BOOTIF=01-\${netX/mac:hexhyp} hwimage.url=http://10.0.2.2:${port}/ hwimage.token=secret-token-123\ninitrd http://10.0.2.2:${port}/initrd\nboot\n`,
    )
    const log = join(work, 'serial.log')
    const text = await boot(
      [
        '-accel',
        'tcg',
        '-machine',
        'pc',
        '-m',
        '2048',
        '-smp',
        '2',
        '-nodefaults',
        '-display',
        'none',
        '-netdev',
        `user,id=n0,tftp=${join(work, 'tftp')},bootfile=boot.ipxe`,
        '-device',
        'virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56,bootindex=1',
      ],
      log,
      180_000,
      finished,
    )
    checkConsole(text, log)
  } finally {
    server.close()
    await rm(work, { recursive: true, force: true })
  }
})

test('deploy environment boots under OVMF with Secure Boot: shim → grubnetx64 → signed kernel over TFTP', {
  timeout: 300_000,
}, async () => {
  await environment()
  const work = await mkdtemp(join(tmpdir(), 'deploy-sb-'))
  try {
    const tftp = join(work, 'tftp')
    await mkdir(join(tftp, 'grub/x86_64-efi'), { recursive: true })
    await copyFile(SHIM, join(tftp, 'shimx64.efi'))
    // Shim loads grubx64.efi from beside its own bootfile.
    await copyFile(GRUBNET, join(tftp, 'grubx64.efi'))
    await symlink(join(DIR, 'vmlinuz'), join(tftp, 'vmlinuz'))
    await symlink(join(DIR, 'initrd'), join(tftp, 'initrd'))
    const cfg = `set timeout=0\nmenuentry deploy {\n  linux (tftp)/vmlinuz console=tty0 console=ttyS0,115200n8 hwimage.mac=52:54:00:12:34:56 hwimage.token=secret-token-123\n  initrd (tftp)/initrd\n}\n`
    await writeFile(join(tftp, 'grub/grub.cfg'), cfg)
    await writeFile(join(tftp, 'grub/x86_64-efi/grub.cfg'), cfg)
    const vars = join(work, 'vars.fd')
    await copyFile(OVMF_FILES['uefi-sb'].varsTemplate, vars)
    const log = join(work, 'serial.log')
    const text = await boot(
      [
        '-accel',
        'tcg',
        '-machine',
        'q35,smm=on',
        '-m',
        '2048',
        '-smp',
        '2',
        '-nodefaults',
        '-display',
        'none',
        '-global',
        'driver=cfi.pflash01,property=secure,value=on',
        '-drive',
        `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_FILES['uefi-sb'].code}`,
        '-drive',
        `if=pflash,format=raw,unit=1,file=${vars}`,
        '-netdev',
        `user,id=n0,tftp=${tftp},bootfile=shimx64.efi`,
        '-device',
        'virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56,romfile=,bootindex=1',
      ],
      log,
      280_000,
      finished,
    )
    assert.match(text, /secureboot: Secure boot enabled/, 'the kernel says Secure Boot is enabled')
    assert.match(text, /Kernel is locked down from EFI Secure Boot/, 'lockdown is on')
    checkConsole(text, log)
    const inv = new RegExp(`${DEPLOY_MARKERS.inventoryBegin}\\n(.*)\\n`).exec(text)!
    assert.equal((JSON.parse(inv[1]!) as { firmware: string }).firmware, 'uefi-secureboot')
  } finally {
    await rm(work, { recursive: true, force: true })
  }
})
