// GnuPG: gpg(1) signs catalog files with a key in GNUPGHOME and exports its public half;
// gpgv(1) verifies them against a keyring file and nothing else (no trust database, no
// agent, no key server), as simplestreams' clients and MAAS do. Each call is a pure argv
// builder (unit-tested) and a thin executor.
//
// What is trusted from gpgv: its exit status 0 *and* a VALIDSIG status line (the
// machine-readable --status-fd protocol, doc/DETAILS in GnuPG's sources). gpgv writes the
// signed text to --output even when the signature is bad, so the text is used only then.

import path from 'node:path'
import { InputError } from '../errors.js'
import { run, type RunResult } from './run.js'

/** gpg --clearsign: the OpenPGP cleartext signature of RFC 4880 §7 (simplestreams' .sjson). */
export function clearSignArgv(o: { key: string; input: string; output: string }): string[] {
  return ['gpg', '--batch', '--yes', '--local-user', o.key, '--output', o.output, '--clearsign', o.input]
}

/** gpg --armor --detach-sign: the detached signature simplestreams writes as FILE.json.gpg. */
export function detachSignArgv(o: { key: string; input: string; output: string }): string[] {
  return ['gpg', '--batch', '--yes', '--local-user', o.key, '--armor', '--output', o.output, '--detach-sign', o.input]
}

/** gpg --export: the public key as a binary keyring (what gpgv --keyring and MAAS read) or armored. */
export function exportKeyArgv(o: { key: string; armor?: boolean }): string[] {
  return ['gpg', '--batch', ...(o.armor ? ['--armor'] : []), '--export', o.key]
}

/** gpg --list-secret-keys in colon format: is the signing key usable here. */
export function listSecretKeysArgv(key: string): string[] {
  return ['gpg', '--batch', '--with-colons', '--list-secret-keys', key]
}

/** gpg --dearmor: an armored public key (.asc) into the binary form gpgv 2.2 reads. */
export function dearmorArgv(): string[] {
  return ['gpg', '--batch', '--dearmor']
}

/**
 * gpgv on a clear-signed text read from stdin: status lines on stderr (fd 2, each
 * "[GNUPG:] …"), the signed text on stdout. The keyring is made absolute: gpgv reads a
 * bare name as a file in GNUPGHOME.
 */
export function gpgvClearSignedArgv(keyring: string): string[] {
  return ['gpgv', '--status-fd', '2', '--keyring', path.resolve(keyring), '--output', '-', '-']
}

/** gpgv on a detached signature: SIGNATURE then DATA (gpgv's order). */
export function gpgvDetachedArgv(keyring: string, signature: string, data: string): string[] {
  return ['gpgv', '--status-fd', '2', '--keyring', path.resolve(keyring), signature, data]
}

/** What a good signature proves: the signing key's fingerprint. */
export interface VerifiedSignature {
  fingerprint: string
}

/** Reads gpgv's status lines: the VALIDSIG fingerprint, or why there is none. */
export function parseGpgvStatus(
  stderr: string,
):
  | { ok: true; fingerprint: string }
  | { ok: false; reason: 'bad' | 'no-public-key' | 'no-signature' | 'other'; keyId?: string } {
  const lines = stderr.split('\n').filter((l) => l.startsWith('[GNUPG:] '))
  const fields = (name: string) =>
    lines
      .find((l) => l.split(' ')[1] === name)
      ?.split(' ')
      .slice(2)
  const valid = fields('VALIDSIG')
  if (valid?.[0] && !fields('BADSIG') && !fields('ERRSIG')) return { ok: true, fingerprint: valid[0] }
  const bad = fields('BADSIG')
  if (bad) return { ok: false, reason: 'bad', ...(bad[0] ? { keyId: bad[0] } : {}) }
  const noKey = fields('NO_PUBKEY') ?? fields('ERRSIG')
  if (noKey) return { ok: false, reason: 'no-public-key', ...(noKey[0] ? { keyId: noKey[0] } : {}) }
  if (fields('NODATA')) return { ok: false, reason: 'no-signature' }
  return { ok: false, reason: 'other' }
}

/** Clear-signs `input` into `output` with `key` (from GNUPGHOME or ~/.gnupg). */
export async function gpgClearSign(o: { key: string; input: string; output: string }): Promise<void> {
  await run(clearSignArgv(o))
}

/** Writes an armored detached signature of `input` into `output`. */
export async function gpgDetachSign(o: { key: string; input: string; output: string }): Promise<void> {
  await run(detachSignArgv(o))
}

/** The public key, binary or armored. */
export async function gpgExportKey(key: string, opts: { armor?: boolean } = {}): Promise<Buffer> {
  const r = await run(exportKeyArgv({ key, ...opts }), { binary: true })
  return r.stdoutBytes
}

/** The fingerprint of the secret key `key` names, or undefined when there is none here. */
export async function gpgSecretKeyFingerprint(key: string): Promise<string | undefined> {
  const r = await run(listSecretKeysArgv(key), { okStatus: [0, 2] })
  if (r.status !== 0) return undefined
  // "sec:…" then "fpr:::::::::FINGERPRINT:" (the primary key's comes first).
  return r.stdout
    .split('\n')
    .find((l) => l.startsWith('fpr:'))
    ?.split(':')[9]
}

/** An armored key (.asc) as binary; a binary keyring is returned as it is. */
export async function gpgDearmor(key: Uint8Array): Promise<Uint8Array> {
  const head = Buffer.from(key.subarray(0, 64)).toString('latin1')
  if (!head.startsWith('-----BEGIN PGP')) return key
  return (await run(dearmorArgv(), { input: key, binary: true })).stdoutBytes
}

/**
 * Verifies a clear-signed text against a keyring; returns the signed text and the
 * signer's fingerprint. A bad signature, a key not in the keyring or no signature at all
 * is an InputError SIGNATURE_INVALID naming `what`.
 */
export async function gpgvVerifyClearSigned(
  signed: string,
  keyring: string,
  what: string,
): Promise<{ text: string } & VerifiedSignature> {
  const r = await run(gpgvClearSignedArgv(keyring), { input: signed, okStatus: [0, 1, 2] })
  return { text: r.stdout, ...checkStatus(r, what) }
}

/** Verifies a detached signature file of a data file against a keyring. */
export async function gpgvVerifyDetached(
  signature: string,
  data: string,
  keyring: string,
  what: string,
): Promise<VerifiedSignature> {
  return checkStatus(await run(gpgvDetachedArgv(keyring, signature, data), { okStatus: [0, 1, 2] }), what)
}

function checkStatus(r: RunResult, what: string): VerifiedSignature {
  const s = parseGpgvStatus(r.stderr)
  if (r.status === 0 && s.ok) return { fingerprint: s.fingerprint }
  const why = s.ok
    ? `gpgv exited with status ${r.status}`
    : s.reason === 'bad'
      ? `the signature by key ${s.keyId ?? '?'} does not match: it was changed after signing`
      : s.reason === 'no-public-key'
        ? `it is signed by key ${s.keyId ?? '?'}, which is not in the keyring`
        : s.reason === 'no-signature'
          ? 'it holds no OpenPGP signature'
          : (r.stderr.trim().split('\n').pop() ?? `gpgv exited with status ${r.status}`)
  return fail(what, why)
}

function fail(what: string, why: string): never {
  throw new InputError('SIGNATURE_INVALID', `Cannot verify ${what}: ${why}`, {
    hint: 'check that --keyring is the key the catalog is published with; a catalog that does not verify must not be used',
  })
}
