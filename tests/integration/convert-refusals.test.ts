// hwimage convert's refusals of bad input, through the real CLI: each a named error with
// exit 2 and nothing in DIR. The fixtures are made here in seconds, with the real tools:
// sgdisk for the table, mke2fs -d of a tiny tree for the root file system (no mmdebstrap).

import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { spawnCli } from '../../src/cli/cli.fixture.js'

const MiB = 1 << 20
let dir: string

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hwimage-convert-refusals-'))
})
after(async () => {
  await rm(dir, { recursive: true, force: true })
})

const BOOKWORM = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n'
const dpkgStatus = (arch: string) =>
  `Package: dpkg\nStatus: install ok installed\nArchitecture: ${arch}\nVersion: 1.21.22\n\nPackage: base-files\nStatus: install ok installed\nArchitecture: ${arch}\nVersion: 12.4\n`

/** A GPT image laid out as Debian's (14 BIOS boot, 15 ESP, 1 root), root = `root` (a tree dir, raw bytes, or nothing). */
async function gptImage(
  name: string,
  root: { tree?: Record<string, string>; bytes?: { at: number; data: Uint8Array }[]; rootMiB?: number },
): Promise<string> {
  const rootMiB = root.rootMiB ?? 64
  const image = join(dir, `${name}.img`)
  const total = (1 + 4 + 8 + rootMiB + 1) * MiB
  execFileSync('truncate', ['-s', String(total), image])
  execFileSync(
    'sgdisk',
    ['-n', '14:2048:+4M', '-t', '14:EF02', '-n', '15:0:+8M', '-t', '15:EF00', '-n', '1:0:0', '-t', '1:8304', image],
    {
      stdio: 'ignore',
    },
  )
  const rootOffset = (1 + 4 + 8) * MiB
  if (root.tree) {
    const tree = join(dir, `${name}.tree`)
    for (const [path, text] of Object.entries(root.tree)) {
      await mkdir(join(tree, path, '..'), { recursive: true })
      await writeFile(join(tree, path), text)
    }
    execFileSync('mkfs.ext4', [
      '-F',
      '-q',
      '-b',
      '4096',
      '-L',
      'root',
      '-E',
      `offset=${rootOffset}`,
      '-d',
      tree,
      image,
      String((rootMiB * MiB) / 4096),
    ])
  }
  for (const b of root.bytes ?? []) {
    const fd = (await import('node:fs')).openSync(image, 'r+')
    ;(await import('node:fs')).writeSync(fd, b.data, 0, b.data.length, rootOffset + b.at)
    ;(await import('node:fs')).closeSync(fd)
  }
  return image
}

async function refused(source: string, code: string, args: string[] = []): Promise<{ message: string; hint: string }> {
  const out = join(dir, `out-${code}`)
  const r = await spawnCli(['convert', source, '-o', out, '--json', ...args]).done
  assert.equal(r.status, 2, `exit status (stderr: ${r.stderr})`)
  const err = r.stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map(
      (l) =>
        JSON.parse(l) as {
          event?: string
          code?: string
          message?: string
          hint?: string
          error?: { code: string; message: string; hint?: string }
        },
    )
    .map((e) => e.error ?? e)
    .find((e) => e.code !== undefined)
  assert.ok(err, `a JSON error on stderr: ${r.stderr}`)
  assert.equal(err.code, code, err.message)
  // Nothing in DIR: it was never made, and no scratch directory is left beside it.
  await assert.rejects(readdir(out), { code: 'ENOENT' })
  assert.deepEqual(
    (await readdir(dir)).filter((n) => n.includes('.convert-')),
    [],
  )
  return { message: err.message ?? '', hint: err.hint ?? '' }
}

test('convert refuses a file that is not a disk image (FORMAT_IMAGE)', async () => {
  const f = join(dir, 'notes.txt')
  await writeFile(f, 'these are notes, not a disk\n'.repeat(100))
  const e = await refused(f, 'FORMAT_IMAGE')
  assert.match(e.message, /not a disk image \(text/)
})

test('convert refuses an image with an MBR table and no GPT (FORMAT_GPT)', async () => {
  const image = join(dir, 'mbr.img')
  execFileSync('truncate', ['-s', String(64 * MiB), image])
  execFileSync('sfdisk', ['-q', image], { input: 'label: dos\n,,L\n' })
  const e = await refused(image, 'FORMAT_GPT')
  assert.match(e.message, /no GPT \(it has an MBR partition table\)/)
})

test('convert refuses a GPT image whose partitions hold no ext4 root (CONVERT_NO_ROOT)', async () => {
  const e = await refused(await gptImage('noroot', {}), 'CONVERT_NO_ROOT')
  assert.match(e.message, /partitions: 1, 14, 15/)
})

test('convert refuses a LUKS-encrypted root (CONVERT_ROOT_ENCRYPTED)', async () => {
  const luks = new Uint8Array([0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe, 0, 2])
  await refused(await gptImage('luks', { bytes: [{ at: 0, data: luks }] }), 'CONVERT_ROOT_ENCRYPTED')
})

test('convert refuses an LVM root (CONVERT_ROOT_LVM)', async () => {
  const label = new TextEncoder().encode('LABEL ONE')
  const type = new TextEncoder().encode('LVM2 001')
  await refused(
    await gptImage('lvm', {
      bytes: [
        { at: 512, data: label },
        { at: 512 + 24, data: type },
      ],
    }),
    'CONVERT_ROOT_LVM',
  )
})

test('convert refuses a system that is not Debian and says what it is (CONVERT_NOT_DEBIAN)', async () => {
  const ubuntu = 'PRETTY_NAME="Ubuntu 22.04.4 LTS"\nID=ubuntu\nVERSION_CODENAME=jammy\n'
  const e = await refused(
    await gptImage('ubuntu', { tree: { 'usr/lib/os-release': ubuntu, 'var/lib/dpkg/status': dpkgStatus('amd64') } }),
    'CONVERT_NOT_DEBIAN',
  )
  assert.match(e.message, /it is Ubuntu 22\.04\.4 LTS, not Debian/)
})

test('convert refuses Debian other than bookworm and says which (CONVERT_NOT_BOOKWORM)', async () => {
  const bullseye = 'PRETTY_NAME="Debian GNU/Linux 11 (bullseye)"\nID=debian\nVERSION_CODENAME=bullseye\n'
  const e = await refused(
    await gptImage('bullseye', { tree: { 'etc/os-release': bullseye, 'var/lib/dpkg/status': dpkgStatus('amd64') } }),
    'CONVERT_NOT_BOOKWORM',
  )
  assert.match(e.message, /it is Debian GNU\/Linux 11 \(bullseye\) \("bullseye"\)/)
})

test('convert refuses an architecture other than amd64 (CONVERT_NOT_AMD64)', async () => {
  const e = await refused(
    await gptImage('arm64', { tree: { 'usr/lib/os-release': BOOKWORM, 'var/lib/dpkg/status': dpkgStatus('arm64') } }),
    'CONVERT_NOT_AMD64',
  )
  assert.match(e.message, /built for arm64/)
})

test('convert refuses a root file system with no room for the new kernel, says how much, and names --grow (CONVERT_NO_SPACE)', async () => {
  const e = await refused(
    await gptImage('small', {
      rootMiB: 48,
      tree: { 'usr/lib/os-release': BOOKWORM, 'var/lib/dpkg/status': dpkgStatus('amd64') },
    }),
    'CONVERT_NO_SPACE',
  )
  assert.match(e.message, /has 48 MiB and needs about \d+ MiB with the server kernel/)
  assert.match(e.hint, /--grow \d+M/)
})
