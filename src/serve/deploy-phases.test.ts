import { test } from 'node:test'
import assert from 'node:assert/strict'
import { deployPhases } from './deploy-phases.js'
import type { MachineEvent } from './state/store.js'

let id = 0
const ev = (time: string, kind: string, fields: Record<string, unknown> = {}): MachineEvent => ({
  id: ++id,
  mac: '52:54:00:12:34:56',
  time: `2026-12-02T10:${time}Z`,
  kind,
  fields,
})

test('deployPhases(): an iPXE deploy dated by its boot answer, inventory, first progress, report and first boot', () => {
  const events = [
    ev('00:00.000', 'configured'),
    ev('00:05.000', 'boot', { via: 'ipxe' }),
    ev('00:35.000', 'inventory', { uptimeSeconds: 20 }),
    ev('00:36.000', 'stage', { stage: 'write' }),
    ev('01:36.000', 'stage', { stage: 'verify' }),
    ev('02:06.000', 'installed'),
    ev('02:30.000', 'boot', { via: 'ipxe' }),
    ev('04:06.000', 'first-boot'),
  ]
  // The installed system booted 80 s before it sent its report at 10:04:00.
  const p = deployPhases({ firstBootReport: { time: '2026-12-02T10:04:00Z', uptime_seconds: 80 } }, events)
  assert.deepEqual(p.at, {
    networkBoot: '2026-12-02T10:00:05.000Z',
    deployEnvironmentUp: '2026-12-02T10:00:35.000Z',
    installStarted: '2026-12-02T10:00:36.000Z',
    installed: '2026-12-02T10:02:06.000Z',
    firstBoot: '2026-12-02T10:02:40.000Z',
    reported: '2026-12-02T10:04:06.000Z',
  })
  assert.deepEqual(p.seconds, {
    deployEnvironmentBoot: 30,
    waitForAssignment: 1,
    install: 90,
    reboot: 34,
    firstBoot: 86,
    total: 241,
  })
})

test('deployPhases(): a TFTP boot (no boot answer) is dated by the deploy kernel uptime; only the current deploy counts', () => {
  const events = [
    ev('00:05.000', 'boot', { via: 'ipxe' }),
    ev('00:30.000', 'stage', { stage: 'write' }),
    ev('00:40.000', 'redeploy', { from: 'failed' }),
    ev('01:00.000', 'inventory', { uptimeSeconds: 12.5 }),
    ev('03:00.000', 'assigned'),
    ev('03:10.000', 'stage', { stage: 'write' }),
  ]
  const p = deployPhases({ firstBootReport: null }, events)
  assert.deepEqual(p.at, {
    networkBoot: '2026-12-02T10:00:47.500Z',
    deployEnvironmentUp: '2026-12-02T10:01:00.000Z',
    installStarted: '2026-12-02T10:03:10.000Z',
  })
  assert.deepEqual(p.seconds, { deployEnvironmentBoot: 12.5, waitForAssignment: 130 })
})
