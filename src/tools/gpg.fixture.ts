// A throwaway GnuPG home with one ed25519 signing key and no passphrase, for tests that
// sign and verify: its fingerprint, its public key as a binary keyring (what gpgv reads),
// and close(), which stops the gpg-agent the home started and removes it.

import { promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { run } from './run.js'

/** A GnuPG home made for a test. */
export interface TestKey {
  home: string
  fingerprint: string
  /** The public key, exported as a binary keyring file. */
  keyring: string
  /** Environment for a child (or run()) that signs with this key. */
  env: { GNUPGHOME: string }
  close(): Promise<void>
}

/** Makes a GnuPG home (a short path: gpg-agent's socket lives in it) with a new key for `name`. */
export async function makeTestKey(name = 'hwimage test'): Promise<TestKey> {
  const home = await fsp.mkdtemp(path.join(os.tmpdir(), 'hwgpg-'))
  await fsp.chmod(home, 0o700)
  const env = { GNUPGHOME: home }
  const uid = `${name} <${name.replaceAll(' ', '-')}@hwimage.invalid>`
  await run(['gpg', '--batch', '--passphrase', '', '--quick-gen-key', uid, 'ed25519', 'sign', 'never'], { env })
  const list = await run(['gpg', '--batch', '--with-colons', '--list-secret-keys'], { env })
  const fingerprint = list.stdout
    .split('\n')
    .find((l) => l.startsWith('fpr:'))!
    .split(':')[9]!
  const keyring = path.join(home, 'public.gpg')
  await fsp.writeFile(
    keyring,
    (await run(['gpg', '--batch', '--export', fingerprint], { env, binary: true })).stdoutBytes,
  )
  return {
    home,
    fingerprint,
    keyring,
    env,
    close: async () => {
      await run(['gpgconf', '--homedir', home, '--kill', 'gpg-agent'], { okStatus: [0, 1, 2] }).catch(() => {})
      await fsp.rm(home, { recursive: true, force: true })
    },
  }
}

/** Runs `fn` with GNUPGHOME set to the key's home in this process (run() passes it to gpg). */
export async function withGnupgHome<T>(key: TestKey, fn: () => Promise<T>): Promise<T> {
  const before = process.env.GNUPGHOME
  process.env.GNUPGHOME = key.home
  try {
    return await fn()
  } finally {
    if (before === undefined) delete process.env.GNUPGHOME
    else process.env.GNUPGHOME = before
  }
}
