// The server kernel flavor survives apt (src/build/server-kernel.ts's postinst.d and postrm.d
// hooks), without QEMU: the built test image's root tree is read out (debugfs rdump, no
// mount), and in an unshare chroot of it (build/tree-chroot.ts) Debian's mirror reinstalls
// the kernel package, which unpacks Debian's full tree of uncompressed .ko files. After it
// the module tree is the build's, file for file and byte for byte (the hook compresses with
// the build's xz argv), modules.dep is the build's, and the new initramfs carries the same
// modules; then removing the package leaves none of the hook's .ko.xz behind.
// `make test-convert` (it needs the network and ~1 min): HWIMAGE_TEST_IMAGE_DIR names the build.

import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { test } from 'node:test'
import { runInTreeChroot } from '../../src/build/tree-chroot.js'
import { run } from '../../src/tools/run.js'
import { testImage } from '../integration/fixture.js'

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = []
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      if (e.isDirectory()) await walk(join(d, e.name))
      else out.push(relative(dir, join(d, e.name)))
    }
  }
  if (existsSync(dir)) await walk(dir)
  return out.sort()
}

async function digests(dir: string): Promise<Map<string, string>> {
  const m = new Map<string, string>()
  for (const f of await filesUnder(dir))
    m.set(
      f,
      createHash('sha256')
        .update(await readFile(join(dir, f)))
        .digest('hex'),
    )
  return m
}

/** The module files an initramfs of the tree carries (the tree's own lsinitramfs), without the kernel version. */
async function initramfsModules(tree: string, initrd: string, rootUuid: string): Promise<string[]> {
  const r = await runInTreeChroot(tree, `lsinitramfs ${initrd}`, { rootUuid })
  return r.stdout
    .split('\n')
    .filter((l) => /\.ko(\.\w+)?$/.test(l))
    .map((l) => l.replace(/^.*\/lib\/modules\/[^/]+\//, ''))
    .sort()
}

test('a reinstalled server-flavor kernel package ends as the build made it: the server set as .ko.xz, the same bytes, modules.dep and initramfs; removing it leaves no module behind', async () => {
  const image = testImage()
  const version = image.manifest.kernel.version
  const root = image.manifest.partitions.find((p) => p.number === 1)
  assert.ok(root, 'the manifest lists the root partition')
  const work = await mkdtemp('/var/tmp/hwimage-kernel-upgrade-')
  const tree = join(work, 'root')
  try {
    // rdump of "/" writes the root's entries into the directory itself.
    await mkdir(tree)
    await run(['debugfs', '-R', `rdump / ${tree}`, `${image.img}?offset=${Number(root.firstLba) * 512}`])
    assert.ok(
      existsSync(join(tree, 'usr/bin/xz')),
      'the image has xz for its upgrade hook (built before the hook compressed: rebuild it, make test-images)',
    )
    const modulesDir = join(tree, 'lib/modules', version)
    const kernelDir = join(modulesDir, 'kernel')
    const before = await digests(kernelDir)
    assert.equal(before.size, image.manifest.kernel.modules.length, 'the build shipped one file per module')
    assert.ok(
      [...before.keys()].every((f) => f.endsWith('.ko.xz')),
      'the build compressed every module',
    )
    const depBefore = await readFile(join(modulesDir, 'modules.dep'), 'utf8')
    const initrdIn = `/boot/initrd.img-${version}`
    const initrd = join(tree, initrdIn)
    const initrdBefore = await stat(initrd)
    const inInitrdBefore = await initramfsModules(tree, initrdIn, root.uuid)

    const started = Date.now()
    await runInTreeChroot(
      tree,
      [
        'export DEBIAN_FRONTEND=noninteractive',
        'apt-get -o Acquire::Retries=3 update',
        `apt-get install --reinstall -y linux-image-${version}`,
      ].join('\n'),
      { rootUuid: root.uuid },
    )
    console.log(`apt-get update + reinstall in the chroot: ${((Date.now() - started) / 1000).toFixed(1)} s`)

    const after = await digests(kernelDir)
    assert.deepEqual([...after.keys()], [...before.keys()], 'exactly the server set, each as .ko.xz, no .ko beside it')
    for (const [f, h] of before) assert.equal(after.get(f), h, `${f}: the bytes the build wrote`)
    assert.equal(await readFile(join(modulesDir, 'modules.dep'), 'utf8'), depBefore, 'modules.dep regenerated')
    const order = (await readFile(join(modulesDir, 'modules.order'), 'utf8')).trim().split('\n')
    assert.equal(order.length, before.size, 'modules.order cut to the server set')
    const initrdAfter = await stat(initrd)
    assert.ok(initrdAfter.mtimeMs > initrdBefore.mtimeMs, 'the initramfs was made again')
    assert.deepEqual(
      await initramfsModules(tree, initrdIn, root.uuid),
      inInitrdBefore,
      'the initramfs carries the same modules',
    )
    assert.ok(
      inInitrdBefore.some((f) => /\/ahci\.ko(\.xz)?$/.test(f)),
      `the initramfs carries ahci: ${inInitrdBefore.filter((f) => /ata/.test(f)).join(' ')}`,
    )

    // Removed (as apt autoremove does an old kernel after an upgrade): its .ko.xz go with it.
    await runInTreeChroot(
      tree,
      `DEBIAN_FRONTEND=noninteractive dpkg --remove linux-image-amd64 linux-image-${version}`,
      { rootUuid: root.uuid },
    )
    assert.deepEqual(await filesUnder(kernelDir), [], 'no module of the removed kernel left')
  } finally {
    await rm(work, { recursive: true, force: true })
  }
})
