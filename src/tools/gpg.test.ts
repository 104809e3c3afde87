import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { HwimageError } from '../errors.js'
import {
  clearSignArgv,
  detachSignArgv,
  gpgClearSign,
  gpgDearmor,
  gpgDetachSign,
  gpgExportKey,
  gpgSecretKeyFingerprint,
  gpgvClearSignedArgv,
  gpgvVerifyClearSigned,
  gpgvVerifyDetached,
  parseGpgvStatus,
} from './gpg.js'
import { makeTestKey, type TestKey, withGnupgHome } from './gpg.fixture.js'

let dir: string
let key: TestKey
let other: TestKey

before(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hwimage-gpg-'))
  ;[key, other] = await Promise.all([makeTestKey('signer'), makeTestKey('someone else')])
})
after(async () => {
  await key?.close()
  await other?.close()
  await fsp.rm(dir, { recursive: true, force: true })
})

test('the argv builders name the key, the output and the mode, and make the keyring absolute', () => {
  assert.deepEqual(clearSignArgv({ key: 'K', input: 'a.json', output: 'a.sjson' }), [
    'gpg',
    '--batch',
    '--yes',
    '--local-user',
    'K',
    '--output',
    'a.sjson',
    '--clearsign',
    'a.json',
  ])
  assert.deepEqual(detachSignArgv({ key: 'K', input: 'a.json', output: 'a.json.gpg' }).slice(-5), [
    '--armor',
    '--output',
    'a.json.gpg',
    '--detach-sign',
    'a.json',
  ])
  const v = gpgvClearSignedArgv('keyring.gpg')
  assert.equal(v[0], 'gpgv')
  assert.equal(v[v.indexOf('--keyring') + 1], path.resolve('keyring.gpg'))
})

test('parseGpgvStatus() tells a good signature, a bad one and an unknown key apart', () => {
  assert.deepEqual(
    parseGpgvStatus('[GNUPG:] GOODSIG 12 x\n[GNUPG:] VALIDSIG ABCDEF 2026-12-02 1 0 4 0 22 8 01 ABCDEF\n'),
    {
      ok: true,
      fingerprint: 'ABCDEF',
    },
  )
  assert.deepEqual(parseGpgvStatus('[GNUPG:] BADSIG 125EC6346148063D x\n'), {
    ok: false,
    reason: 'bad',
    keyId: '125EC6346148063D',
  })
  assert.equal(parseGpgvStatus('[GNUPG:] ERRSIG 12 22 8 01 0 9 F\n[GNUPG:] NO_PUBKEY 12\n').ok, false)
  assert.deepEqual(parseGpgvStatus('gpgv: no valid OpenPGP data found.\n[GNUPG:] NODATA 1\n'), {
    ok: false,
    reason: 'no-signature',
  })
})

test('a clear-signed file verifies with gpgv against the exported key, and gives back the signed text', async () => {
  const input = path.join(dir, 'doc.json')
  const text = '{\n "format": "index:1.0",\n "-dash": "- leading dashes are escaped"\n}\n'
  await fsp.writeFile(input, text)
  await withGnupgHome(key, async () => {
    assert.equal(await gpgSecretKeyFingerprint(key.fingerprint), key.fingerprint)
    await gpgClearSign({ key: key.fingerprint, input, output: `${input}.sjson` })
    await gpgDetachSign({ key: key.fingerprint, input, output: `${input}.gpg` })
  })
  const signed = await fsp.readFile(`${input}.sjson`, 'utf8')
  assert.match(signed, /^-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA\d+\n\n/)
  const v = await gpgvVerifyClearSigned(signed, key.keyring, 'doc.sjson')
  assert.equal(v.fingerprint, key.fingerprint)
  assert.equal(v.text, text)
  assert.deepEqual(await gpgvVerifyDetached(`${input}.gpg`, input, key.keyring, 'doc.json.gpg'), {
    fingerprint: key.fingerprint,
  })
})

test('gpgv refuses a changed byte, another key, and a text with no signature (SIGNATURE_INVALID)', async () => {
  const input = path.join(dir, 'tamper.json')
  await fsp.writeFile(input, '{"size": 1000}\n')
  await withGnupgHome(key, () => gpgClearSign({ key: key.fingerprint, input, output: `${input}.sjson` }))
  const signed = await fsp.readFile(`${input}.sjson`, 'utf8')
  const expectInvalid = async (p: Promise<unknown>, message: RegExp) =>
    await assert.rejects(p, (e: unknown) => {
      assert.ok(e instanceof HwimageError)
      assert.equal(e.code, 'SIGNATURE_INVALID')
      assert.equal(e.exitCode, 2)
      assert.match(e.message, message)
      return true
    })
  await expectInvalid(gpgvVerifyClearSigned(signed.replace('1000', '1001'), key.keyring, 'x'), /does not match/)
  await expectInvalid(gpgvVerifyClearSigned(signed, other.keyring, 'x'), /not in the keyring/)
  await expectInvalid(gpgvVerifyClearSigned('{"size": 1000}\n', key.keyring, 'x'), /no OpenPGP signature/)
})

test('gpgSecretKeyFingerprint() is undefined for a key that is not there; gpgDearmor() makes an armored key usable', async () => {
  await withGnupgHome(key, async () => {
    assert.equal(await gpgSecretKeyFingerprint('nobody@nowhere.invalid'), undefined)
    const armored = await gpgExportKey(key.fingerprint, { armor: true })
    assert.match(armored.toString(), /^-----BEGIN PGP PUBLIC KEY BLOCK-----/)
    const binary = await gpgDearmor(armored)
    assert.deepEqual(Buffer.from(binary), await fsp.readFile(key.keyring))
    const asIs = await fsp.readFile(key.keyring)
    assert.equal(await gpgDearmor(asIs), asIs)
  })
})
