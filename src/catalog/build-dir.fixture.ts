// A build directory as `hwimage build -o` leaves it, made small and fast: the installer's
// fixture image (a real GPT disk with ext4 and FAT, its .img.zst and .img.bmap, a .qcow2
// if asked) plus a manifest.json of the real shape and a SHA256SUMS listing the outputs
// the way build/outputs.ts writes it. Each call makes a different image (random data).

import { promises as fsp } from 'node:fs'
import path from 'node:path'
import type { Manifest } from '../build/manifest.js'
import { writeSums } from '../build/outputs.js'
import { DEFAULT_SPEC_YAML, type Flavor, parseSpec } from '../build/spec.js'
import { type FixtureImage, makeFixtureImage } from '../install/image.fixture.js'

/** Options for makeBuildDir. */
export interface BuildDirOptions {
  /** The build's date (ISO 8601); its day is the serial. */
  date?: string
  flavor?: Flavor
  qcow2?: boolean
}

/** A made build directory. */
export interface TestBuild {
  dir: string
  fx: FixtureImage
  manifest: Manifest
}

/** Makes a build directory `dir` (created) holding debian-12-FLAVOR-amd64.*. */
export async function makeBuildDir(dir: string, opts: BuildDirOptions = {}): Promise<TestBuild> {
  const flavor = opts.flavor ?? 'server'
  const name = `debian-12-${flavor}-amd64`
  await fsp.mkdir(dir, { recursive: true })
  const fx = await makeFixtureImage(dir, {
    name,
    formats: opts.qcow2 ? ['zst', 'qcow2'] : ['zst'],
    rootDataBytes: 1 << 20,
  })
  // makeFixtureImage's SHA256SUMS lists what it made; a build lists the image, .zst, .bmap (and .qcow2).
  const files = await writeSums(dir, [fx.img, fx.zst, fx.bmap, ...(opts.qcow2 ? [fx.qcow2] : [])])
  const spec = parseSpec(DEFAULT_SPEC_YAML.replace('flavor: server', `flavor: ${flavor}`))
  const mappedBytes = (await fsp.readFile(fx.bmap, 'utf8')).match(/<MappedBlocksCount>\s*(\d+)/)?.[1]
  const manifest: Manifest = {
    hwimage: { manifestVersion: 1, version: '0.1.0' },
    name,
    spec,
    packages: {
      'cloud-init': '22.4.2-1+deb12u1',
      'grub-efi-amd64-signed': '1+2.06+13+deb12u1',
      'linux-image-6.1.0-57-amd64': '6.1.158-1',
      'shim-signed': '1.44~1+deb12u1+15.8-1~deb12u1',
      systemd: '252.39-1~deb12u1',
    },
    kernel: {
      flavor,
      version: '6.1.0-57-amd64',
      footprintBytes: 37_934_027,
      initrdBytes: 23_196_577,
      modules: ['ahci', 'nvme', 'virtio_blk'],
    },
    partitions: fx.gpt.partitions.map((p) => ({
      number: p.number,
      name: p.name,
      typeGuid: p.typeGuid,
      uniqueGuid: p.uniqueGuid,
      firstLba: String(p.firstLba),
      lastLba: String(p.lastLba),
      filesystem: p.number === 1 ? 'ext4' : p.number === 15 ? 'vfat' : 'none',
      uuid: '',
      label: p.number === 1 ? 'root' : p.number === 15 ? 'ESP' : '',
    })),
    image: {
      file: path.basename(fx.img),
      sizeBytes: fx.size,
      mappedBytes: Number(mappedBytes ?? 0) * 4096,
      sectorSize: 512,
      diskGuid: fx.gpt.diskGuid,
    },
    files,
    build: { seconds: 1, date: opts.date ?? '2026-12-02T10:27:20.663Z', host: 'test' },
  }
  await fsp.writeFile(path.join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`)
  return { dir, fx, manifest }
}

/**
 * A copy of a build whose .img.zst differs (a zstd skippable frame appended, RFC 8878
 * §3.1.2: decoders skip it) and whose SHA256SUMS and manifest say so: another version of
 * the same product, made in milliseconds. `date` sets its build date.
 */
export async function variantBuild(from: TestBuild, dir: string, n: number, date?: string): Promise<TestBuild> {
  await fsp.mkdir(dir, { recursive: true })
  for (const name of await fsp.readdir(from.dir))
    if ((await fsp.stat(path.join(from.dir, name))).isFile())
      await fsp.copyFile(path.join(from.dir, name), path.join(dir, name))
  const zst = path.join(dir, path.basename(from.fx.zst))
  const frame = Buffer.alloc(12)
  frame.writeUInt32LE(0x184d2a5e, 0)
  frame.writeUInt32LE(4, 4)
  frame.writeUInt32LE(n, 8)
  await fsp.appendFile(zst, frame)
  const img = path.join(dir, path.basename(from.fx.img))
  const outs = [img, zst, `${img}.bmap`]
  const qcow2 = path.join(dir, path.basename(from.fx.qcow2))
  if (
    await fsp.stat(qcow2).then(
      () => true,
      () => false,
    )
  )
    outs.push(qcow2)
  const files = await writeSums(dir, outs)
  const manifest: Manifest = {
    ...from.manifest,
    files,
    build: { ...from.manifest.build, date: date ?? from.manifest.build.date },
  }
  await fsp.writeFile(path.join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`)
  return {
    dir,
    fx: { ...from.fx, dir, img, zst, bmap: `${img}.bmap`, qcow2, sums: path.join(dir, 'SHA256SUMS') },
    manifest,
  }
}
