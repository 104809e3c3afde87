// Errors: one base class with a string code, a message, an optional hint (what the
// user should do) and a cause. Tests and `--json` output match on `code`, never on
// the message text. Exit codes: 1 failed, 2 usage or bad input, 130 interrupted.

/** Every error code hwimage reports, grouped by kind. */
export type ErrorCode =
  // usage and bad input (exit 2)
  | 'USAGE'
  | 'SPEC_INVALID'
  | 'SEED_INVALID'
  | 'CONFIG_INVALID'
  | 'FORMAT_GPT'
  | 'FORMAT_MBR'
  | 'FORMAT_BMAP'
  | 'FORMAT_QCOW2'
  | 'FORMAT_FAT'
  | 'FORMAT_IMAGE'
  | 'FORMAT_INVENTORY'
  | 'FORMAT_KERNEL'
  | 'FORMAT_REPORT'
  | 'FORMAT_CPIO'
  | 'FORMAT_CATALOG'
  | 'SIGNATURE_MISSING'
  | 'SIGNATURE_INVALID'
  | 'CHECKSUM_MISMATCH'
  | 'SOURCE_TRUNCATED'
  | 'SOURCE_CORRUPT'
  | 'TARGET_TOO_SMALL'
  | 'TARGET_INVALID'
  | 'CONFIRMATION_REQUIRED'
  | 'SECTOR_SIZE_MISMATCH'
  | 'MODULE_UNKNOWN'
  | 'NOT_FOUND'
  // hwimage convert's refusals of an input image (docs/convert.md)
  | 'CONVERT_NO_ROOT'
  | 'CONVERT_ROOT_ENCRYPTED'
  | 'CONVERT_ROOT_LVM'
  | 'CONVERT_NOT_DEBIAN'
  | 'CONVERT_NOT_BOOKWORM'
  | 'CONVERT_NOT_AMD64'
  | 'CONVERT_NO_SPACE'
  // environment and failures (exit 1)
  | 'TOOL_MISSING'
  | 'TOOL_FAILED'
  | 'DEVICE_BUSY'
  | 'DEVICE_IO'
  | 'DEVICE_SELECT'
  | 'NETWORK'
  | 'BOOT_FAILED'
  | 'BUILD_FAILED'
  | 'KERNEL_UNRESOLVED'
  | 'INTERNAL'
  // interrupted (exit 130)
  | 'INTERRUPTED'

export interface ErrorOptions {
  hint?: string
  cause?: unknown
}

/** The base of every error hwimage throws on purpose. */
export class HwimageError extends Error {
  readonly code: ErrorCode
  readonly hint: string | undefined
  readonly exitCode: number = 1

  constructor(code: ErrorCode, message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = new.target.name
    this.code = code
    this.hint = options.hint
  }
}

/** Bad command line: unknown option, missing argument. Exit 2. */
export class UsageError extends HwimageError {
  override readonly exitCode = 2
  constructor(message: string, options: ErrorOptions = {}) {
    super('USAGE', message, options)
  }
}

/** Bad input data: a spec, a seed, an image, a table that does not parse or validate. Exit 2. */
export class InputError extends HwimageError {
  override readonly exitCode = 2
}

/** A binary structure that does not decode. Exit 2. */
export class FormatError extends InputError {}

/** An external program that is missing or failed. Exit 1. */
export class ToolError extends HwimageError {
  readonly argv: readonly string[]
  readonly status: number | null
  readonly signal: string | null
  readonly stderrTail: string

  constructor(
    code: 'TOOL_MISSING' | 'TOOL_FAILED',
    message: string,
    details: { argv: readonly string[]; status?: number | null; signal?: string | null; stderrTail?: string },
    options: ErrorOptions = {},
  ) {
    super(code, message, options)
    this.argv = details.argv
    this.status = details.status ?? null
    this.signal = details.signal ?? null
    this.stderrTail = details.stderrTail ?? ''
  }
}

/** A disk that cannot be used: busy, wrong size, I/O failure. Exit 1. */
export class DeviceError extends HwimageError {}

/** The user or a signal stopped the operation. Exit 130. */
export class InterruptedError extends HwimageError {
  override readonly exitCode = 130
  constructor(message = 'Interrupted', options: ErrorOptions = {}) {
    super('INTERRUPTED', message, options)
  }
}

/** Wraps any thrown value with what was being done, keeping a HwimageError's code and exit code. */
export function withContext(context: string, err: unknown): HwimageError {
  if (err instanceof HwimageError) {
    const wrapped = Object.create(Object.getPrototypeOf(err)) as HwimageError
    Object.assign(wrapped, err)
    Object.defineProperty(wrapped, 'message', { value: `${context}: ${err.message}`, enumerable: false })
    Object.defineProperty(wrapped, 'stack', { value: err.stack, enumerable: false })
    Object.defineProperty(wrapped, 'cause', { value: err, enumerable: false })
    return wrapped
  }
  const message = err instanceof Error ? err.message : String(err)
  return new HwimageError('INTERNAL', `${context}: ${message}`, { cause: err })
}

/** The exit code for any thrown value. */
export function exitCodeOf(err: unknown): number {
  if (err instanceof HwimageError) return err.exitCode
  return 1
}
