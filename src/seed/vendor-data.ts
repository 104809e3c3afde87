// vendor-data: the operator's `vendor_data`, plus hwimage's first-boot script when the
// seed asks for a report or cleanup (first-boot-script.ts). A script part is stored
// under /var/lib/cloud/instance/scripts/vendor/ and run by the `scripts-vendor` module
// in the final stage; scripts are not merged, so nothing of the operator's is lost.
// An operator who disables vendor-data in user-data (`vendor_data: {enabled: false}`)
// disables the report and cleanup too.

import { FIRST_BOOT_SCRIPT_NAME, firstBootScript, type FirstBootConfig } from './first-boot-script.js'
import { buildMultipart, type MimePart } from './mime-multipart.js'
import type { Seed } from './seed-schema.js'
import { operatorPart } from './user-data.js'

/** The `vendor-data` text, or undefined when there is none. */
export function renderVendorData(
  seed: Seed,
  script: Omit<FirstBootConfig, 'cleanup' | 'report' | 'format'>,
): string | undefined {
  const operator = seed.vendorData !== undefined && seed.vendorData !== '' ? seed.vendorData : undefined
  if (!seed.report && !seed.cleanup) return operator // byte for byte
  const body = firstBootScript({
    ...script,
    format: seed.format,
    cleanup: seed.cleanup,
    ...(seed.report ? { report: seed.report } : {}),
  })
  // Always a multipart document, so that the script keeps its name under
  // scripts/vendor/ (a bare script would be stored as "part-001").
  const parts: MimePart[] = operator !== undefined ? [operatorPart(operator, 'vendor-data')] : []
  parts.push({ kind: 'text', contentType: 'text/x-shellscript', filename: FIRST_BOOT_SCRIPT_NAME, body })
  return buildMultipart(parts)
}
