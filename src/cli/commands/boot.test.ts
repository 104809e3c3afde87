import { test } from 'node:test'
import assert from 'node:assert/strict'
import { renderBootResult } from './boot.js'
import type { BootImageResult } from '../../lab/boot-image.js'

const ok: BootImageResult = {
  ok: true,
  image: '/out/demo/debian-12-generic-amd64.img',
  firmware: 'uefi-sb',
  storage: 'virtio-blk',
  nic: 'virtio-net-pci',
  secureBoot: 'enabled',
  finalStage: true,
  secondsToFinalStage: 160.5,
  hostname: 'hwimage-demo',
  rootBytes: 21000351744,
  kernelVersion: '6.1.0-56-amd64',
  cloudInitVersion: '22.4.2',
  datasource: 'DataSourceNoCloud [seed=/dev/vdb][dsmode=net]',
  seconds: 160.5,
  milestones: [],
  diagnosis: null,
  serialLog: '/tmp/b/serial.log',
}

test('renderBootResult() prints firmware, Secure Boot, final stage, hostname and root size', () => {
  const text = renderBootResult(ok)
  assert.match(text, /^firmware {5}uefi-sb \(virtio-blk, virtio-net-pci\)$/m)
  assert.match(text, /^secure boot {2}enabled$/m)
  assert.match(text, /^final stage {2}reached in 160\.5 s \(cloud-init 22\.4\.2, DataSourceNoCloud/m)
  assert.match(text, /^hostname {5}hwimage-demo$/m)
  assert.match(text, /^root fs {6}19\.6 GiB \(21000351744 bytes\)$/m)
  assert.match(text, /^result {7}ok$/m)
})

test('renderBootResult() says where a failed boot stopped, and when Secure Boot was not on', () => {
  const failed = renderBootResult({
    ...ok,
    ok: false,
    finalStage: false,
    secondsToFinalStage: null,
    hostname: null,
    rootBytes: null,
    diagnosis: {
      code: 'root-device-missing',
      summary: 'The initramfs gave up waiting for the root device',
      evidence: 'ALERT!  UUID=1 does not exist.  Dropping to a shell!',
    },
  })
  assert.match(failed, /^final stage {2}not reached$/m)
  assert.match(failed, /^result {7}FAILED: The initramfs gave up waiting for the root device — "ALERT!/m)
  assert.match(
    renderBootResult({ ...ok, ok: false, secureBoot: 'disabled' }),
    /FAILED: the kernel does not report Secure Boot enabled \(disabled\)/,
  )
  assert.match(
    renderBootResult({ ...ok, firmware: 'bios', secureBoot: null }),
    /^secure boot {2}not applicable \(BIOS\)$/m,
  )
})
