// The agent as Ironic 21.4's conductor drives it, with the requests built as
// ironic/drivers/modules/agent_client.py builds them (POST /v1/commands/?wait=…&agent_token=…,
// body {"name", "params"}) and the answers checked the way agent_base.py and agent_client.py
// read them (refresh_steps, _get_completed_command, get_command_error, _raise_if_typeerror).
// The installer is replaced by a recorder here; lab/ironic and tests/ironic run the real one.

import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { test } from 'node:test'
import { gzipSync } from 'node:zlib'
import type { InstallReport } from '../install/install-report.js'
import { ironicAgentConfig, isIronicCmdline } from './agent-cmdline.js'
import { agentServer } from './agent-server.js'
import { rootDeviceHints, runIronicAgent } from './agent.js'
import { CommandStore, type CommandRecord } from './commands.js'
import { decodeConfigDrive, isoVolumeId, placeConfigDrive } from './config-drive.js'
import { type DeployEffects, deployHandlers, imageToWrite } from './deploy-steps.js'

const SHA = 'a'.repeat(64)
const MIB = 1024 * 1024

/** A minimal ISO 9660 image: system area, then the primary volume descriptor with `label`. */
function fakeIso(label: string): Uint8Array {
  const iso = new Uint8Array(18 * 2048)
  const pvd = 16 * 2048
  iso[pvd] = 1
  iso.set(Buffer.from('CD001'), pvd + 1)
  iso[pvd + 6] = 1
  iso.set(Buffer.from(label.padEnd(32, ' ')), pvd + 40)
  return iso
}

function recorder(fail?: Error) {
  const calls: Array<Record<string, unknown>> = []
  const events: string[] = []
  const effects: DeployEffects = {
    chooseDisk: async (hints) => (hints?.name as string) ?? '/dev/vda',
    install: async (o) => {
      calls.push(o)
      if (fail) throw fail
      return { bytes: { written: 123 }, seconds: { total: 4 } } as unknown as InstallReport
    },
    fetchText: async () => '',
    powerOff: async () => {
      events.push('poweroff')
    },
    sync: async () => {
      events.push('sync')
    },
    log: () => {},
  }
  return { calls, events, effects }
}

/** The image_info agent.py write_image() builds for a whole-disk image by URL (standalone). */
function imageInfo(over: Record<string, unknown> = {}) {
  return {
    id: 'disk.qcow2',
    urls: ['http://10.0.2.2:8089/disk.qcow2'],
    disk_format: 'qcow2',
    container_format: null,
    stream_raw_images: true,
    os_hash_algo: 'sha256',
    os_hash_value: SHA,
    node_uuid: 'n-1',
    ...over,
  }
}

async function startAgent(store: CommandStore, token = 'tok') {
  const server = agentServer(
    store,
    () => token,
    () => {},
  )
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  // agent_client._command(): POST {agent_url}/v1/commands/ params wait, agent_token; JSON body.
  const command = async (name: string, params: unknown, wait: boolean, tok = token) => {
    const res = await fetch(`${base}/v1/commands/?wait=${wait}&agent_token=${tok}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name, params }),
    })
    return { status: res.status, body: (await res.json()) as Record<string, unknown> }
  }
  // agent_client.get_commands_status(): GET {agent_url}/v1/commands/ → .json()['commands']
  const commands = async () =>
    ((await (await fetch(`${base}/v1/commands/`)).json()) as { commands: CommandRecord[] }).commands
  return { server, command, commands }
}

test('get_deploy_steps answers what agent_base.refresh_steps requires; write_image runs and completes as _get_completed_command expects', async () => {
  const rec = recorder()
  const store = new CommandStore(deployHandlers(rec.effects))
  const { server, command, commands } = await startAgent(store)
  try {
    const steps = await command('deploy.get_deploy_steps', { node: { uuid: 'n-1' }, ports: [] }, true)
    assert.equal(steps.status, 200)
    assert.equal(steps.body.command_status, 'SUCCEEDED')
    const result = steps.body.command_result as Record<string, unknown>
    assert.ok('deploy_steps' in result && 'hardware_manager_version' in result)
    for (const list of Object.values(result.deploy_steps as Record<string, unknown[]>))
      for (const s of list as Array<Record<string, unknown>>)
        for (const k of ['interface', 'step', 'priority']) assert.ok(k in s, `step lacks ${k}`)

    const step = {
      interface: 'deploy',
      step: 'write_image',
      args: { image_info: imageInfo(), configdrive: Buffer.from(gzipSync(fakeIso('config-2'))).toString('base64') },
    }
    const started = await command(
      'deploy.execute_deploy_step',
      { step, node: { uuid: 'n-1', properties: {} }, ports: [], deploy_version: { hwimage: '1.0' } },
      false,
    )
    assert.equal(started.status, 200)
    assert.equal(started.body.command_name, 'execute_deploy_step')
    await store.idle()
    const last = (await commands()).at(-1)!
    assert.equal(last.command_name, 'execute_deploy_step')
    assert.equal(last.command_status, 'SUCCEEDED')
    assert.equal(last.command_error, null)
    // is_equivalent(last_step, current_step): same interface and step name.
    const done = last.command_result as { deploy_step: { interface: string; step: string } }
    assert.deepEqual([done.deploy_step.interface, done.deploy_step.step], ['deploy', 'write_image'])
    assert.equal(rec.calls.length, 1)
    assert.equal(rec.calls[0]!.source, 'http://10.0.2.2:8089/disk.qcow2')
    assert.equal(rec.calls[0]!.sha256, SHA)
    assert.equal(rec.calls[0]!.disk, '/dev/vda')
    assert.ok(rec.calls[0]!.seed, 'the config drive goes to the installer as its seed step')

    const uuids = await command('standby.get_partition_uuids', {}, true)
    assert.equal(uuids.body.command_status, 'SUCCEEDED')
    assert.deepEqual(uuids.body.command_result, {})
    const boot = await command(
      'image.install_bootloader',
      { root_uuid: null, efi_system_part_uuid: null, prep_boot_part_uuid: null, target_boot_mode: 'uefi' },
      false,
    )
    assert.equal(boot.status, 200)
    await store.idle()
    assert.equal((await commands()).at(-1)!.command_status, 'SUCCEEDED')
  } finally {
    server.close()
  }
})

test('a failed install is a FAILED command whose error dict gives Ironic the reason (get_command_error)', async () => {
  const err = Object.assign(new Error('the image read has SHA-256 bbbb, expected aaaa'), {
    code: 'SHA256_MISMATCH',
  })
  const store = new CommandStore(deployHandlers(recorder(err).effects))
  const { server, command, commands } = await startAgent(store)
  try {
    const step = { interface: 'deploy', step: 'write_image', args: { image_info: imageInfo(), configdrive: null } }
    await command('deploy.execute_deploy_step', { step, node: {}, ports: [] }, false)
    await store.idle()
    const last = (await commands()).at(-1)!
    assert.equal(last.command_status, 'FAILED')
    assert.equal(typeof last.command_error, 'object')
    assert.notEqual(last.command_error!.type, 'TypeError') // Ironic raises AgentAPIError on TypeError
    const shown = last.command_error!.details || last.command_error!.message
    assert.match(shown, /SHA256_MISMATCH: the image read has SHA-256 bbbb, expected aaaa/)
  } finally {
    server.close()
  }
})

test('refusals carry the faultstring Ironic reads: wrong token 401, unknown command 404, busy 409', async () => {
  let release: () => void = () => {}
  const effects = recorder().effects
  effects.install = () =>
    new Promise((r) => {
      release = () => r({ bytes: { written: 1 }, seconds: { total: 1 } } as unknown as InstallReport)
    })
  const store = new CommandStore(deployHandlers(effects))
  const { server, command } = await startAgent(store)
  try {
    const bad = await command('deploy.get_deploy_steps', {}, true, 'wrong')
    assert.equal(bad.status, 401)
    assert.match(String(bad.body.faultstring), /agent_token/)
    const unknown = await command('clean.erase_devices', {}, true)
    assert.equal(unknown.status, 404)
    assert.match(String(unknown.body.faultstring), /Unknown command: clean.erase_devices/)
    const step = { interface: 'deploy', step: 'write_image', args: { image_info: imageInfo() } }
    await command('deploy.execute_deploy_step', { step }, false)
    const busy = await command('standby.power_off', {}, false)
    assert.equal(busy.status, 409)
    assert.match(String(busy.body.faultstring).toLowerCase(), /agent is busy/)
    release()
    await store.idle()
  } finally {
    server.close()
  }
})

test('imageToWrite(): sha256 from os_hash or a 64-digit checksum; md5 and partition images refused with the fix', () => {
  assert.deepEqual(imageToWrite(imageInfo()), {
    url: 'http://10.0.2.2:8089/disk.qcow2',
    sha256: SHA,
    diskFormat: 'qcow2',
  })
  assert.equal(
    imageToWrite(imageInfo({ os_hash_algo: undefined, os_hash_value: undefined, checksum: SHA })).sha256,
    SHA,
  )
  assert.throws(
    () => imageToWrite(imageInfo({ os_hash_algo: undefined, os_hash_value: undefined, checksum: 'b'.repeat(32) })),
    (e: Error & { details?: string }) => /SHA-256 only/.test(e.message) && /image_os_hash_algo=sha256/.test(e.details!),
  )
  assert.throws(() => imageToWrite(imageInfo({ disk_format: 'vmdk' })), /disk_format "vmdk" is not supported/)
  assert.throws(() => imageToWrite(imageInfo({ root_mb: 10 })), /partition images are not supported/)
})

test('config drive: base64 gzip ISO decoded and checked; its partition fills the disk from end − 64 MiB to the last usable LBA', () => {
  const iso = fakeIso('config-2')
  assert.equal(isoVolumeId(iso), 'config-2')
  assert.deepEqual(decodeConfigDrive(Buffer.from(gzipSync(iso)).toString('base64')), iso)
  assert.throws(
    () => decodeConfigDrive(Buffer.from(gzipSync(fakeIso('cidata'))).toString('base64')),
    /labelled "cidata"/,
  )
  assert.throws(() => decodeConfigDrive(Buffer.from('hello').toString('base64')), /not an ISO 9660 image/)
  const diskSectors = (8192n * BigInt(MIB)) / 512n
  const gpt = {
    sectorSize: 512,
    diskGuid: '00000000-0000-0000-0000-000000000000',
    diskSectors,
    firstUsableLba: 34n,
    lastUsableLba: diskSectors - 34n,
    entryCount: 128,
    partitions: [
      { number: 1, typeGuid: 'X', uniqueGuid: 'Y', firstLba: 2048n, lastLba: 4_000_000n, attributes: 0n, name: 'root' },
    ],
  }
  const placed = placeConfigDrive(gpt)
  assert.equal(placed.offset, 8192 * MIB - 64 * MIB)
  assert.equal(placed.partition.lastLba, diskSectors - 34n)
  assert.equal(placed.number, 2)
  assert.equal(placed.gpt.partitions.length, 2)
  const full = { ...gpt, partitions: [{ ...gpt.partitions[0]!, lastLba: diskSectors - 40_000n }] }
  assert.throws(() => placeConfigDrive(full), /no room for its partition/)
})

test('kernel command line: ipa-api-url selects agent mode; advertise host/port and BOOTIF; bad values are usage errors', () => {
  const line =
    'console=ttyS0 ipa-advertise-host=127.0.0.1 ipa-advertise-port=19999 BOOTIF=01-52-54-00-12-34-01 ipa-api-url=http://10.0.2.2:6385/ ipa-global-request-id=req-1'
  assert.equal(isIronicCmdline(line), true)
  assert.equal(isIronicCmdline('hwimage.url=http://x'), false)
  assert.deepEqual(ironicAgentConfig(line), {
    apiUrl: 'http://10.0.2.2:6385',
    listenPort: 9999,
    advertisePort: 19999,
    advertiseHost: '127.0.0.1',
    bootMac: '52:54:00:12:34:01',
    globalRequestId: 'req-1',
  })
  assert.throws(() => ironicAgentConfig('ipa-api-url=ftp://x'), /not an http/)
  assert.throws(() => ironicAgentConfig('ipa-api-url=http://x ipa-listen-port=0'), /not a port/)
})

test('rootDeviceHints(): Ironic root_device → disk hints; operators refused', () => {
  assert.deepEqual(rootDeviceHints(undefined), [])
  assert.deepEqual(rootDeviceHints({ name: '/dev/vda', size: 8 }), ['name=/dev/vda', 'size=8G'])
  assert.deepEqual(rootDeviceHints({ size: '>= 20' }), ['size=>=20G'])
  assert.throws(() => rootDeviceHints({ serial: 's== abc' }), /operators are not supported/)
  assert.throws(() => rootDeviceHints({ by_path: '/dev/disk/by-path/x' }), /not supported/)
})

test('runIronicAgent(): lookup by MAC (retried while Ironic answers 404), then heartbeats with the token and callback URL', async () => {
  const seen: Array<{ method: string; url: string; body?: unknown; version?: string }> = []
  let lookups = 0
  const ironic = createServer((req, res) => {
    let body = ''
    req.on('data', (c) => {
      body += c
    })
    req.on('end', () => {
      seen.push({
        method: req.method!,
        url: req.url!,
        ...(body ? { body: JSON.parse(body) } : {}),
        version: req.headers['x-openstack-ironic-api-version'] as string,
      })
      if (req.url!.startsWith('/v1/lookup')) {
        lookups++
        if (lookups === 1) {
          res.writeHead(404, { 'Content-Type': 'application/json' })
          return res.end(JSON.stringify({ error_message: JSON.stringify({ faultstring: 'Not Found' }) }))
        }
        res.writeHead(200, { 'Content-Type': 'application/json' })
        // ramdisk.py convert_with_links(): node (uuid, properties, instance_info, driver_internal_info) + config
        return res.end(
          JSON.stringify({
            node: { uuid: 'n-1', properties: {}, instance_info: {}, driver_internal_info: {} },
            config: { agent_token: 'tok-1', agent_token_required: true, heartbeat_timeout: 300 },
          }),
        )
      }
      res.writeHead(202)
      res.end()
    })
  })
  await new Promise<void>((r) => ironic.listen(0, '127.0.0.1', () => r()))
  const api = `http://127.0.0.1:${(ironic.address() as AddressInfo).port}`
  const ac = new AbortController()
  const run = runIronicAgent({
    config: { apiUrl: api, listenPort: 0, advertiseHost: '127.0.0.1', advertisePort: 19999 },
    log: () => {},
    effects: recorder().effects,
    macs: ['52:54:00:12:34:01', '52:54:00:12:34:02'],
    heartbeatMs: 30,
    lookupRetryMs: 10,
    signal: ac.signal,
  })
  while (seen.filter((s) => s.url.startsWith('/v1/heartbeat')).length < 2) await new Promise((r) => setTimeout(r, 10))
  ac.abort()
  await run
  ironic.close()
  assert.equal(seen[0]!.url, '/v1/lookup?addresses=52%3A54%3A00%3A12%3A34%3A01%2C52%3A54%3A00%3A12%3A34%3A02')
  assert.equal(seen[0]!.version, '1.68')
  const hb = seen.find((s) => s.url.startsWith('/v1/heartbeat'))!
  assert.equal(hb.method, 'POST')
  assert.equal(hb.url, '/v1/heartbeat/n-1')
  assert.deepEqual(hb.body, { callback_url: 'http://127.0.0.1:19999', agent_token: 'tok-1', agent_version: '9.4.1' })
})
