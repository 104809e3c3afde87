// The deploy environment as the Makefile's deploy-env target built it (HWIMAGE_DEPLOY_ENV_DIR):
// within the 64 MiB goal, every part measured, an initramfs the kernel can unpack. Its boots
// (SeaBIOS/iPXE and OVMF Secure Boot) are proved by deploy-e2e.test.ts, which deploys through it.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { run } from '../../src/tools/run.js'
import { DEPLOY_SIZE_GOAL, type DeployManifest } from '../../src/deploy/build-deploy.js'

const DIR = resolve(process.env.HWIMAGE_DEPLOY_ENV_DIR ?? '.cache/deploy-env')

async function environment(): Promise<DeployManifest> {
  const text = await readFile(join(DIR, 'manifest.json'), 'utf8').catch(() => undefined)
  assert.ok(text, `${DIR} holds no deploy environment (run the integration tier through \`make test\`)`)
  return JSON.parse(text) as DeployManifest
}

test('build-deploy: kernel + initramfs within 64 MiB, each part sized, zstd the kernel can unpack', async () => {
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

test('the initramfs runs what the installer runs: hwimage, sgdisk, and mtools writing a FAT (chroot into the unpacked initrd)', async () => {
  await environment()
  const root = await mkdtemp(join(tmpdir(), 'deploy-initrd-'))
  try {
    await run(['sh', '-c', `zstd -dc ${JSON.stringify(join(DIR, 'initrd'))} | cpio -idm --quiet`], { cwd: root })
    const inRoot = (argv: string[]) => run(['chroot', root, ...argv])
    assert.match((await inRoot(['/usr/bin/hwimage', '--version'])).stdout, /^hwimage \d+\.\d+\.\d+/)
    assert.match((await inRoot(['/usr/sbin/sgdisk', '--version'])).stdout, /GPT fdisk/)
    // The seed partition is a FAT written with mtools, which needs glibc's code page 850 module.
    await writeFile(join(root, 'tmp/meta-data'), 'instance-id: x\n')
    await inRoot(['/usr/sbin/mkfs.vfat', '-C', '-n', 'CIDATA', '/tmp/seed.img', '4096'])
    await inRoot(['/usr/bin/mcopy', '-i', '/tmp/seed.img', '/tmp/meta-data', '::/'])
    assert.match((await inRoot(['/usr/bin/mdir', '-i', '/tmp/seed.img', '::'])).stdout, /meta-data/)
  } finally {
    await rm(root, { recursive: true, force: true })
  }
})
