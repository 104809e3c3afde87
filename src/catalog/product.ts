// What the catalog says about a build: its product name (release, architecture, kernel
// flavor), the aliases an install can name it by, where its files go, and the bare-metal
// fields a deployer chooses by without downloading anything — boot modes, logical sector
// size, kernel flavor, version and footprint, first-boot contract, package count, sizes.

import type { Manifest } from '../build/manifest.js'
import { RELEASES, type Release } from '../build/spec.js'
import { CONTRACT_VERSION } from '../seed/seed-files.js'
import { GUID_BIOS_BOOT, GUID_ESP } from '../disk/guid.js'
import type { BuildDir } from './build-dir.js'
import type { Field } from './simplestreams.js'

/** The products list every hwimage catalog holds (one products file). */
export const CONTENT_ID = 'org.hwimage:images'
/**
 * MAAS's download streams (images.maas.io) say "image-ids"; Ubuntu's cloud-images say
 * "image-downloads" for theirs. The issue asks for MAAS's.
 */
export const DATATYPE = 'image-ids'
/** The products file, below the mirror's top. */
export const PRODUCTS_PATH = `streams/v1/${CONTENT_ID}.json`
const PREFIX = 'org.hwimage'

/** Debian's version number of the build's release ("12"). */
function releaseVersion(m: Manifest): string {
  return RELEASES[m.spec.release as Release]?.version ?? m.spec.release
}

/** The product a build belongs to: org.hwimage:debian:12:amd64:server. */
export function productName(m: Manifest): string {
  return `${PREFIX}:debian:${releaseVersion(m)}:${m.spec.architecture}:${m.kernel.flavor}`
}

/** The short names an install may use for the product (architecture implied). */
export function productAliases(m: Manifest): string[] {
  const v = releaseVersion(m)
  const f = m.kernel.flavor
  return [`${m.spec.release}/${f}`, `debian/${v}/${f}`, `${v}/${f}`]
}

/** The boot modes an image supports, from its partitions and packages. */
export function bootModes(m: Manifest): string[] {
  const types = new Set(m.partitions.map((p) => p.typeGuid.toUpperCase()))
  const modes: string[] = []
  if (types.has(GUID_BIOS_BOOT.toUpperCase())) modes.push('bios')
  if (types.has(GUID_ESP.toUpperCase())) {
    modes.push('uefi')
    // The ESP's first stage is the Microsoft-signed shim when shim-signed is installed.
    if (m.packages['shim-signed']) modes.push('uefi-secureboot')
  }
  return modes
}

/** The day a build's serial starts with: YYYYMMDD of its build date (UTC). */
export function serialDay(m: Manifest): string {
  return m.build.date.slice(0, 10).replaceAll('-', '')
}

/** The directory (below the mirror's top) that holds one version's files. */
export function versionDir(m: Manifest, serial: string): string {
  return `images/debian/${releaseVersion(m)}/${m.spec.architecture}/${m.kernel.flavor}/${serial}`
}

/** Fields every version of the product shares. */
export function productFields(m: Manifest): Record<string, Field> {
  const v = releaseVersion(m)
  return {
    os: 'debian',
    release: m.spec.release,
    release_title: `Debian ${v} (${m.spec.release})`,
    version: v,
    arch: m.spec.architecture,
    kflavor: m.kernel.flavor,
    aliases: productAliases(m).join(','),
  }
}

/** Fields of one build. Lists are comma-separated strings: simplestreams carries only strings and numbers down the tree. */
export function versionFields(b: BuildDir): Record<string, Field> {
  const m = b.manifest
  const zst = b.files.find((f) => f.item === 'zst')
  return {
    boot_modes: bootModes(m).join(','),
    logical_sector_size: m.image.sectorSize,
    kernel_version: m.kernel.version,
    kernel_footprint_bytes: m.kernel.footprintBytes,
    // manifest.json does not record the contract yet: the image speaks the one of the hwimage that built it.
    first_boot_contract: (m as Manifest & { firstBootContract?: string }).firstBootContract ?? CONTRACT_VERSION,
    packages_count: Object.keys(m.packages).length,
    image_bytes: m.image.sizeBytes,
    mapped_bytes: m.image.mappedBytes,
    compressed_bytes: zst?.size ?? 0,
    image_name: m.name,
    build_date: m.build.date,
    hwimage_version: m.hwimage.version,
  }
}
