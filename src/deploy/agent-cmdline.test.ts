import assert from 'node:assert/strict'
import { test } from 'node:test'
import { HwimageError } from '../errors.js'
import { agentIdentity, parseCmdline } from './agent-cmdline.js'

test("agentIdentity(): serve's iPXE command line gives the URL, MAC and token", () => {
  const line =
    'initrd=initrd hwimage.url=http://10.0.2.2:8080/ hwimage.mac=52:54:00:12:34:56 hwimage.token=abc_DEF-123 console=ttyS0,115200n8\n'
  assert.deepEqual(agentIdentity(line), {
    url: 'http://10.0.2.2:8080',
    mac: '52:54:00:12:34:56',
    token: 'abc_DEF-123',
    enlist: false,
  })
})

test('agentIdentity(): BOOTIF stands in for hwimage.mac; flags win; hwimage.enlist=1 without a token enlists', () => {
  const line = 'BOOTIF=01-52-54-00-AB-CD-EF hwimage.url=http://h:1 hwimage.enlist=1'
  assert.deepEqual(agentIdentity(line), { url: 'http://h:1', mac: '52:54:00:ab:cd:ef', enlist: true })
  assert.deepEqual(agentIdentity(line, { token: 't', url: 'http://other:2' }), {
    url: 'http://other:2',
    mac: '52:54:00:ab:cd:ef',
    token: 't',
    enlist: false,
  })
})

test('agentIdentity(): a missing URL, MAC or token is a usage error naming it', () => {
  const usage = (re: RegExp) => (e: unknown) => e instanceof HwimageError && e.exitCode === 2 && re.test(e.message)
  assert.throws(() => agentIdentity('hwimage.mac=52:54:00:12:34:56 hwimage.token=t'), usage(/no serve URL/))
  assert.throws(() => agentIdentity('hwimage.url=http://h hwimage.token=t'), usage(/no MAC address/))
  assert.throws(() => agentIdentity('hwimage.url=http://h hwimage.mac=zz hwimage.token=t'), usage(/"zz" is not one/))
  assert.throws(() => agentIdentity('hwimage.url=http://h hwimage.mac=52:54:00:12:34:56'), usage(/no token/))
})

test('parseCmdline(): quoted values keep their spaces', () => {
  assert.equal(parseCmdline('a=1 b="x y" quiet').get('b'), 'x y')
  assert.equal(parseCmdline('a=1 b="x y" quiet').get('quiet'), '')
})
