import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { HwimageError } from '../errors.js'
import { loadServeConfig, parseServeConfig } from './config.js'

let dir: string
before(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hwimage-serve-config-'))
  await fsp.mkdir(path.join(dir, 'out'))
  await fsp.writeFile(path.join(dir, 'out', 'debian-12-server-amd64.img.zst'), 'x')
  await fsp.writeFile(path.join(dir, 'out', 'SHA256SUMS'), '')
  await fsp.writeFile(path.join(dir, 'seed.yaml'), 'hostname: node-1\n')
  await fsp.writeFile(path.join(dir, 'bad-seed.yaml'), 'hostname: 3\nnope: 1\n')
})
after(() => fsp.rm(dir, { recursive: true, force: true }))

const base = `public_url: http://10.0.2.2:8080
state_dir: state
images:
  default: out
`

/** The field a CONFIG_INVALID error names, with its exit code. */
function refusal(text: string): { field: string; exit: number; message: string } {
  try {
    parseServeConfig(text, 'serve.yaml', dir)
  } catch (e) {
    assert.ok(e instanceof HwimageError)
    assert.equal(e.code, 'CONFIG_INVALID', e.message)
    return {
      field: /field "([^"]+)"|unknown key "([^"]+)"/.exec(e.message)?.slice(1).find(Boolean) ?? '',
      exit: e.exitCode,
      message: e.message,
    }
  }
  assert.fail('expected CONFIG_INVALID')
}

test('parseServeConfig() reads a full config: paths relative to its directory, MACs normalized, hints parsed, the seed read', () => {
  const c = parseServeConfig(
    `${base}listen: { host: 127.0.0.1, port: 9000 }
deploy_dir: deploy
tftp_root: /srv/tftp
unknown_macs: enlist
operator_token: 0123456789abcdef0123
kernel_args: console=ttyS0,115200n8
machines:
  52-54-00-AA-BB-01:
    name: node-1
    image: default
    seed: seed.yaml
    disk_hints: ['size=>=10G', rotational=0]
`,
    'serve.yaml',
    dir,
  )
  assert.deepEqual(c.listen, { host: '127.0.0.1', port: 9000 })
  assert.equal(c.publicUrl, 'http://10.0.2.2:8080')
  assert.equal(c.stateDir, path.join(dir, 'state'))
  assert.equal(c.deployDir, path.join(dir, 'deploy'))
  assert.equal(c.tftpRoot, '/srv/tftp')
  assert.equal(c.unknownMacs, 'enlist')
  assert.equal(c.images.get('default')!.file, 'debian-12-server-amd64.img.zst')
  const m = c.machines.get('52:54:00:aa:bb:01')!
  assert.equal(m.name, 'node-1')
  assert.equal(m.seedYaml, 'hostname: node-1\n')
  assert.deepEqual(m.diskHints, ['size=>=10G', 'rotational=0'])
  assert.equal(m.parsedHints!.minSize, 10 * 2 ** 30)
  assert.equal(m.parsedHints!.rotational, false)
})

test('parseServeConfig() defaults: listen 0.0.0.0:8080, unknown MACs ignored, no operator token (localhost only)', () => {
  const c = parseServeConfig(base, 'serve.yaml', dir)
  assert.deepEqual(c.listen, { host: '0.0.0.0', port: 8080 })
  assert.equal(c.unknownMacs, 'ignore')
  assert.equal(c.operatorToken, undefined)
})

for (const [what, text, field] of [
  ['a missing public_url', 'state_dir: s\n', 'public_url'],
  ['a public_url that is not http', base.replace('http://10.0.2.2:8080', 'ftp://x'), 'public_url'],
  ['a port out of range', `${base}listen: { port: 70000 }\n`, 'listen.port'],
  ['an unknown top-level key', `${base}colour: blue\n`, 'colour'],
  [
    'an unknown machine key',
    `${base}machines:\n  52:54:00:00:00:01: { imag: default }\n`,
    'machines.52:54:00:00:00:01.imag',
  ],
  ['unknown_macs not enlist/ignore', `${base}unknown_macs: maybe\n`, 'unknown_macs'],
  ['a short operator token', `${base}operator_token: abc\n`, 'operator_token'],
  ['a machine key that is not a MAC', `${base}machines:\n  node-1: { image: default }\n`, 'machines.node-1'],
  [
    'a machine naming an unknown image',
    `${base}machines:\n  52:54:00:00:00:01: { image: other }\n`,
    'machines.52:54:00:00:00:01.image',
  ],
  [
    'bad disk hints',
    `${base}machines:\n  52:54:00:00:00:01: { image: default, disk_hints: "colour=red" }\n`,
    'machines.52:54:00:00:00:01.disk_hints',
  ],
  [
    'a missing seed file',
    `${base}machines:\n  52:54:00:00:00:01: { image: default, seed: none.yaml }\n`,
    'machines.52:54:00:00:00:01.seed',
  ],
  [
    'an invalid seed',
    `${base}machines:\n  52:54:00:00:00:01: { image: default, seed: bad-seed.yaml }\n`,
    'machines.52:54:00:00:00:01.seed',
  ],
  ['an image directory that does not exist', base.replace('default: out', 'default: nowhere'), 'images.default'],
  ['an image directory without a .img.zst', base.replace('default: out', 'default: .'), 'images.default'],
  [
    'the same MAC twice',
    `${base}machines:\n  52:54:00:00:00:01: {}\n  52-54-00-00-00-01: {}\n`,
    'machines.52-54-00-00-00-01',
  ],
] as const) {
  test(`parseServeConfig() refuses ${what}: CONFIG_INVALID naming "${field}", exit 2`, () => {
    const r = refusal(text)
    assert.equal(r.field, field, r.message)
    assert.equal(r.exit, 2)
  })
}

test('parseServeConfig() refuses malformed YAML and a list at the top', () => {
  assert.match(refusal('a: [').message, /malformed YAML/)
  assert.match(refusal('- a\n').message, /expected a mapping/)
})

test('loadServeConfig() of a missing file is NOT_FOUND (exit 2)', async () => {
  await assert.rejects(
    loadServeConfig(path.join(dir, 'none.yaml')),
    (e: unknown) => e instanceof HwimageError && e.code === 'NOT_FOUND' && e.exitCode === 2,
  )
})
