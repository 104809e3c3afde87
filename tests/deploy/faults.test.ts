// Network deploy faults, real parts only (`make test-deploy`, not in `make test`). Under
// SeaBIOS via iPXE and HTTP, the quicker network boot:
//   - one machine, two blank disks (20 GiB and 1 GiB) on q35's AHCI controller, configured
//     with the cloud-kernel test image, whose kernel has no AHCI driver: serve's pre-flight
//     check refuses it when the inventory arrives (PREFLIGHT_REFUSED naming 8086:2922 and
//     the flavor), nothing installed — the deploy environment itself drives the disks. The
//     operator assigns the default image with hints no disk matches: DEVICE_SELECT with the
//     disks listed; hints choosing the 1 GiB disk (smaller than the image): TARGET_TOO_SMALL,
//     nothing on either disk; hints choosing the 20 GiB disk: the same boot of the deploy
//     environment installs, the machine reboots into its disk and reports its first boot.
//     Four tries in one boot: it stays in the deploy environment after each failure.
//   - an unknown MAC with `unknown_macs: ignore`: serve answers its boot request 404 and
//     serves it nothing else; the machine never appears in the API.
// A wrong or revoked token is refused by serve's routes (src/serve/server.test.ts) and the
// agent's answer to it (src/deploy/agent.test.ts), both against a real serve.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { open, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { DEPLOY_MARKERS } from '../../src/deploy/init-script.js'
import { bootMachine } from '../../src/lab/boot.js'
import { classifyNic, classifyStorage, loadDeviceCatalog } from '../../src/tools/qemu-devices.js'
import {
  DISK_BYTES,
  blankDisk,
  deploy,
  deployEnvironment,
  freePort,
  runCli,
  Serve,
  seedYaml,
  serveConfig,
} from '../integration/deploy-fixture.js'
import { testImage } from '../integration/fixture.js'

const GiB = 1024 ** 3
/** The cloud-kernel test image (make test-images builds it): its kernel cannot drive AHCI. */
const CLOUD_IMAGE = process.env.HWIMAGE_TEST_CLOUD_IMAGE_DIR ?? ''
const images = (): Record<string, string> => ({
  default: testImage().dir,
  ...(CLOUD_IMAGE ? { cloud: CLOUD_IMAGE } : {}),
})
const SMALL_DISK = 1 * GiB

/** True when the file holds only zero bytes: nothing was written to the disk. */
async function allZero(file: string): Promise<boolean> {
  const fh = await open(file, 'r')
  try {
    const buf = Buffer.alloc(8 << 20)
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null)
      if (bytesRead === 0) return true
      for (let i = 0; i < bytesRead; i++) if (buf[i] !== 0) return false
    }
  } finally {
    await fh.close()
  }
}

test('deploy faults: the pre-flight refusal, no disk matching the hints, a disk smaller than the image, then an operator retry that deploys — in one boot of the deploy environment', {
  timeout: 30 * 60_000,
}, async () => {
  deployEnvironment()
  assert.ok(CLOUD_IMAGE, 'HWIMAGE_TEST_CLOUD_IMAGE_DIR names the cloud-kernel test image (make test-deploy)')
  const dir = await mkdtemp('/var/tmp/hwimage-deploy-faults-')
  const mac = '52:54:00:d0:00:11'
  const port = await freePort()
  let serve: Serve | undefined
  try {
    await writeFile(join(dir, 'seed.yaml'), seedYaml('faults-01', 'deploy-faults-1', mac), { mode: 0o600 })
    const config = join(dir, 'serve.yaml')
    await writeFile(
      config,
      serveConfig(dir, port, images(), [
        'unknown_macs: ignore',
        'machines:',
        `  "${mac}": { name: faults-01, image: cloud, seed: seed.yaml }`,
      ]),
    )
    serve = await Serve.start(config)
    const errors: { code: string; message: string }[] = []
    let answered = 0
    let blankAtRefusal = false
    const assign = async (hint: string) => {
      const out = await runCli(
        ['machines', 'assign', mac, '--image', 'default', '--seed', join(dir, 'seed.yaml'), '--disk-hint', hint],
        port,
      )
      assert.equal(out.status, 0, out.stderr)
    }
    const r = await deploy({
      dir,
      firmware: 'bios',
      mac,
      bootfile: 'boot.ipxe',
      tftpRoot: join(dir, 'tftp'),
      port,
      timeoutMs: 25 * 60_000,
      disks: [DISK_BYTES, SMALL_DISK],
      storage: 'ide-hd',
      settled: (doc) => doc.machine.state === 'deployed' || errors.length > 3,
      async onPoll(doc) {
        // A new failure is a "failed" event newer than the last one answered (the preflight
        // check at assign time fails a machine without it passing through deploying).
        const failure = doc?.events.filter((e) => e.kind === 'failed' && e.id > answered).at(-1)
        if (!failure || !doc) return
        answered = failure.id
        errors.push(doc.machine.error as { code: string; message: string })
        // Refused before anything was installed: the disks are still blank.
        if (errors.length === 1)
          blankAtRefusal = (await allZero(join(dir, 'disk0.raw'))) && (await allZero(join(dir, 'disk1.raw')))
        if (errors.length === 1) await assign('min-size=100G')
        else if (errors.length === 2) await assign('max-size=2G')
        else if (errors.length === 3) await assign('min-size=10G')
      },
    })
    const context = `errors ${JSON.stringify(errors)}; states ${r.seen.join(' → ')}; console tail:\n${r.console.slice(-3000)}`
    assert.equal(errors[0]?.code, 'PREFLIGHT_REFUSED', context)
    assert.match(errors[0]!.message, /8086:2922/, `the refusal names the controller: ${errors[0]!.message}`)
    assert.match(errors[0]!.message, /kernel\.flavor/, `and the flavor to use: ${errors[0]!.message}`)
    assert.ok(blankAtRefusal, 'nothing was written before the pre-flight refusal')
    assert.equal(errors[1]?.code, 'DEVICE_SELECT', context)
    // Both disks listed (AHCI's port order names them; the 20 GiB boot disk need not be sda).
    assert.match(errors[1]!.message, /\/dev\/sd[ab] \(20\.0 GiB/, `the disks are listed: ${errors[1]!.message}`)
    assert.match(errors[1]!.message, /\/dev\/sd[ab] \(1\.0 GiB/, `the disks are listed: ${errors[1]!.message}`)
    assert.equal(errors[2]?.code, 'TARGET_TOO_SMALL', context)
    assert.equal(r.doc.machine.state, 'deployed', context)
    const first = r.doc.machine.firstBootReport as { instance_id?: string } | null
    assert.equal(first?.instance_id, 'deploy-faults-1', 'the retried install booted and applied the seed')
    // The failures wrote nothing: the small disk is still blank, and the third try installed the big one.
    assert.ok(await allZero(r.disks[1]!), 'the disk smaller than the image was not written')
    const gpt = Buffer.alloc(8)
    const fh = await open(r.disks[0]!, 'r')
    await fh.read(gpt, 0, 8, 512)
    await fh.close()
    assert.equal(gpt.toString('latin1'), 'EFI PART', 'the 20 GiB disk holds the installed GPT')
    // The four tries ran in one boot of the deploy environment: it stayed after each failure.
    assert.equal(r.console.split(DEPLOY_MARKERS.up).length - 1, 1, 'one boot of the deploy environment')
    const failed = r.doc.events.filter((e) => e.kind === 'failed')
    assert.ok(failed.length >= 1, 'the failures are events')
    console.log(
      `faults: ${errors.map((e) => e.code).join(', ')}, then deployed; phases ${JSON.stringify(r.doc.phases.seconds)}`,
    )
  } finally {
    await serve?.kill('SIGTERM').catch(() => undefined)
    await rm(dir, { recursive: true, force: true })
  }
})

test('deploy faults: an unknown MAC with unknown_macs: ignore is served nothing and never appears', {
  timeout: 10 * 60_000,
}, async () => {
  deployEnvironment()
  const dir = await mkdtemp('/var/tmp/hwimage-deploy-unknown-')
  const mac = '52:54:00:d0:00:12'
  const port = await freePort()
  let serve: Serve | undefined
  try {
    const config = join(dir, 'serve.yaml')
    await writeFile(config, serveConfig(dir, port, images(), ['unknown_macs: ignore']))
    serve = await Serve.start(config)
    const disk = join(dir, 'disk0.raw')
    await blankDisk(disk)
    const catalog = await loadDeviceCatalog()
    const refused = () => /"path":"\/boot\/ipxe\?mac=[^"]*","status":404/.test(serve!.log)
    let refusedAt = 0
    const boot = await bootMachine({
      machine: {
        firmware: 'bios',
        storage: classifyStorage(catalog, 'virtio-blk-pci'),
        nic: classifyNic(catalog, 'virtio-net-pci'),
        disks: [{ path: disk, format: 'raw', role: 'boot' }],
        memoryMiB: 1024,
        cpus: 1,
        macAddress: mac,
        netboot: { tftpRoot: join(dir, 'tftp'), bootfile: 'boot.ipxe' },
        name: 'deploy-unknown',
      },
      workDir: dir,
      timeoutMs: 6 * 60_000,
      // After the refusal, 20 s more: long enough for anything else the machine might ask for.
      done: () => {
        if (!refusedAt && refused()) refusedAt = Date.now()
        return refusedAt > 0 && Date.now() - refusedAt > 20_000
      },
    })
    const console = await readFile(boot.serialLog, 'utf8').catch(() => '')
    assert.ok(refusedAt > 0, `serve refused the boot request (${boot.outcome}); serve log:\n${serve.log.slice(-2000)}`)
    const requests = serve.log
      .split('\n')
      .filter((l) => l.includes('"event":"request"'))
      .map((l) => JSON.parse(l) as { path: string; status: number })
    assert.ok(requests.length > 0)
    for (const q of requests)
      assert.ok(
        q.path.startsWith('/boot/ipxe?') && q.status === 404,
        `only a refused boot request: ${JSON.stringify(q)}`,
      )
    const res = await fetch(`http://127.0.0.1:${port}/api/v1/machines/${mac}`)
    assert.equal(res.status, 404, 'the machine is not on record')
    const list = (await (await fetch(`http://127.0.0.1:${port}/api/v1/machines`)).json()) as { machines: unknown[] }
    assert.equal(list.machines.length, 0, 'no machine is on record')
    assert.ok(!console.includes(DEPLOY_MARKERS.up), 'the deploy environment did not boot')
    assert.ok(await allZero(disk), 'the disk was not written')
  } finally {
    await serve?.kill('SIGTERM').catch(() => undefined)
    await rm(dir, { recursive: true, force: true })
  }
})
