// The inventory verb's test machine: an AHCI disk and two NICs (an e1000 without a link,
// an Intel Wireless 8265 with one) in a synthetic sysfs, and a context that keeps the output.

import { PassThrough } from 'node:stream'
import { SysfsFixture } from '../../deploy/sysfs.fixture.js'
import type { CommandContext } from '../command.js'

/** A CommandContext whose stdout and stderr are kept. */
export function context() {
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  let out = ''
  let err = ''
  stdout.on('data', (c) => (out += c))
  stderr.on('data', (c) => (err += c))
  const ctx: CommandContext = { stdout, stderr, signal: new AbortController().signal }
  return { ctx, out: () => out, err: () => err }
}

// A machine with an AHCI disk and two NICs: e1000 (down) and an Intel Wireless 8265 with a link.
export async function machine(): Promise<SysfsFixture> {
  const f = await SysfsFixture.create()
  const ahci = await f.pci('0000:00:1f.2', {
    vendor: '8086',
    device: '2922',
    sv: '1af4',
    sd: '1100',
    class: '010601',
    driver: 'ahci',
  })
  await f.write(`${ahci}/ata1/host0/target0:0:0/0:0:0:0`, { model: 'QEMU HARDDISK' })
  await f.write(`${ahci}/ata1/host0/target0:0:0/0:0:0:0/block/sda`, {
    size: '41943040',
    'queue/logical_block_size': '512',
    'queue/physical_block_size': '512',
    'queue/rotational': '1',
    removable: '0',
  })
  await f.link(`${ahci}/ata1/host0/target0:0:0/0:0:0:0/block/sda/device`, `${ahci}/ata1/host0/target0:0:0/0:0:0:0`)
  await f.link('block/sda', `${ahci}/ata1/host0/target0:0:0/0:0:0:0/block/sda`)
  const e1000 = await f.pci('0000:00:05.0', {
    vendor: '8086',
    device: '100e',
    sv: '1af4',
    sd: '1100',
    class: '020000',
    driver: 'e1000',
  })
  await f.write(`${e1000}/net/ens4`, { address: '52:54:00:00:00:04', carrier: '0' })
  await f.link(`${e1000}/net/ens4/device`, e1000)
  await f.link('class/net/ens4', `${e1000}/net/ens4`)
  const wifi = await f.pci(
    '0000:03:00.0',
    { vendor: '8086', device: '24fd', sv: '8086', sd: '0010', class: '028000', driver: 'iwlwifi' },
    'devices/pci0000:00/0000:00:1c.0',
  )
  await f.write(`${wifi}/net/wlp3s0`, { address: '34:13:e8:00:00:01', carrier: '1' })
  await f.link(`${wifi}/net/wlp3s0/device`, wifi)
  await f.link('class/net/wlp3s0', `${wifi}/net/wlp3s0`)
  await f.write('devices/system/cpu', { online: '0-1' })
  await f.write('proc', { meminfo: 'MemTotal:        4096000 kB' })
  return f
}
