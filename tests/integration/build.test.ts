// The built image's outputs, checked with the reference tools: sgdisk, sfdisk,
// e2fsck, fsck.vfat, bmaptool, sha256sum — and our inspect.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm, open, writeFile, readFile, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { run } from '../../src/tools/run.js'
import { decodeBmap } from '../../src/disk/bmap.js'
import { readSeekTable } from '../../src/io/framed-zstd.js'
import { fileReadAt } from '../../src/io/read-fully.js'
import { testImage, CLI } from './fixture.js'

const image = testImage()
const MiB = 1024 * 1024

function partition(n: number) {
  const p = image.manifest.partitions.find((x) => x.number === n)
  assert.ok(p, `partition ${n} in the manifest`)
  return { ...p, offset: Number(p.firstLba) * 512, bytes: (Number(p.lastLba) - Number(p.firstLba) + 1) * 512 }
}

test('manifest.json records spec, packages, kernel, partitions, sizes, files and build time', () => {
  const m = image.manifest
  assert.equal(m.spec.release, 'bookworm')
  assert.equal(m.kernel.flavor, 'server', 'the default image has the server kernel')
  assert.match(m.kernel.version, /^6\.1\.\d+-\d+-amd64$/)
  for (const pkg of [
    'cloud-init',
    'openssh-server',
    'grub-pc',
    'grub-efi-amd64-signed',
    'shim-signed',
    'cloud-guest-utils',
    `linux-image-${m.kernel.version}`,
  ]) {
    assert.ok(m.packages[pkg], `package ${pkg} is listed with a version`)
  }
  assert.ok(m.kernel.footprintBytes <= 40 * MiB, `server kernel footprint ${m.kernel.footprintBytes} is at most 40 MiB`)
  assert.ok(m.kernel.footprintBytes > 20 * MiB, 'and still a real kernel with modules')
  assert.ok(m.kernel.initrdBytes > 5 * MiB)
  for (const mod of [
    'ahci',
    'nvme',
    'megaraid_sas',
    'mptsas',
    'mpt3sas',
    'e1000e',
    'igb',
    'ixgbe',
    'i40e',
    'ice',
    'mlx5_core',
    'bnxt_en',
    'tg3',
    'virtio_net',
    'virtio_blk',
    'xhci_pci',
    'usb_storage',
    'bonding',
    '8021q',
    'ipmi_si',
  ]) {
    assert.ok(m.kernel.modules.includes(mod), `module ${mod} shipped`)
  }
  for (const mod of ['snd_hda_intel', 'iwlwifi', 'btusb', 'amdgpu', 'nouveau'])
    assert.ok(!m.kernel.modules.includes(mod), `desktop module ${mod} left out`)
  assert.deepEqual(
    m.partitions.map((p) => p.number).sort((a, b) => a - b),
    [1, 14, 15],
  )
  assert.equal(m.image.sizeBytes, 2 * 1024 * MiB)
  assert.ok(m.image.mappedBytes > 200 * MiB && m.image.mappedBytes < m.image.sizeBytes)
  assert.deepEqual(
    m.files.map((f) => f.name).sort(),
    [`${m.name}.img`, `${m.name}.img.bmap`, `${m.name}.img.zst`, `${m.name}.qcow2`].sort(),
  )
  assert.ok(m.build.seconds > 0)
})

test('every partition starts and ends on a 1 MiB boundary, 14 BIOS boot, 15 ESP, 1 root last', () => {
  const rows = [partition(14), partition(15), partition(1)]
  for (const p of rows) {
    assert.equal(p.offset % MiB, 0, `partition ${p.number} start`)
    assert.equal((p.offset + p.bytes) % MiB, 0, `partition ${p.number} end`)
  }
  assert.ok(rows[0]!.offset < rows[1]!.offset && rows[1]!.offset < rows[2]!.offset, 'root is last')
})

test("sgdisk -v finds no problems and sfdisk --json lists the manifest's partitions", async () => {
  const v = await run(['sgdisk', '-v', image.img])
  assert.match(v.stdout, /No problems found/)
  const j = JSON.parse((await run(['sfdisk', '--json', image.img])).stdout) as {
    partitiontable: {
      label: string
      partitions: { start: number; size: number; type: string; uuid: string; name: string }[]
    }
  }
  assert.equal(j.partitiontable.label, 'gpt')
  for (const row of image.manifest.partitions) {
    const p = j.partitiontable.partitions.find((x) => x.start === Number(row.firstLba))
    assert.ok(p, `sfdisk sees partition ${row.number}`)
    assert.equal(p.size, Number(row.lastLba) - Number(row.firstLba) + 1)
    assert.equal(p.type, row.typeGuid)
    assert.equal(p.uuid, row.uniqueGuid)
    assert.equal(p.name, row.name)
  }
})

test("e2fsck -fn finds the root filesystem clean, with the manifest's UUID", async () => {
  const root = partition(1)
  await run(['e2fsck', '-fn', `${image.img}?offset=${root.offset}`])
  const sb = await run(['dumpe2fs', '-h', `${image.img}?offset=${root.offset}`])
  assert.match(sb.stdout, new RegExp(`Filesystem UUID:\\s+${root.uuid}`))
})

test('fsck.vfat -n finds the ESP clean, and it holds shim, GRUB and the stub config', async () => {
  const esp = partition(15)
  const dir = await mkdtemp(join(tmpdir(), 'hwimage-esp-'))
  try {
    const copy = join(dir, 'esp.img')
    const fh = await open(image.img, 'r')
    const buf = Buffer.alloc(esp.bytes)
    await fh.read(buf, 0, esp.bytes, esp.offset)
    await fh.close()
    await writeFile(copy, buf)
    await run(['fsck.vfat', '-n', copy])
    const list = (await run(['mdir', '-b', '-/', '-i', copy, '::/EFI'], { env: { MTOOLS_SKIP_CHECK: '1' } })).stdout
    for (const f of [
      'EFI/BOOT/BOOTX64.EFI',
      'EFI/BOOT/grubx64.efi',
      'EFI/BOOT/mmx64.efi',
      'EFI/debian/grub.cfg',
      'EFI/debian/shimx64.efi',
    ]) {
      assert.ok(list.toLowerCase().includes(f.toLowerCase()), `ESP has ${f}`)
    }
    const stub = (await run(['mtype', '-i', copy, '::/EFI/debian/grub.cfg'], { env: { MTOOLS_SKIP_CHECK: '1' } }))
      .stdout
    assert.match(stub, new RegExp(`search.fs_uuid ${partition(1).uuid} root`))
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('the .zst is seekable: independent 16 MiB frames covering the image, and its seek table at the end', async () => {
  const fh = await open(image.zst, 'r')
  try {
    const table = await readSeekTable(fileReadAt(fh), (await fh.stat()).size, image.zst)
    assert.ok(table, 'the .zst ends with a seek table')
    assert.equal(table.imageSize, (await stat(image.img)).size)
    assert.equal(table.frames.length, Math.ceil(table.imageSize / (16 * MiB)))
    assert.ok(table.frames.every((f) => f.imageSize === 16 * MiB))
  } finally {
    await fh.close()
  }
})

test('bmaptool copy with our .bmap writes a disk identical to the image in every mapped range', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hwimage-bmap-'))
  try {
    const target = join(dir, 'disk.img')
    await run(['bmaptool', 'copy', '--bmap', image.bmap, image.zst, target])
    const bmap = decodeBmap(await readFile(image.bmap, 'utf8'))
    assert.equal(bmap.imageSize, (await stat(image.img)).size)
    const a = await open(image.img, 'r')
    const b = await open(target, 'r')
    try {
      const bufA = Buffer.alloc(4 * MiB)
      const bufB = Buffer.alloc(4 * MiB)
      let compared = 0
      for (const r of bmap.ranges) {
        let off = r.first * bmap.blockSize
        const end = Math.min((r.last + 1) * bmap.blockSize, bmap.imageSize)
        while (off < end) {
          const n = Math.min(bufA.length, end - off)
          await a.read(bufA, 0, n, off)
          await b.read(bufB, 0, n, off)
          assert.ok(bufA.subarray(0, n).equals(bufB.subarray(0, n)), `bytes differ in the range at ${off}`)
          off += n
          compared += n
        }
      }
      assert.equal(compared, image.manifest.image.mappedBytes)
    } finally {
      await a.close()
      await b.close()
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('the .qcow2 is compressed with zstd clusters, qemu-img check finds it clean, and qemu-img compare finds it equal to the raw image', async () => {
  const m = image.manifest
  const q = join(image.dir, `${m.name}.qcow2`)
  const info = JSON.parse((await run(['qemu-img', 'info', '--output=json', q])).stdout) as {
    format: string
    'virtual-size': number
    'actual-size': number
    'format-specific': { data: { 'compression-type': string } }
  }
  assert.equal(info.format, 'qcow2')
  assert.equal(info['virtual-size'], m.image.sizeBytes)
  assert.equal(info['format-specific'].data['compression-type'], 'zstd')
  // Compressed: well below the mapped bytes it holds.
  const bytes = (await stat(q)).size
  assert.ok(bytes < m.image.mappedBytes * 0.6, `qcow2 of ${bytes} bytes against ${m.image.mappedBytes} mapped`)
  const check = await run(['qemu-img', 'check', '--output=json', q])
  const report = JSON.parse(check.stdout) as { 'check-errors': number; corruptions?: number; leaks?: number }
  assert.equal(report['check-errors'], 0)
  assert.equal(report.corruptions ?? 0, 0)
  assert.equal(report.leaks ?? 0, 0)
  const cmp = await run(['qemu-img', 'compare', '-f', 'raw', '-F', 'qcow2', join(image.dir, m.image.file), q], {
    okStatus: [0, 1],
  })
  assert.equal(cmp.status, 0, `qemu-img compare: ${cmp.stdout.trim()}`)
})

test('SHA256SUMS verifies with sha256sum -c and matches the manifest', async () => {
  const r = await run(['sha256sum', '-c', 'SHA256SUMS'], { cwd: image.dir })
  assert.equal(r.stdout.trim().split('\n').length, 4, 'the image, .zst, .bmap and .qcow2')
  const sums = await readFile(join(image.dir, 'SHA256SUMS'), 'utf8')
  for (const f of image.manifest.files) assert.ok(sums.includes(`${f.sha256}  ${f.name}`))
})

test('hwimage inspect --json finds both boot paths, the kernel, and no problems', async () => {
  const r = await run([CLI, 'inspect', '--json', image.img])
  const i = JSON.parse(r.stdout)
  assert.equal(i.boot.bios, true)
  assert.equal(i.boot.uefi, true)
  assert.equal(i.boot.secureBootChain, true)
  assert.deepEqual(i.kernel.versions, [image.manifest.kernel.version])
  assert.deepEqual(i.problems, [])
})

test('hwimage inspect reports a damaged backup GPT and exits 1', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hwimage-inspect-'))
  try {
    const copy = join(dir, 'damaged.img')
    await run(['cp', '--sparse=always', image.img, copy])
    const fh = await open(copy, 'r+')
    const size = (await fh.stat()).size
    await fh.write(Buffer.from('garbage!'), 0, 8, size - 512 + 16) // inside the backup header's CRC'd bytes
    await fh.close()
    const r = await run([CLI, 'inspect', '--json', copy], { okStatus: [1] })
    const i = JSON.parse(r.stdout)
    assert.equal(i.table.backupOk, false)
    assert.ok(i.problems.some((p: { code: string }) => p.code === 'BACKUP_DAMAGED'))
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
