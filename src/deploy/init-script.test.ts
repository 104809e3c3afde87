import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DEPLOY_MARKERS, initScript, udhcpcScript } from './init-script.js'

test('initScript() and udhcpcScript() are valid POSIX shell (dash -n)', () => {
  for (const script of [initScript(), udhcpcScript()]) execFileSync('dash', ['-n'], { input: script })
})

test('initScript() prints every marker and never the token', () => {
  const s = initScript()
  for (const m of [
    DEPLOY_MARKERS.up,
    DEPLOY_MARKERS.version,
    DEPLOY_MARKERS.inventoryBegin,
    DEPLOY_MARKERS.inventoryEnd,
    DEPLOY_MARKERS.failed,
  ])
    assert.ok(s.includes(m), m)
  // Every use of the token's value is an assignment, the export, or a test for emptiness.
  for (const use of s.replaceAll(/-n "\$HWIMAGE_TOKEN"/g, '').matchAll(/\$\{?HWIMAGE_TOKEN/g))
    assert.fail(`the token's value is used at ${use.index}`)
})

test('udhcpcScript() on "bound" sets the address, the default route and resolv.conf from the lease', () => {
  const dir = mkdtempSync(join(tmpdir(), 'udhcpc-'))
  try {
    const log = join(dir, 'ip.log')
    // A fake ip(8) that records its arguments; the script's file paths point into dir.
    writeFileSync(join(dir, 'ip'), `#!/bin/sh\necho "$*" >> ${log}\n`)
    chmodSync(join(dir, 'ip'), 0o755)
    const script = udhcpcScript()
      .replaceAll('/etc/resolv.conf', join(dir, 'resolv.conf'))
      .replaceAll('/sys/class/net/$interface/address', '/dev/null')
      .replaceAll('> /dev/console', `>> ${join(dir, 'console')}`)
    writeFileSync(join(dir, 'script'), script)
    execFileSync('dash', [join(dir, 'script'), 'bound'], {
      env: {
        PATH: `${dir}:/usr/bin:/bin`,
        interface: 'eth0',
        ip: '10.0.2.15',
        mask: '24',
        router: '10.0.2.2',
        dns: '10.0.2.3',
        domain: 'lab',
        lease: '86400',
      },
    })
    const calls = readFileSync(log, 'utf8')
    assert.match(calls, /^addr add 10\.0\.2\.15\/24 dev eth0$/m)
    assert.match(calls, /^route add default via 10\.0\.2\.2 dev eth0 metric 0$/m)
    assert.equal(readFileSync(join(dir, 'resolv.conf'), 'utf8'), 'search lab\nnameserver 10.0.2.3\n')
    assert.match(
      readFileSync(join(dir, 'console'), 'utf8'),
      new RegExp(`^${DEPLOY_MARKERS.dhcp} eth0 +10\\.0\\.2\\.15/24 router 10\\.0\\.2\\.2 lease 86400s$`, 'm'),
    )
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
