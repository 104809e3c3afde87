// A TLS certificate for tests of https sources.

import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import path from 'node:path'

/** A self-signed certificate for 127.0.0.1, made with openssl(1); `file` holds the certificate alone. */
export function selfSignedCert(dir: string): { key: Buffer; cert: Buffer; file: string } {
  const key = path.join(dir, 'key.pem')
  const file = path.join(dir, 'cert.pem')
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      key,
      '-out',
      file,
    ],
    { stdio: 'ignore' },
  )
  return { key: readFileSync(key), cert: readFileSync(file), file }
}
