// hwimage's programmatic API: the package's only public entry (`import … from 'hwimage'`,
// package.json "exports"). It re-exports the domain entry points the CLI verbs call, with
// their option and result types and the error classes; everything else under src/ is
// internal and may change. docs/api.md has worked examples.

// Install

/** Installs an image (file, URL or stdin; raw, zstd, xz, gzip or qcow2) onto a disk or an image file; returns the report. */
export { install } from './install/install.js'
/** install()'s options, the seed step it takes, and the facts about the install that step is given. */
export type { InstallOptions, SeedStep, PlacedPartition, InstallFacts } from './install/install.js'
/** What an install did (`hwimage install --json`'s document), and its plan (what a dry run reports). */
export type { InstallReport, InstallPlan } from './install/install-report.js'
/** An install report in the CLI's short human form. */
export { formatReport } from './install/install-report.js'
/** A dry run's plan in the CLI's short human form. */
export { formatPlan } from './install/install-report.js'
/** The seed step for `install({ seed })`: the first-boot seed partition at the disk's end (`hwimage install --seed`), and its options. */
export { seedStep, type SeedSeamOptions } from './install/seed-partition.js'
/** Disk selection by root device hints (`--disk-hint`): parse "KEY=VALUE" strings into hints for `install({ diskHints })`. */
export { parseDiskHints, type DiskHints } from './install/disk-hints.js'

// Build

/** Builds an image from a validated spec into a directory; returns its manifest. Needs root. */
export { buildImage, type BuildOptions } from './build/build-image.js'
/** Parses a build spec's YAML into a validated BuildSpec (SPEC_INVALID names the field). */
export { parseSpec, type BuildSpec } from './build/spec.js'
/** Validates an already-parsed build spec value. */
export { validateSpec } from './build/spec.js'
/** The default spec's YAML (Debian 12, server kernel, UEFI with Secure Boot and BIOS). */
export { DEFAULT_SPEC_YAML } from './build/spec.js'
/** manifest.json's shape: what buildImage() returns. */
export type { Manifest } from './build/manifest.js'

// Seed

/** Writes a seed as a NoCloud or config-drive volume (FAT or ISO 9660) in a temporary file; its options and result. */
export { makeSeedVolume, type SeedVolume, type SeedVolumeOptions } from './seed/make-seed-volume.js'
/** Reads a seed volume's bytes (e.g. to hand them to encodeIronicConfigDrive). */
export { readSeedVolume } from './seed/make-seed-volume.js'
/** Parses an operator's seed YAML into a validated Seed (SEED_INVALID names the field); the seed and its formats. */
export { parseSeed, type Seed, type SeedFormat } from './seed/seed-schema.js'
/** Validates an already-parsed seed value. */
export { validateSeed } from './seed/seed-schema.js'
/** The seed formats: "nocloud" and "configdrive". */
export { SEED_FORMATS } from './seed/seed-schema.js'
/** Encodes an ISO 9660 config drive the way Ironic's API takes it: gzip, then base64. */
export { encodeIronicConfigDrive } from './seed/ironic.js'
/** Decodes Ironic's base64-of-gzip config drive back to the ISO 9660 bytes. */
export { decodeIronicConfigDrive } from './seed/ironic.js'

// Inspect

/** Reads an image file or block device: partition table, alignment, boot paths, kernel, problems. */
export { inspectImage, type Inspection } from './inspect/inspect-image.js'

// Errors

/** The base of every error hwimage throws on purpose, with its string `code` (match on it, never on the message) and options. */
export { HwimageError, type ErrorCode, type ErrorOptions } from './errors.js'
/** A bad command line or option value: code USAGE, exit 2. */
export { UsageError } from './errors.js'
/** Bad input data (a spec, a seed, an image, a digest, a target too small): exit 2. */
export { InputError } from './errors.js'
/** A binary structure (GPT, bmap, qcow2 …) that does not decode: an InputError. */
export { FormatError } from './errors.js'
/** An external program missing (TOOL_MISSING) or failed (TOOL_FAILED), with its argv, status and stderr: exit 1. */
export { ToolError } from './errors.js'
/** A disk that cannot be used (busy, I/O failure): exit 1. */
export { DeviceError } from './errors.js'
/** Stopped by the caller's AbortSignal or a signal: code INTERRUPTED, exit 130. */
export { InterruptedError } from './errors.js'
/** The CLI's exit code for any thrown value (1 unless a HwimageError says otherwise). */
export { exitCodeOf } from './errors.js'
