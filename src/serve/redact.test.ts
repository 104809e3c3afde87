import assert from 'node:assert/strict'
import { test } from 'node:test'
import { redact, redactRecord } from './redact.js'

const TOKEN = 'Zm9vYmFyLXNlY3JldC10b2tlbi0xMjM0NTY3ODkw'

test('redact() removes tokens from Authorization values, kernel command lines, query strings and JSON', () => {
  for (const text of [
    `Authorization: Bearer ${TOKEN}`,
    `authorization: bearer ${TOKEN}`,
    `linux (tftp)/deploy/vmlinuz hwimage.url=http://x hwimage.token=${TOKEN} console=ttyS0`,
    `/api/v1/machines/52:54:00:12:34:56/seed?token=${TOKEN}&x=1`,
    `/x?access_token=${TOKEN}`,
    `{"token":"${TOKEN}","mac":"52:54:00:12:34:56"}`,
  ]) {
    const out = redact(text)
    assert.ok(!out.includes(TOKEN), out)
    assert.match(out, /\[redacted\]/)
  }
  assert.equal(
    redact('hwimage.token=abc console=ttyS0'),
    'hwimage.token=[redacted] console=ttyS0',
    'what follows the token stays',
  )
  assert.equal(
    redact('GET /images/default/x.img.zst 206'),
    'GET /images/default/x.img.zst 206',
    'text without tokens is unchanged',
  )
})

test('redactRecord() redacts string values and drops values of keys named like secrets, in nested records too', () => {
  const r = redactRecord({
    path: `/boot?token=${TOKEN}`,
    token: TOKEN,
    nested: { authorization: `Bearer ${TOKEN}`, note: `hwimage.token=${TOKEN}` },
    status: 200,
  })
  assert.ok(!JSON.stringify(r).includes(TOKEN))
  assert.equal(r.status, 200)
  assert.equal(r.token, '[redacted]')
})
