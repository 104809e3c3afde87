import assert from 'node:assert/strict'
import { test } from 'node:test'
import { chrootWrapperScript } from './tree-chroot.js'

test('chrootWrapperScript() diverts grub-probe in, runs the script, diverts it out even when the script fails', () => {
  const lines = chrootWrapperScript().trimEnd().split('\n')
  const at = (re: RegExp) => lines.findIndex((l) => re.test(l))
  assert.equal(at(/^dpkg-divert --local --rename --add \/usr\/sbin\/grub-probe$/), 0)
  assert.match(lines[1]!, /^ln -sf \/usr\/local\/lib\/hwimage-chroot\/grub-probe \/usr\/sbin\/grub-probe$/)
  // sh -e does not stop at a command on the left of ||: the diversion is removed either way.
  const runAt = at(/^sh -e \/root\/hwimage-chroot\.sh \|\| rc=\$\?$/)
  assert.ok(runAt > 1)
  assert.ok(at(/^dpkg-divert --local --rename --remove \/usr\/sbin\/grub-probe$/) > runAt)
  assert.equal(lines.at(-1), 'exit $rc')
})
