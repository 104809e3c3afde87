import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const exec = promisify(execFile)
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

// The public API, as docs/api.md lists it: adding or removing an export changes this list.
const FUNCTIONS = [
  'install',
  'formatReport',
  'formatPlan',
  'seedStep',
  'parseDiskHints',
  'buildImage',
  'parseSpec',
  'validateSpec',
  'makeSeedVolume',
  'readSeedVolume',
  'parseSeed',
  'validateSeed',
  'encodeIronicConfigDrive',
  'decodeIronicConfigDrive',
  'inspectImage',
  'exitCodeOf',
]
const ERRORS = [
  'HwimageError',
  'UsageError',
  'InputError',
  'FormatError',
  'ToolError',
  'DeviceError',
  'InterruptedError',
]
const VALUES = ['DEFAULT_SPEC_YAML', 'SEED_FORMATS']
const ALL = [...FUNCTIONS, ...ERRORS, ...VALUES].sort()

test('the entry exports the API functions, the error classes and nothing else', async () => {
  const api = (await import('./index.js')) as Record<string, unknown>
  assert.deepEqual(Object.keys(api).sort(), ALL)
  for (const name of FUNCTIONS) assert.equal(typeof api[name], 'function', name)
  const { HwimageError, InputError, FormatError, UsageError, exitCodeOf } = await import('./index.js')
  for (const name of ERRORS) {
    const cls = api[name] as abstract new (...args: never[]) => unknown
    assert.ok(cls === HwimageError || cls.prototype instanceof HwimageError, `${name} extends HwimageError`)
  }
  const e = new FormatError('FORMAT_BMAP', 'Cannot read bmap "x": not XML')
  assert.ok(e instanceof InputError)
  assert.equal(e.code, 'FORMAT_BMAP')
  assert.equal(exitCodeOf(e), 2)
  assert.equal(new UsageError('Cannot install: no SOURCE').code, 'USAGE')
})

test('package.json points "exports" and "types" at what tsconfig.build.json makes of src/index.ts', async () => {
  const pkg = JSON.parse(await fsp.readFile(path.join(ROOT, 'package.json'), 'utf8')) as {
    exports: Record<string, { types: string; default: string }>
    types: string
  }
  const build = JSON.parse(await fsp.readFile(path.join(ROOT, 'tsconfig.build.json'), 'utf8')) as {
    compilerOptions: { rootDir: string; outDir: string }
  }
  const out = (ext: string) =>
    `./${path.posix.join(build.compilerOptions.outDir, path.posix.relative(build.compilerOptions.rootDir, 'src/index.ts').replace(/\.ts$/, ext))}`
  assert.deepEqual(pkg.exports['.'], { types: out('.d.ts'), default: out('.js') })
  assert.equal(pkg.types, out('.d.ts'))
})

// Builds the package into a scratch copy (tsc -p tsconfig.build.json) and uses it the way a
// dependent project would: `import 'hwimage'` from plain Node (no tsx), and a TypeScript
// consumer type-checked against the emitted declarations.
test('the built package resolves as "hwimage" in Node and TypeScript, internals unexported', async () => {
  const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'hwimage-api-'))
  try {
    const pkgDir = path.join(tmp, 'pkg')
    const appDir = path.join(tmp, 'app')
    await fsp.mkdir(path.join(appDir, 'node_modules'), { recursive: true })
    await fsp.mkdir(pkgDir)
    // tsc emits even when some file has a type error; reporting those is `make typecheck`'s
    // job, so this test needs only the emitted files (the consumer below type-checks the API).
    const built = await exec(path.join(ROOT, 'node_modules/.bin/tsc'), [
      '-p',
      path.join(ROOT, 'tsconfig.build.json'),
      '--outDir',
      path.join(pkgDir, 'dist'),
    ]).then(
      () => '',
      (e: { stdout?: string }) => e.stdout ?? '',
    )
    for (const f of ['dist/index.js', 'dist/index.d.ts']) {
      await fsp
        .access(path.join(pkgDir, f))
        .catch(() => assert.fail(`tsc -p tsconfig.build.json did not emit ${f}:\n${built}`))
    }
    await fsp.copyFile(path.join(ROOT, 'package.json'), path.join(pkgDir, 'package.json'))
    await fsp.symlink(path.join(ROOT, 'node_modules'), path.join(pkgDir, 'node_modules'))
    await fsp.symlink(pkgDir, path.join(appDir, 'node_modules/hwimage'))

    await fsp.writeFile(
      path.join(appDir, 'check.mjs'),
      [
        "const api = await import('hwimage')",
        "const internal = await import('hwimage/dist/errors.js').then(() => 'exported', (e) => e.code)",
        'console.log(JSON.stringify({ keys: Object.keys(api).sort(), install: typeof api.install, internal }))',
      ].join('\n'),
    )
    const { stdout } = await exec(process.execPath, ['check.mjs'], { cwd: appDir })
    assert.deepEqual(JSON.parse(stdout), { keys: ALL, install: 'function', internal: 'ERR_PACKAGE_PATH_NOT_EXPORTED' })

    await fsp.writeFile(
      path.join(appDir, 'consumer.ts'),
      [
        "import { install, HwimageError, type InstallOptions, type InstallReport, type ErrorCode } from 'hwimage'",
        '// @ts-expect-error: only the entry is exported',
        "import type {} from 'hwimage/dist/errors.js'",
        "const opts: InstallOptions = { source: 'debian.img', disk: 'target.img', verify: true }",
        'export async function run(): Promise<InstallReport | ErrorCode> {',
        '  try {',
        '    return await install(opts)',
        '  } catch (e) {',
        '    if (e instanceof HwimageError) return e.code',
        '    throw e',
        '  }',
        '}',
        '// @ts-expect-error: an unknown option is a type error',
        "export const bad: InstallOptions = { source: 'a.img', disks: 'b.img' }",
      ].join('\n'),
    )
    await fsp.writeFile(
      path.join(appDir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          target: 'ES2022',
          strict: true,
          noEmit: true,
          types: ['node'],
          typeRoots: [path.join(ROOT, 'node_modules/@types')],
        },
        files: ['consumer.ts'],
      }),
    )
    await exec(path.join(ROOT, 'node_modules/.bin/tsc'), ['-p', path.join(appDir, 'tsconfig.json')]).catch(
      (e: { stdout?: string }) => {
        assert.fail(`the consumer does not type-check:\n${e.stdout}`)
      },
    )
  } finally {
    await fsp.rm(tmp, { recursive: true, force: true })
  }
})
