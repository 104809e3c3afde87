// Network deploy end to end, real parts only: `hwimage serve` (the CLI, its SQLite state and
// TFTP tree), QEMU's network boot (slirp's DHCP and TFTP; iPXE ROMs under SeaBIOS, OVMF's
// own stack under Secure Boot), the deploy environment (.cache/deploy-env, built by the
// Makefile's deploy-env target), the installer inside it writing a blank 20 GiB disk, the
// reboot into the installed image, cloud-init applying the seed, and the first-boot report
// reaching serve. Everything is asserted through serve's JSON API (and the console).
//
// One QEMU process per deploy: the guest reboots itself from the deploy environment into the
// installed disk. Two deploys, run at the same time, each proving several things at once:
//   - OVMF + Secure Boot, an unknown MAC enlisting itself (shim → grubnetx64 → signed kernel
//     over TFTP), followed in the dashboard (Debian's chromium) and assigned through its
//     page, BootNext to the installed shim; then the first-boot contract on the deployed
//     system (NoCloud): SSH as the seed's user with the seed's key, the user-data command
//     ran, root grew up to the seed partition at the disk's end;
//   - SeaBIOS via iPXE and HTTP, a MAC known to the config (pre-assigned); serve is killed
//     with SIGKILL mid-install and restarted: the install resumes (Range), the state is intact,
//     and after the reboot serve answers "boot the local disk" (iPXE exit).

import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { DEPLOY_MARKERS } from '../../src/deploy/init-script.js'
import {
  DISK_BYTES,
  type DeployRun,
  deploy,
  deployEnvironment,
  freePort,
  Serve,
  seedYaml,
  serveConfig,
} from './deploy-fixture.js'
import { type DashboardHandles, openDashboard } from './dashboard-fixture.js'
import { testImage } from './fixture.js'
import { opsUser, ssh, sshArgv, sshKey } from './guest.js'
import { run } from '../../src/tools/run.js'

const GiB = 1024 ** 3

function assertDeployed(
  r: DeployRun,
  o: { mac: string; hostname: string; instanceId: string; firmware: string },
): void {
  const { machine, phases, events } = r.doc
  const context = `states ${r.seen.join(' → ')}; error ${JSON.stringify(machine.error)}; console tail:\n${r.console.slice(-3000)}`
  assert.equal(machine.state, 'deployed', context)
  assert.equal(machine.inventory?.firmware, o.firmware, 'the inventory names the firmware mode')
  assert.ok(
    machine.inventory?.disks.some((d) => d.sizeBytes === DISK_BYTES),
    'the inventory lists the 20 GiB disk',
  )
  const report = machine.installReport as { bytes?: { written?: number }; verify?: unknown } | null
  assert.ok((report?.bytes?.written ?? 0) > 0, 'the install report reached serve')
  const first = machine.firstBootReport as { instance_id?: string; hostname?: string } | null
  assert.equal(first?.instance_id, o.instanceId, 'cloud-init applied the seed (instance-id)')
  assert.equal(first?.hostname, o.hostname, 'cloud-init applied the seed (hostname)')
  const stages = new Set(events.filter((e) => e.kind === 'stage').map((e) => e.fields.stage))
  assert.ok(stages.has('write'), `progress reached serve while writing (stages: ${[...stages].join(', ')})`)
  for (const k of ['deployEnvironmentBoot', 'install', 'reboot', 'firstBoot', 'total'] as const)
    assert.ok((phases.seconds[k] ?? -1) > 0, `phase ${k} is dated: ${JSON.stringify(phases)}`)
  // The deploy environment's console: DHCP on the boot NIC, the MAC and serve's URL from the command line.
  const mac = o.mac
  assert.match(r.console, new RegExp(`${DEPLOY_MARKERS.dhcp} \\S+ ${mac} 10\\.0\\.2\\.15/24 router 10\\.0\\.2\\.2`))
  assert.match(
    r.console,
    new RegExp(`${DEPLOY_MARKERS.up} mac=${mac} url=http://10\\.0\\.2\\.2:\\d+ token=(given|none)`),
  )
  assert.match(r.console, new RegExp(`${DEPLOY_MARKERS.version} hwimage \\d+\\.\\d+\\.\\d+`))
  assert.ok(r.console.includes(DEPLOY_MARKERS.agentStart), 'the deploy environment ran the agent')
}

function phaseLine(name: string, r: DeployRun): string {
  const s = r.doc.phases.seconds
  return `${name}: deploy environment up ${s.deployEnvironmentBoot} s, waiting ${s.waitForAssignment ?? 0} s, install ${s.install} s, reboot ${s.reboot} s, first boot to report ${s.firstBoot} s, total ${s.total} s (QEMU ran ${r.boot.seconds.toFixed(0)} s)`
}

// Both at once, as a rack deploys (2 cores here: one TCG guest each); neither waits for the other.
describe('two machines deploying at the same time', { concurrency: 2 }, () => {
  test('network deploy under OVMF with Secure Boot: an unknown machine enlists over TFTP, is assigned, installs, boots its disk and reports', {
    timeout: 25 * 60_000,
  }, async () => {
    deployEnvironment()
    const image = testImage()
    const dir = await mkdtemp('/var/tmp/hwimage-deploy-sb-')
    const mac = '52:54:00:d0:00:01'
    const port = await freePort()
    let serve: Serve | undefined
    let dash: DashboardHandles | undefined
    try {
      // The seed's user with the test's key, and user-data: checked over SSH once deployed.
      const key = join(dir, 'id_ed25519')
      const seed = seedYaml('deployed-sb-01', 'deploy-sb-1', mac, [
        ...opsUser(await sshKey(key, 'deploy-e2e')),
        'user_data:',
        '  runcmd: [[touch, /root/hello]]',
      ])
      await writeFile(join(dir, 'seed.yaml'), seed, { mode: 0o600 })
      const sshPort = await freePort()
      let onDisk: { hostname: string; hello: number | null; rootBytes: number } | undefined
      const config = join(dir, 'serve.yaml')
      await writeFile(config, serveConfig(dir, port, { default: image.dir }, ['unknown_macs: enlist']))
      serve = await Serve.start(config)
      // The operator watches and acts in the dashboard (loopback: no sign-in), the page opened
      // before the machine exists; a window mark proves it never reloads.
      dash = await openDashboard(`http://127.0.0.1:${port}/`)
      await dash.page.evaluate(() => {
        ;(window as unknown as Record<string, boolean>).e2eMark = true
      })
      // What the list's row shows of the install: its stage and bytes done.
      const rowProgress = () =>
        dash!.page.evaluate((m) => {
          const row = document.querySelector(`table.machines tr[data-mac="${m}"]`)
          const done = row?.querySelector('progress')?.getAttribute('data-done')
          const stage = row?.querySelector('[data-field=stage]')?.textContent
          return done && stage ? { stage, done: Number(done) } : null
        }, mac)
      const progressSeen: { stage: string; done: number }[] = []
      let appeared = false
      let assigned = false
      const r = await deploy({
        dir,
        firmware: 'uefi-sb',
        mac,
        bootfile: 'shimx64.efi',
        tftpRoot: join(dir, 'tftp'),
        port,
        timeoutMs: 22 * 60_000,
        hostForwards: [{ hostPort: sshPort, guestPort: 22 }],
        // Followed until deployed and checked over SSH (or failed).
        settled: (doc) => doc.machine.state === 'failed' || (doc.machine.state === 'deployed' && onDisk !== undefined),
        async onPoll(doc) {
          if (!doc) return
          if (doc.machine.state === 'deployed' && !onDisk) {
            // The first-boot report arrived: cloud-init's final stage ran; the system is up.
            const hello = await run(sshArgv(key, sshPort, ['sudo', 'test', '-f', '/root/hello']), { okStatus: [0, 1] })
            onDisk = {
              hostname: await ssh(key, sshPort, 'hostname'),
              hello: hello.status,
              rootBytes: Number((await ssh(key, sshPort, 'df', '-B1', '--output=size', '/')).split('\n').pop()),
            }
            return
          }
          if (!appeared) {
            // serve knows the machine: the list shows it without a reload.
            await dash!.row(mac).waitFor({ timeout: 10_000 })
            appeared = true
          }
          if (doc.machine.state === 'deploying') {
            const p = await rowProgress()
            if (p && p.done !== progressSeen.at(-1)?.done) progressSeen.push(p)
          }
          if (assigned || doc.machine.state !== 'enlisted') return
          assigned = true
          // Assigned through the machine's page: the image and the seed in the form.
          const { page } = dash!
          await dash!.row(mac).locator('[data-field=name] a').click()
          const form = page.locator('form[data-action=assign]')
          await form.locator('select[name=image] option[value=default]').waitFor({ state: 'attached' })
          await form.locator('select[name=image]').selectOption('default')
          await form.locator('textarea[name=seed]').fill(await readFile(join(dir, 'seed.yaml'), 'utf8'))
          await form.locator('button[type=submit]').click()
          await page.locator('.result.ok', { hasText: 'Assigned default' }).waitFor({ timeout: 15_000 })
          await dash!.screenshot('e2e-uefi-sb-assigned', { fullPage: true })
          await page.locator('nav a[data-nav=machines]').click()
        },
      })
      assert.ok(assigned, `the machine enlisted (states ${r.seen.join(' → ')})`)
      assert.ok(appeared, 'the dashboard listed the machine')
      assertDeployed(r, { mac, hostname: 'deployed-sb-01', instanceId: 'deploy-sb-1', firmware: 'uefi-secureboot' })
      // The first-boot contract on the deployed disk, NoCloud: cloud-init without an error, the seed's user in
      // with the seed's key, the user-data command ran, root grown up to the seed partition.
      const ciError = r.boot.milestones.find((m) => m.kind === 'cloud-init-error')
      assert.equal(ciError, undefined, `cloud-init reported an error: ${ciError?.line}`)
      const first = r.doc.machine.firstBootReport as { cloud_init?: { datasource?: string } } | null
      assert.match(first?.cloud_init?.datasource ?? '', /NoCloud/)
      assert.ok(onDisk, 'the deployed system was reached over SSH')
      assert.equal(onDisk.hostname, 'deployed-sb-01', 'SSH with the seed key answers the seed hostname')
      assert.equal(onDisk.hello, 0, 'the user-data command created /root/hello')
      assert.ok(onDisk.rootBytes > 19 * GiB, `root grew up to the seed partition (df says ${onDisk.rootBytes})`)
      // On record from its first boot request ('new'), it enlisted and waited for the operator.
      const enlisted = r.seen.indexOf('enlisted')
      assert.ok(
        enlisted >= 0 && enlisted < r.seen.indexOf('deploying'),
        `it waited for the operator, enlisted (states ${r.seen.join(' → ')})`,
      )
      // The deploy environment's kernel ran under Secure Boot with lockdown, and so did the installed one.
      assert.ok((r.console.match(/secureboot: Secure boot enabled/g) ?? []).length >= 2, 'Secure Boot in both kernels')
      assert.match(r.console, /Kernel is locked down from EFI Secure Boot/)
      const entry = r.doc.events.find((e) => e.kind === 'boot-entry')
      assert.match(String(entry?.fields.bootnum ?? ''), /^[0-9A-F]{4}$/, `BootNext was set: ${JSON.stringify(entry)}`)
      assert.doesNotMatch(serve.log, /hwimage\.token=|Bearer [A-Za-z0-9_-]{20}/, 'serve logs no token')
      // The dashboard followed the real deploy live: the bar advanced, then deployed with its phases.
      assert.ok(
        progressSeen.some(
          (p, i) => i > 0 && p.stage === progressSeen[i - 1]!.stage && p.done > progressSeen[i - 1]!.done,
        ),
        `the progress bar advanced without a reload: ${JSON.stringify(progressSeen)}`,
      )
      await dash.waitForState(mac, 'deployed', 15_000)
      const phases = dash.row(mac).locator('[data-field=phases]')
      for (const p of ['deployEnvironmentBoot', 'install', 'reboot', 'firstBoot'])
        assert.match((await phases.locator(`[data-phase=${p}]`).textContent()) ?? '', /\d s/, `phase ${p} shown`)
      assert.equal(
        await dash.page.evaluate(() => (window as unknown as Record<string, boolean>).e2eMark),
        true,
        'the page was never reloaded',
      )
      console.log(`dashboard screenshot: ${await dash.screenshot('e2e-uefi-sb-deployed', { selector: 'body' })}`)
      assert.deepEqual(dash.errors, [], `no console errors: ${dash.console.join('\n')}`)
      console.log(phaseLine('uefi-sb', r))
    } finally {
      await dash?.close().catch(() => undefined)
      await serve?.kill('SIGTERM').catch(() => undefined)
      await rm(dir, { recursive: true, force: true })
    }
  })

  test('network deploy under SeaBIOS via iPXE and HTTP: a known machine installs; serve killed -9 and restarted mid-install; then the disk boots', {
    timeout: 25 * 60_000,
  }, async () => {
    deployEnvironment()
    const image = testImage()
    const dir = await mkdtemp('/var/tmp/hwimage-deploy-bios-')
    const mac = '52:54:00:d0:00:02'
    const port = await freePort()
    let serve: Serve | undefined
    try {
      await writeFile(join(dir, 'seed.yaml'), seedYaml('deployed-bios-01', 'deploy-bios-1', mac), { mode: 0o600 })
      const config = join(dir, 'serve.yaml')
      await writeFile(
        config,
        serveConfig(dir, port, { default: image.dir }, [
          'unknown_macs: ignore',
          'machines:',
          `  "${mac}": { name: bios-01, image: default, seed: seed.yaml, disk_hints: "min-size=10G" }`,
        ]),
      )
      serve = await Serve.start(config)
      let restarted = false
      let killedAt = 0
      const r = await deploy({
        dir,
        firmware: 'bios',
        mac,
        bootfile: 'boot.ipxe',
        tftpRoot: join(dir, 'tftp'),
        port,
        timeoutMs: 22 * 60_000,
        async onPoll(doc) {
          const p = doc?.machine.progress as { stage?: string; done?: number } | null | undefined
          if (restarted || p?.stage !== 'write' || (p.done ?? 0) < 64 * 1024 ** 2) return
          restarted = true
          killedAt = p.done ?? 0
          await serve!.kill('SIGKILL')
          await new Promise((res) => setTimeout(res, 3000))
          await serve!.spawn()
        },
      })
      assertDeployed(r, { mac, hostname: 'deployed-bios-01', instanceId: 'deploy-bios-1', firmware: 'bios' })
      assert.ok(restarted, `serve was killed mid-install (states ${r.seen.join(' → ')})`)
      // A configured machine is on record before it boots ('new') and deploys at its first boot.
      assert.ok(
        r.seen.includes('deploying') && !r.seen.includes('enlisted'),
        `a configured machine with an image deploys at its first boot, no enlisting (states ${r.seen.join(' → ')})`,
      )
      const report = r.doc.machine.installReport as { resumes?: { count?: number } }
      assert.ok(
        (report.resumes?.count ?? 0) >= 1,
        `the download resumed after serve came back: ${JSON.stringify(report)}`,
      )
      // The state from before the kill survived it: the boot answer and the inventory are still on record.
      const kinds = r.doc.events.map((e) => e.kind)
      assert.ok(kinds.indexOf('inventory') >= 0 && kinds.indexOf('inventory') < kinds.indexOf('installed'))
      // After the install the machine network-booted again and was told to boot its disk.
      const boots = r.doc.events.filter((e) => e.kind === 'boot')
      assert.ok(boots.length >= 2, `a second network boot, answered "local": ${JSON.stringify(boots)}`)
      assert.match(r.console, /is installed, booting from the local disk/)
      assert.doesNotMatch(serve.log, /hwimage\.token=|Bearer [A-Za-z0-9_-]{20}/, 'serve logs no token')
      console.log(`${phaseLine('bios', r)}; serve killed at ${(killedAt / 2 ** 20).toFixed(0)} MiB written`)
    } finally {
      await serve?.kill('SIGTERM').catch(() => undefined)
      await rm(dir, { recursive: true, force: true })
    }
  })
})
