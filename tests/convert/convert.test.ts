// hwimage convert on the project's cloud-kernel build (laid out like Debian's official
// cloud image: GPT, root 1, BIOS boot 14, ESP 15), end to end with the real tools:
//   1. the conversion (server kernel, the default): the manifest's convertedFrom and diff,
//      the table, ids and the other partitions unchanged, e2fsck and sgdisk clean, the
//      extended attributes kept, `hwimage inspect` showing the new kernel;
//   2. the lab, input and output on the same cells (SeaBIOS and OVMF with Secure Boot ×
//      virtio-blk, AHCI, MegaRAID × virtio-net, e1000e): the output passes every cell, the
//      input fails the AHCI, MegaRAID and e1000e ones; `hwimage test --compare` side by side;
//   3. upgradeable: one boot of the converted image (OVMF Secure Boot, AHCI, e1000e) runs
//      `apt-get install --reinstall` of its kernel package and update-grub from Debian's
//      mirror, reboots, and boots again.
// Every QEMU boot runs under flock /tmp/hwimage-qemu.lock. `make test-convert` (not make test).

import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { mkdir, mkdtemp, open, readFile, rm, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import type { ConvertManifest } from '../../src/convert/convert-image.js'
import { bootMachine } from '../../src/lab/boot.js'
import type { MatrixResult } from '../../src/lab/matrix.js'
import { classifyNic, classifyStorage, loadDeviceCatalog } from '../../src/tools/qemu-devices.js'
import { macAddressFor } from '../../src/tools/qemu.js'
import { run } from '../../src/tools/run.js'

const CLI = join(import.meta.dirname, '../../bin/hwimage')
const LOCK = ['flock', '/tmp/hwimage-qemu.lock']
const MiB = 1 << 20
const cloudDir = process.env.HWIMAGE_TEST_CLOUD_IMAGE_DIR ?? ''
const work = process.env.HWIMAGE_CONVERT_WORK ?? join(tmpdir(), 'hwimage-convert-test')
const outDir = join(work, 'converted')

interface InputManifest {
  name: string
  image: { file: string }
  partitions: { number: number; uniqueGuid: string; firstLba: string; lastLba: string; uuid: string; label: string }[]
  kernel: { flavor: string; version: string }
}

const cloudManifest = (): InputManifest => JSON.parse(readFileSync(join(cloudDir, 'manifest.json'), 'utf8'))
let converted: ConvertManifest | undefined

async function sha256Range(file: string, offset: number, length: number): Promise<string> {
  const h = createHash('sha256')
  const fh = await open(file, 'r')
  try {
    const buf = Buffer.alloc(4 * MiB)
    for (let at = 0; at < length; at += buf.length) {
      const n = Math.min(buf.length, length - at)
      await fh.read(buf, 0, n, offset + at)
      h.update(buf.subarray(0, n))
    }
  } finally {
    await fh.close()
  }
  return h.digest('hex')
}

test('convert turns the cloud-kernel build into a server-kernel image: same table, ids and other partitions, the diff in the manifest', async () => {
  assert.ok(
    existsSync(join(cloudDir, 'manifest.json')),
    'HWIMAGE_TEST_CLOUD_IMAGE_DIR names the cloud-flavor build (make test-convert)',
  )
  await rm(work, { recursive: true, force: true })
  await mkdir(work, { recursive: true })
  const input = cloudManifest()
  const inputImage = join(cloudDir, input.image.file)
  const started = Date.now()
  const r = await run([CLI, 'convert', `${inputImage}.zst`, '-o', outDir, '--json'])
  const seconds = (Date.now() - started) / 1000
  const m = JSON.parse(r.stdout) as ConvertManifest
  converted = m
  console.log(`conversion took ${seconds.toFixed(0)} s`)
  console.log(`diff: ${JSON.stringify(m.convertedFrom.diff.categories)}; other: ${m.convertedFrom.diff.other.length}`)

  // The kernel: Debian's generic package, cut to the server set; the cloud kernel purged.
  assert.equal(m.kernel.flavor, 'server')
  assert.match(m.kernel.version, /^\d+\.\d+\.\d+-\d+-amd64$/)
  assert.ok(m.packages['linux-image-amd64'], 'linux-image-amd64 installed (apt keeps upgrading it)')
  assert.equal(m.packages['linux-image-cloud-amd64'], undefined)
  assert.ok(!Object.keys(m.packages).some((p) => p.includes('cloud-amd64')), 'no cloud kernel package left')
  for (const mod of ['ahci', 'megaraid_sas', 'e1000e']) assert.ok(m.kernel.modules.includes(mod), `module ${mod}`)
  assert.deepEqual(Object.keys(m.convertedFrom.kernel.packages).sort(), [
    `linux-image-${input.kernel.version}`,
    'linux-image-cloud-amd64',
  ])
  assert.deepEqual(m.convertedFrom.kernel.versions, [input.kernel.version])
  assert.equal(
    m.convertedFrom.sha256,
    (await readFile(join(cloudDir, 'SHA256SUMS'), 'utf8')).match(/^(\w+)\s+\S+\.zst$/m)?.[1],
  )
  assert.equal(m.convertedFrom.format, 'zstd')
  assert.deepEqual(m.convertedFrom.boot, { bios: 'kept', uefi: 'kept' })

  // The diff: kernel, modules, initramfs, GRUB and apt changed; nothing else.
  const c = m.convertedFrom.diff.categories
  for (const k of ['kernel', 'modules', 'initramfs', 'grub', 'apt'] as const)
    assert.ok(c[k].added + c[k].removed + c[k].changed > 0, `${k} changed`)
  assert.deepEqual(m.convertedFrom.diff.other, [], 'nothing outside kernel, modules, initramfs, GRUB and apt state')
  // What rdump alone would lose was carried over: hard links, device nodes, file capabilities.
  assert.ok(m.convertedFrom.tree.xattrs > 0, 'extended attributes set again')

  // The table: the same partitions, GUIDs, LBAs; the root's UUID and label.
  const image = join(outDir, m.image.file)
  const rows = (p: InputManifest['partitions']) =>
    p.map((x) => ({ n: x.number, g: x.uniqueGuid, f: x.firstLba, l: x.lastLba })).sort((a, b) => a.n - b.n)
  assert.deepEqual(rows(m.partitions), rows(input.partitions))
  const root = input.partitions.find((p) => p.number === 1)!
  assert.equal(m.convertedFrom.rootFs.uuid, root.uuid)
  const dump = (await run(['dumpe2fs', '-h', `${image}?offset=${Number(root.firstLba) * 512}`])).stdout
  assert.match(dump, new RegExp(`Filesystem UUID:\\s+${root.uuid}`))
  assert.match(dump, new RegExp(`Filesystem volume name:\\s+${root.label}`))
  assert.match((await run(['sgdisk', '-v', image])).stdout, /No problems found/)
  await run(['e2fsck', '-fn', `${image}?offset=${Number(root.firstLba) * 512}`])
  // The BIOS boot and ESP partitions are byte for byte the input's, and so is the MBR boot code.
  for (const n of [14, 15]) {
    const p = input.partitions.find((x) => x.number === n)!
    const off = Number(p.firstLba) * 512
    const len = (Number(p.lastLba) - Number(p.firstLba) + 1) * 512
    assert.equal(
      await sha256Range(image, off, len),
      await sha256Range(inputImage, off, len),
      `partition ${n} unchanged`,
    )
  }
  assert.equal(await sha256Range(image, 0, 440), await sha256Range(inputImage, 0, 440), 'MBR boot code unchanged')
  // ping's file capability survived the read-out and write-back.
  const ea = await run(['debugfs', '-R', 'ea_list /usr/bin/ping', `${image}?offset=${Number(root.firstLba) * 512}`])
  const eaIn = await run([
    'debugfs',
    '-R',
    'ea_list /usr/bin/ping',
    `${inputImage}?offset=${Number(root.firstLba) * 512}`,
  ])
  assert.equal(ea.stdout, eaIn.stdout)

  // The outputs a build writes, and inspect sees the new kernel.
  for (const f of [
    m.image.file,
    `${m.image.file}.zst`,
    `${m.image.file}.bmap`,
    `${m.name}.qcow2`,
    'SHA256SUMS',
    'manifest.json',
  ])
    assert.ok(existsSync(join(outDir, f)), f)
  await run(['sha256sum', '-c', 'SHA256SUMS'], { cwd: outDir })
  const inspect = JSON.parse((await run([CLI, 'inspect', image, '--json'])).stdout) as {
    kernel: { versions: string[] } | null
    boot: { bios: boolean; uefi: boolean; secureBootChain: boolean }
  }
  assert.deepEqual(inspect.kernel?.versions, [m.kernel.version])
  assert.ok(inspect.boot.bios && inspect.boot.uefi && inspect.boot.secureBootChain)
})

const CELLS = [
  '--firmware',
  'bios,uefi-sb',
  '--storage',
  'virtio-blk,ahci,megasas',
  '--nic',
  'virtio-net-pci,e1000e',
  '--cells',
  'all',
  '--jobs',
  '2',
  '--timeout',
  '900',
]

test('the lab: the converted image boots on AHCI, MegaRAID and e1000e under SeaBIOS and OVMF Secure Boot, and on virtio; the input does not; --compare shows both', async () => {
  assert.ok(converted, 'the conversion test ran first')
  const outReport = join(work, 'lab-converted')
  const inReport = join(work, 'lab-input')
  const lab = async (image: string, report: string): Promise<MatrixResult> => {
    const r = await run([...LOCK, CLI, 'test', image, ...CELLS, '--report', report, '--json'], { okStatus: [0, 1] })
    return JSON.parse(r.stdout) as MatrixResult
  }
  const out = await lab(outDir, outReport)
  const inp = await lab(cloudDir, inReport)
  const key = (c: MatrixResult['cells'][number]) => `${c.firmware} ${c.storage} ${c.nic}`
  const booted = out.cells.filter((c) => c.status !== 'n/a')
  assert.equal(booted.length, 10, 'ten cells (OVMF does not boot from MegaRAID)')
  for (const c of booted) assert.equal(c.status, 'pass', `${key(c)}: ${c.diagnosis?.code ?? ''} ${c.serialLog ?? ''}`)
  for (const c of booted.filter((x) => x.firmware === 'uefi-sb')) assert.equal(c.secureBoot, 'enabled', key(c))
  for (const c of inp.cells.filter((x) => x.status !== 'n/a')) {
    const hardware = c.storage === 'ahci' || c.storage === 'megasas' || c.nic === 'e1000e'
    assert.equal(c.status, hardware ? 'fail' : 'pass', `input ${key(c)}: ${c.diagnosis?.code ?? ''}`)
  }
  const cmp = await run([CLI, 'test', '--compare', inReport, outReport])
  console.log(cmp.stdout)
  assert.match(cmp.stdout, /cloud/)
  assert.match(cmp.stdout, /server/)
})

test('an input without BIOS boot code and without shim on its ESP gets both installed, and boots under SeaBIOS and OVMF Secure Boot', async () => {
  const input = cloudManifest()
  const dir = await mkdtemp(join(work, 'noboot-'))
  const bare = join(dir, 'bare.img')
  await run(['cp', '--sparse=always', join(cloudDir, input.image.file), bare])
  // No BIOS boot code: the MBR's 440 bytes and the BIOS boot partition zeroed.
  const part = (n: number) => input.partitions.find((p) => p.number === n)!
  const bios = part(14)
  const esp = part(15)
  const fh = await open(bare, 'r+')
  try {
    await fh.write(Buffer.alloc(440), 0, 440, 0)
    const len = (Number(bios.lastLba) - Number(bios.firstLba) + 1) * 512
    await fh.write(Buffer.alloc(len), 0, len, Number(bios.firstLba) * 512)
  } finally {
    await fh.close()
  }
  // No shim, no GRUB on the ESP (the FAT itself stays).
  const espAt = `${bare}@@${Number(esp.firstLba) * 512}`
  await run(['mdeltree', '-i', espAt, '::/EFI/BOOT', '::/EFI/debian'])
  assert.doesNotMatch((await run(['mdir', '-/', '-b', '-i', espAt, '::/'])).stdout, /bootx64/i)

  const out = join(dir, 'out')
  const m = JSON.parse((await run([CLI, 'convert', bare, '-o', out, '--json'])).stdout) as ConvertManifest
  assert.deepEqual(m.convertedFrom.boot, { bios: 'installed', uefi: 'installed' })
  assert.equal(m.convertedFrom.format, 'raw')
  const image = join(out, m.image.file)
  assert.match((await run(['sgdisk', '-v', image])).stdout, /No problems found/)
  const listing = (await run(['mdir', '-/', '-b', '-i', `${image}@@${Number(esp.firstLba) * 512}`, '::/EFI'])).stdout
  for (const f of [/EFI\/BOOT\/BOOTX64\.EFI/i, /EFI\/BOOT\/grubx64\.efi/i, /EFI\/debian\/shimx64\.efi/i])
    assert.match(listing, f)
  const inspect = JSON.parse((await run([CLI, 'inspect', image, '--json'])).stdout) as {
    boot: { bios: boolean; uefi: boolean; secureBootChain: boolean }
  }
  assert.deepEqual(inspect.boot, { ...inspect.boot, bios: true, uefi: true, secureBootChain: true })

  // Both ways of booting, on virtio (the boot code is what is tested here, not drivers).
  const r = await run(
    [
      ...LOCK,
      CLI,
      'test',
      out,
      '--firmware',
      'bios,uefi-sb',
      '--storage',
      'virtio-blk',
      '--nic',
      'virtio-net-pci',
      '--jobs',
      '2',
      '--timeout',
      '900',
      '--report',
      join(dir, 'lab'),
      '--json',
    ],
    { okStatus: [0, 1] },
  )
  const lab = JSON.parse(r.stdout) as MatrixResult
  assert.equal(lab.cells.length, 2)
  for (const c of lab.cells)
    assert.equal(c.status, 'pass', `${c.firmware}: ${c.diagnosis?.code ?? ''} ${c.serialLog ?? ''}`)
  assert.equal(lab.cells.find((c) => c.firmware === 'uefi-sb')?.secureBoot, 'enabled')
  await rm(dir, { recursive: true, force: true })
})

test('the converted image stays upgradeable: apt-get install --reinstall of its kernel and update-grub in the machine, then it boots again', async () => {
  assert.ok(converted, 'the conversion test ran first')
  const dir = await mkdtemp(join(work, 'upgrade-'))
  const disk = join(dir, 'disk.img')
  await writeFile(disk, '')
  await truncate(disk, 8 * 1024 * MiB)
  const pkg = `linux-image-${converted.kernel.version}`
  // Each step timed in the guest (HWIMAGE-STEP name seconds), and each kernel postinst.d hook
  // by stamps around it (HWIMAGE-STAMP name epoch): the server-modules hook, the initramfs, update-grub.
  const stamp = (name: string) =>
    `printf '#!/bin/sh\\necho "HWIMAGE-STAMP ${name} $(date +%s)" > /dev/ttyS0\\n' > /etc/kernel/postinst.d/${name} && chmod 755 /etc/kernel/postinst.d/${name}`
  const script = [
    `echo HWIMAGE-UPGRADE-START > /dev/ttyS0`,
    't() { n=$1; shift; s=$(date +%s); "$@" > /dev/ttyS0 2>&1; r=$?; echo "HWIMAGE-STEP $n $(( $(date +%s) - s ))" > /dev/ttyS0; return $r; }',
    ...['00-hwimage-t0', 'b0-hwimage-t1', 'j0-hwimage-t2', 'zzz-hwimage-t3'].map(stamp),
    `t update apt-get update`,
    `t reinstall env DEBIAN_FRONTEND=noninteractive apt-get install --reinstall -y ${pkg}`,
    `t update-grub update-grub`,
    'rm -f /etc/kernel/postinst.d/*-hwimage-t?',
    `echo "HWIMAGE-UPGRADE-OK $(find /lib/modules/$(uname -r)/kernel -name '*.ko' | wc -l) $(find /lib/modules/$(uname -r)/kernel -name '*.ko.xz' | wc -l)" > /dev/ttyS0`,
    'systemctl reboot',
  ].join(' && ')
  const seed = join(dir, 'seed.yaml')
  await writeFile(
    seed,
    JSON.stringify({
      hostname: 'converted-upgrade',
      user_data: {
        bootcmd: [['sh', '-c', 'echo "HWIMAGE-BOOT $(cat /proc/sys/kernel/random/boot_id)" > /dev/ttyS0']],
        runcmd: [['sh', '-c', `${script} || echo HWIMAGE-UPGRADE-FAILED > /dev/ttyS0`]],
      },
    }),
  )
  await run([CLI, 'install', join(outDir, converted.image.file), '--disk', disk, '--seed', seed, '--yes'])
  const catalog = await loadDeviceCatalog()
  const serial = join(dir, 'serial.log')
  const text = () => (existsSync(serial) ? readFileSync(serial, 'utf8') : '')
  const bootsSeen = () => new Set(text().match(/HWIMAGE-BOOT \S+/g) ?? []).size
  // The boot under the QEMU lock: a child that waits for it, then this process boots.
  const holder = run([
    'flock',
    '/tmp/hwimage-qemu.lock',
    'sh',
    '-c',
    `echo locked > ${join(dir, 'locked')}; while [ ! -e ${join(dir, 'release')} ]; do sleep 1; done`,
  ])
  while (!existsSync(join(dir, 'locked'))) await new Promise((r) => setTimeout(r, 1000))
  let boot: Awaited<ReturnType<typeof bootMachine>>
  try {
    boot = await bootMachine({
      machine: {
        firmware: 'uefi-sb',
        storage: classifyStorage(catalog, 'ahci'),
        nic: classifyNic(catalog, 'e1000e'),
        disks: [{ path: disk, format: 'raw', role: 'boot' }],
        memoryMiB: 1536,
        cpus: 2,
        macAddress: macAddressFor(0xc0ffee),
        name: 'convert-upgrade',
      },
      workDir: dir,
      timeoutMs: 40 * 60_000,
      done: (c) => bootsSeen() >= 2 || /HWIMAGE-UPGRADE-FAILED/.test(text()) || c.has('panic'),
    })
  } finally {
    await writeFile(join(dir, 'release'), '')
    await holder
  }
  const log = text()
  const steps = [...log.matchAll(/HWIMAGE-STEP (\S+) (\d+)/g)].map((x) => `${x[1]} ${x[2]} s`)
  const stamps = [...log.matchAll(/HWIMAGE-STAMP \S+-t(\d) (\d+)/g)].map((x) => Number(x[2]))
  if (stamps.length === 4)
    console.log(
      `in the guest: ${steps.join(', ')}; hooks: server-modules ${stamps[1]! - stamps[0]!} s, initramfs ${stamps[2]! - stamps[1]!} s, update-grub ${stamps[3]! - stamps[2]!} s`,
    )
  else console.log(`in the guest: ${steps.join(', ')}`)
  const ok = /HWIMAGE-UPGRADE-OK (\d+) (\d+)/.exec(log)
  assert.ok(ok, `reinstall and update-grub succeeded (${serial})`)
  // The reinstalled package's .ko files were cut to the server set and compressed, none left beside a .ko.xz.
  assert.equal(ok[1], '0', 'no uncompressed .ko left after the reinstall')
  assert.equal(Number(ok[2]), converted.kernel.modules.length, 'the server set, as .ko.xz')
  assert.match(log, new RegExp(`Setting up ${pkg.replaceAll('.', '\\.')}`), 'apt reinstalled the kernel package')
  assert.equal(bootsSeen(), 2, `booted again after the reboot (${boot.outcome}, ${serial})`)
  assert.ok((log.match(/Secure boot enabled/g) ?? []).length >= 2, 'Secure Boot in both boots')
  console.log(`upgrade boot with reboot: ${boot.seconds.toFixed(0)} s`)
  await rm(dir, { recursive: true, force: true })
})
