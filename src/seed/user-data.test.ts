import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { test } from 'node:test'
import { parse } from 'yaml'
import { buildMultipart, isMimeDocument } from './mime-multipart.js'
import { parseSeed } from './seed-schema.js'
import { HWIMAGE_MERGE_HOW, hwimageCloudConfig, renderUserData } from './user-data.js'
import { renderVendorData } from './vendor-data.js'

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGqExampleKeyOnly ops@example'

// Python's email parser is what cloud-init's UserDataProcessor uses.
function pythonParts(doc: string): { type: string; filename: string | null; body: string }[] {
  const script = `
import email, json, sys
msg = email.message_from_string(sys.stdin.read())
out = []
for part in msg.walk():
    if part.is_multipart():
        continue
    out.append({"type": part.get_content_type(), "filename": part.get_filename(), "body": part.get_payload(decode=True).decode()})
print(json.dumps(out))
`
  return JSON.parse(execFileSync('python3', ['-c', script], { input: doc, encoding: 'utf8' }))
}

test('hwimageCloudConfig() turns seed users into cloud-config users with passwordless sudo and locked passwords', () => {
  const seed = parseSeed(`
hostname: metal-01
users:
  - {name: ops, ssh_authorized_keys: ["${KEY}"], sudo: true, groups: [adm]}
  - {name: dev, password_hash: "$y$j9T$salt$hash", shell: /bin/sh}
`)
  assert.deepEqual(hwimageCloudConfig(seed), {
    merge_how: HWIMAGE_MERGE_HOW,
    users: [
      {
        name: 'ops',
        shell: '/bin/bash',
        groups: ['adm'],
        sudo: 'ALL=(ALL) NOPASSWD:ALL',
        lock_passwd: true,
        ssh_authorized_keys: [KEY],
      },
      { name: 'dev', shell: '/bin/sh', hashed_passwd: '$y$j9T$salt$hash', lock_passwd: false },
    ],
    manage_etc_hosts: true,
  })
  assert.equal(hwimageCloudConfig(parseSeed('')), undefined)
})

test('renderUserData() passes the operator user-data through unchanged when hwimage adds nothing', () => {
  const ud = '#!/bin/sh\necho hi\n'
  assert.equal(renderUserData(parseSeed(`user_data: ${JSON.stringify(ud)}\n`)), ud)
  assert.equal(renderUserData(parseSeed('')), '')
})

test('renderUserData() writes hwimage cloud-config alone when the operator gave no user-data', () => {
  const ud = renderUserData(parseSeed('hostname: a\n'))
  assert.match(ud, /^#cloud-config\n/)
  assert.deepEqual(parse(ud, { version: '1.1' }), { merge_how: HWIMAGE_MERGE_HOW, manage_etc_hosts: true })
})

test('renderUserData() puts the operator part first, verbatim, and hwimage part second with its merge rule', () => {
  const operator = '#cloud-config\nusers: [default, {name: alice}]\nruncmd: [[touch, /root/hello]]\n'
  const seed = parseSeed(`hostname: a\nusers: [{name: ops}]\nuser_data: ${JSON.stringify(operator)}\n`)
  const parts = pythonParts(renderUserData(seed))
  assert.equal(parts.length, 2)
  assert.deepEqual(parts[0], { type: 'text/x-not-multipart', filename: 'user-data', body: operator })
  assert.equal(parts[1]!.type, 'text/cloud-config')
  assert.equal(parts[1]!.filename, 'hwimage-seed.cfg')
  const ours = parse(parts[1]!.body, { version: '1.1' }) as Record<string, unknown>
  assert.deepEqual(ours.merge_how, HWIMAGE_MERGE_HOW)
  assert.deepEqual(ours.users, [{ name: 'ops', shell: '/bin/bash', lock_passwd: true }])
})

test('renderUserData() nests an operator MIME multipart document as is', () => {
  const inner = buildMultipart([
    { kind: 'text', contentType: 'text/x-shellscript', filename: 'a.sh', body: '#!/bin/sh\necho a\n' },
    { kind: 'text', contentType: 'text/cloud-config', filename: 'b.cfg', body: '#cloud-config\npackages: [jq]\n' },
  ])
  assert.ok(isMimeDocument(inner))
  const seed = parseSeed(`users: [{name: ops}]\nuser_data: ${JSON.stringify(inner)}\n`)
  const parts = pythonParts(renderUserData(seed))
  assert.deepEqual(
    parts.map((p) => [p.type, p.filename]),
    [
      ['text/x-shellscript', 'a.sh'],
      ['text/cloud-config', 'b.cfg'],
      ['text/cloud-config', 'hwimage-seed.cfg'],
    ],
  )
  assert.equal(parts[0]!.body, '#!/bin/sh\necho a\n')
})

test('buildMultipart() survives bodies with non-ASCII text and boundary-like lines', () => {
  const body = '#cloud-config\n# héllo — ünïcode\nbootcmd: ["echo --===============hwimage-x=="]\n'
  const parts = pythonParts(
    buildMultipart([
      { kind: 'text', contentType: 'text/cloud-config', filename: 'x', body, mergeType: 'list(append)' },
    ]),
  )
  assert.deepEqual(parts, [{ type: 'text/cloud-config', filename: 'x', body }])
})

test('renderVendorData() is the first-boot script alone, the operator vendor-data alone, both, or nothing', () => {
  const script = { contract: 'hwimage-seed/1', label: 'CIDATA', partitionName: 'cidata' }
  assert.equal(renderVendorData(parseSeed(''), script), undefined)
  assert.equal(
    renderVendorData(parseSeed('vendor_data: "#cloud-config\\nntp: {enabled: true}\\n"\n'), script),
    '#cloud-config\nntp: {enabled: true}\n',
  )
  const onlyScript = pythonParts(renderVendorData(parseSeed('cleanup: true\n'), script)!)
  assert.deepEqual(
    onlyScript.map((p) => [p.type, p.filename]),
    [['text/x-shellscript', 'hwimage-first-boot']],
  )
  assert.match(onlyScript[0]!.body, /^#!\/usr\/bin\/python3\n/)
  assert.match(onlyScript[0]!.body, /"cleanup\\":true/)
  const both = pythonParts(
    renderVendorData(parseSeed('report: {url: "http://h/"}\nvendor_data: "#!/bin/sh\\ntrue\\n"\n'), script)!,
  )
  assert.deepEqual(
    both.map((p) => [p.type, p.filename]),
    [
      ['text/x-not-multipart', 'vendor-data'],
      ['text/x-shellscript', 'hwimage-first-boot'],
    ],
  )
})
