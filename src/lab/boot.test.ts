import { test } from 'node:test'
import assert from 'node:assert/strict'
import { chmod, mkdtemp, rm, writeFile, readFile, access } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { bootMachine, type BootOptions } from './boot.js'
import { classifyNic, classifyStorage, parseDeviceHelp } from '../tools/qemu-devices.js'
import { InterruptedError } from '../errors.js'

// A stand-in for qemu-system-x86_64: finds the -serial file: argument, writes a
// console there line by line, records its pid, and lingers like a running VM.
const FAKE_QEMU = `#!/bin/sh
for a in "$@"; do case "$a" in file:*) log="\${a#file:}";; esac; done
dir=$(dirname "$log")
echo $$ > "$dir/pid"
trap 'echo TERM > "$dir/got-term"; exit 0' TERM
printf 'SeaBIOS (version 1.16.2-debian-1.16.2-1)\\r\\n' > "$log"
sleep 0.2
printf '[    0.000000] Linux version 6.1.0-28-amd64 (debian-kernel@lists.debian.org)\\r\\n' >> "$log"
sleep 0.2
printf '[   95.0] cloud-init[512]: Cloud-init v. 22.4.2 finished at Mon, 25 Nov 2024 21:31:00 +0000. Datasource DataSourceNoCloud [seed=/dev/vdb][dsmode=net].  Up 95.05 seconds\\r\\n' >> "$log"
if [ -n "$FAKE_QEMU_EXIT" ]; then echo "qemu-system-x86_64: $FAKE_QEMU_EXIT" >&2; exit 1; fi
while :; do sleep 0.1; done
`

const catalog = parseDeviceHelp(
  'Storage devices:\nname "virtio-blk-pci", bus PCI, alias "virtio-blk"\n\nNetwork devices:\nname "e1000", bus PCI\n',
)

async function withFakeQemu(fn: (dir: string, opts: BootOptions) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'hwimage-boot-'))
  try {
    const qemu = join(dir, 'fake-qemu')
    await writeFile(qemu, FAKE_QEMU)
    await chmod(qemu, 0o755)
    const opts: BootOptions = {
      machine: {
        firmware: 'bios',
        storage: classifyStorage(catalog, 'virtio-blk'),
        nic: classifyNic(catalog, 'e1000'),
        disks: [{ path: join(dir, 'disk.img'), format: 'raw', role: 'boot' }],
        memoryMiB: 256,
        cpus: 1,
        macAddress: '52:54:00:00:00:01',
      },
      workDir: dir,
      timeoutMs: 10_000,
      pollMs: 50,
      qemu,
    }
    await fn(dir, opts)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

async function processGone(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0)
    return false
  } catch {
    return true
  }
}

test('bootMachine() follows the console until the predicate holds, then stops QEMU', async () => {
  await withFakeQemu(async (dir, opts) => {
    const seen: string[] = []
    const r = await bootMachine({
      ...opts,
      done: (c) => c.has('cloud-init-final'),
      onMilestone: (m) => seen.push(m.kind),
    })
    assert.equal(r.outcome, 'done')
    assert.deepEqual(seen, ['firmware', 'kernel', 'cloud-init-final'])
    assert.ok(r.milestones[2]!.at >= r.milestones[1]!.at && r.milestones[1]!.at >= r.milestones[0]!.at)
    assert.equal(r.serialLog, join(dir, 'serial.log'))
    assert.match(await readFile(r.serialLog, 'utf8'), /Cloud-init v\. 22\.4\.2 finished/)
    assert.equal(r.argv[0], opts.qemu)
    assert.ok(r.argv.includes('tcg'))
    const pid = Number(await readFile(join(dir, 'pid'), 'utf8'))
    assert.ok(await processGone(pid), 'QEMU was stopped')
    await access(join(dir, 'got-term'))
  })
})

test('bootMachine() stops QEMU on timeout and says so', async () => {
  await withFakeQemu(async (dir, opts) => {
    const r = await bootMachine({ ...opts, timeoutMs: 200, done: () => false })
    assert.equal(r.outcome, 'timeout')
    assert.ok(r.seconds < 5)
    assert.ok(await processGone(Number(await readFile(join(dir, 'pid'), 'utf8'))))
  })
})

test('bootMachine() stops QEMU when aborted and throws InterruptedError', async () => {
  await withFakeQemu(async (dir, opts) => {
    const ac = new AbortController()
    setTimeout(() => ac.abort(), 150)
    await assert.rejects(bootMachine({ ...opts, signal: ac.signal, done: () => false }), InterruptedError)
    assert.ok(await processGone(Number(await readFile(join(dir, 'pid'), 'utf8'))))
  })
})

test('bootMachine() reports QEMU exiting by itself with its stderr', async () => {
  await withFakeQemu(async (_dir, opts) => {
    process.env.FAKE_QEMU_EXIT = 'cannot set up guest memory'
    try {
      const r = await bootMachine({ ...opts, done: () => false })
      assert.equal(r.outcome, 'exited')
      assert.equal(r.qemuExit?.status, 1)
      assert.match(r.qemuExit!.stderr, /cannot set up guest memory/)
      assert.ok(r.console.has('cloud-init-final'), 'the console written before the exit is read')
    } finally {
      delete process.env.FAKE_QEMU_EXIT
    }
  })
})

test('bootMachine() gives OVMF a fresh copy of its variable store', async () => {
  await withFakeQemu(async (dir, opts) => {
    const r = await bootMachine({
      ...opts,
      machine: { ...opts.machine, firmware: 'uefi-sb' },
      done: (c) => c.has('kernel'),
    })
    const vars = r.argv.find((a) => a.startsWith('if=pflash') && a.includes('unit=1'))
    assert.equal(vars, `if=pflash,format=raw,unit=1,file=${join(dir, 'ovmf-vars.fd')}`)
    assert.deepEqual(await readFile(join(dir, 'ovmf-vars.fd')), await readFile('/usr/share/OVMF/OVMF_VARS_4M.ms.fd'))
  })
})
