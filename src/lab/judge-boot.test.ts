import { test } from 'node:test'
import assert from 'node:assert/strict'
import { failureReason, judgeBoot } from './judge-boot.js'
import { GOOD_UEFI_SB_BOOT, KERNEL_PANIC, NO_NIC_BOOT, SEABIOS_NO_BOOT } from './console.fixture.js'

const SB_DISABLED = GOOD_UEFI_SB_BOOT.replace('secureboot: Secure boot enabled', 'secureboot: Secure boot disabled')
const NO_SB_REPORT = GOOD_UEFI_SB_BOOT.split('\n')
  .filter((l) => !l.includes('secureboot:'))
  .join('\n')
const NO_FINAL_STAGE = GOOD_UEFI_SB_BOOT.split('\n')
  .filter((l) => !l.includes(' finished at '))
  .join('\n')

test("judgeBoot() passes a Secure Boot boot that reached cloud-init's final stage", () => {
  const v = judgeBoot(GOOD_UEFI_SB_BOOT, { firmware: 'uefi-sb', timedOut: false })
  assert.equal(v.pass, true)
  assert.equal(v.diagnosis, null)
  assert.equal(v.secureBootOff, null)
  assert.match(v.finalStage!.line, /Cloud-init v\. 22\.4\.2 finished/)
})

test('judgeBoot() fails a uefi-sb boot whose kernel reports Secure Boot disabled, and no other firmware', () => {
  const v = judgeBoot(SB_DISABLED, { firmware: 'uefi-sb', timedOut: false })
  assert.equal(v.pass, false)
  assert.equal(v.diagnosis, null, 'the console itself shows no failure')
  assert.equal(v.secureBootOff?.code, 'secure-boot-off')
  assert.equal(v.secureBootOff?.summary, 'The kernel does not report Secure Boot enabled (disabled)')
  assert.match(v.secureBootOff!.evidence!, /secureboot: Secure boot disabled$/)
  assert.equal(judgeBoot(SB_DISABLED, { firmware: 'uefi', timedOut: false }).pass, true)
})

test('judgeBoot() fails a uefi-sb boot whose kernel says nothing about Secure Boot', () => {
  const v = judgeBoot(NO_SB_REPORT, { firmware: 'uefi-sb', timedOut: false })
  assert.equal(v.pass, false)
  assert.equal(v.secureBootOff?.summary, 'The kernel does not report Secure Boot enabled (no report)')
  assert.equal(v.secureBootOff?.evidence, undefined)
})

test("judgeBoot() gives the console's diagnosis first, and no Secure Boot verdict beside it", () => {
  const v = judgeBoot(KERNEL_PANIC, { firmware: 'uefi-sb', timedOut: false })
  assert.equal(v.pass, false)
  assert.equal(v.diagnosis?.code, 'kernel-panic')
  assert.equal(v.secureBootOff, null)
  assert.equal(judgeBoot(SEABIOS_NO_BOOT, { firmware: 'bios', timedOut: true }).diagnosis?.code, 'no-boot-entry')
})

test('judgeBoot() does not pass a single boot that never reached the final stage, even when nothing failed yet', () => {
  const v = judgeBoot(NO_FINAL_STAGE, { firmware: 'uefi-sb', timedOut: false })
  assert.equal(v.diagnosis, null)
  assert.equal(v.finalStage, undefined)
  assert.equal(v.pass, false)
})

test('judgeBoot() passes a lab cell on its report, and fails it without one', () => {
  assert.equal(
    judgeBoot(NO_FINAL_STAGE, { firmware: 'bios', timedOut: false, needReport: true, reportReceived: true }).pass,
    true,
  )
  const lost = judgeBoot(GOOD_UEFI_SB_BOOT, {
    firmware: 'uefi-sb',
    timedOut: true,
    needReport: true,
    reportReceived: false,
  })
  assert.equal(lost.pass, false)
  assert.equal(lost.diagnosis?.code, 'no-network')
  const noNic = judgeBoot(NO_NIC_BOOT, { firmware: 'bios', timedOut: true, needReport: true, reportReceived: false })
  assert.equal(noNic.diagnosis?.code, 'no-network')
  assert.match(noNic.diagnosis!.summary, /no driver for the NIC/)
})

test('failureReason() words the diagnosis, then Secure Boot, then the missing final stage', () => {
  const base = { firmware: 'uefi-sb' as const, secureBoot: 'enabled' as const, finalStage: true, diagnosis: null }
  assert.equal(
    failureReason({
      ...base,
      finalStage: false,
      diagnosis: {
        code: 'root-device-missing',
        summary: 'The initramfs gave up',
        evidence: 'ALERT!  UUID=1 does not exist.',
      },
    }),
    'The initramfs gave up — "ALERT!  UUID=1 does not exist."',
  )
  assert.equal(
    failureReason({ ...base, secureBoot: 'disabled' }),
    'the kernel does not report Secure Boot enabled (disabled)',
  )
  assert.equal(
    failureReason({ ...base, secureBoot: null }),
    'the kernel does not report Secure Boot enabled (no report)',
  )
  assert.equal(
    failureReason({ ...base, firmware: 'bios', secureBoot: null, finalStage: false }),
    "cloud-init's final stage was not reached",
  )
  assert.equal(failureReason(base), 'unknown')
})
