// Ironic's config drive: the node's `configdrive` field takes an ISO 9660 `config-2`
// image, gzipped, then base64-encoded (ironic/common/images.py; openstacksdk's
// baremetal configdrive.build() makes the same).

import { gunzipSync, gzipSync } from 'node:zlib'

/** Encodes an ISO image the way Ironic's API takes it: gzip, then base64 (one line). */
export function encodeIronicConfigDrive(iso: Uint8Array): string {
  return Buffer.from(gzipSync(iso, { level: 9 })).toString('base64')
}

/** Decodes Ironic's base64-of-gzip config drive back to the ISO bytes. */
export function decodeIronicConfigDrive(text: string): Uint8Array {
  return new Uint8Array(gunzipSync(Buffer.from(text.trim(), 'base64')))
}
