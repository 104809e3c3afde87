import { test, after, before } from 'node:test'
import assert from 'node:assert/strict'
import { InputError } from '../errors.js'
import { openKernel, type KernelTree } from '../kernel/kernel-package.js'
import { makeKernelFixture, type KernelFixture } from '../kernel/kernel.fixture.js'
import { checkSpecModules, checkSpecModulesEarly } from './spec-modules.js'
import { parseSpec } from './spec.js'

let fixture: KernelFixture
let tree: KernelTree
before(async () => {
  fixture = await makeKernelFixture()
  tree = await openKernel(fixture.root)
})
after(() => fixture.cleanup())

const modules = (add: string[], remove: string[] = []) => ({ add, remove })

function rejectsWith(fn: () => unknown, code: string, message: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof InputError, `expected InputError, got ${String(e)}`)
    assert.equal(e.code, code)
    assert.equal(e.exitCode, 2)
    assert.match(e.message, message)
    return true
  })
}

test('checkSpecModules() accepts modules the kernel has, built-ins to add, and dashes for underscores', () => {
  checkSpecModules(tree, modules(['snd-hda-intel', 'sfc', 'ehci_hcd'], ['r8169']))
})

test('checkSpecModules() names the field and the value of an unknown module to add', () =>
  rejectsWith(
    () => checkSpecModules(tree, modules(['sfc', 'no_such_mod']), 'spec "x.yaml"'),
    'MODULE_UNKNOWN',
    /^Invalid spec "x.yaml": field "kernel.modules.add\[1\]": kernel 6.1.0-test-amd64 has no module "no_such_mod"$/,
  ))

test('checkSpecModules() names the field of an unknown module to remove, and suggests near names', () => {
  assert.throws(
    () => checkSpecModules(tree, modules([], ['r816'])),
    (e: unknown) => {
      assert.ok(e instanceof InputError)
      assert.equal(e.code, 'MODULE_UNKNOWN')
      assert.match(e.message, /field "kernel.modules.remove\[0\]".*"r816"/)
      assert.match(e.hint ?? '', /did you mean "r8169"/)
      return true
    },
  )
})

test('checkSpecModules() refuses to remove a module built into vmlinuz', () =>
  rejectsWith(
    () => checkSpecModules(tree, modules([], ['nls_base'])),
    'SPEC_INVALID',
    /field "kernel.modules.remove\[0\]": module "nls_base" is built into vmlinuz/,
  ))

test('checkSpecModules() refuses to remove a module an added one needs', () =>
  rejectsWith(
    () => checkSpecModules(tree, modules(['usb-storage'], ['scsi_mod'])),
    'SPEC_INVALID',
    /field "kernel.modules".*"scsi_mod": added module "usb_storage" needs it/,
  ))

test('checkSpecModulesEarly() skips the check, saying why, on a host of another release', async () => {
  const spec = parseSpec('kernel: { modules: { add: [no_such_mod] } }\n')
  const r = await checkSpecModulesEarly(spec, { hostRelease: 'trixie' })
  assert.equal(r.checked, false)
  assert.match(r.checked ? '' : r.reason, /runs trixie.*checked after the root tree is built/)
})

test('checkSpecModulesEarly() fetches nothing when the spec changes no modules', async () => {
  const r = await checkSpecModulesEarly(parseSpec('name: x\n'), { hostRelease: null })
  assert.deepEqual(r, { checked: false, reason: 'the spec changes no modules' })
})
