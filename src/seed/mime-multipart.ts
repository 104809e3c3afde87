// MIME multipart/mixed documents (RFC 2046 §5.1) in the form cloud-init's
// UserDataProcessor reads with Python's email parser: each part has a Content-Type
// and a filename; bodies are base64 (RFC 2045 §6.8) so any bytes survive and no body
// line can look like a boundary. A part that is itself a MIME document is nested
// as-is (multipart bodies may not be base64), which Python's `walk()` descends into.

import { createHash } from 'node:crypto'

/** One part of a multipart document. */
export type MimePart =
  | {
      kind: 'text'
      /** e.g. text/cloud-config, text/x-shellscript; text/x-not-multipart lets cloud-init detect it from the first line. */
      contentType: string
      filename: string
      body: string
      /** cloud-init's Merge-Type header for cloud-config parts. */
      mergeType?: string
    }
  | {
      kind: 'mime'
      /** A complete MIME document (headers, blank line, body). */
      document: string
    }

/** Whether text is a MIME document rather than a plain cloud-config or script. */
export function isMimeDocument(text: string): boolean {
  const head = text.slice(0, 4096).replace(/^\s+/, '')
  return /^(content-type|mime-version)\s*:/i.test(head) && /\r?\n\r?\n/.test(text)
}

/** Builds a multipart/mixed document from parts; the boundary is derived from the content. */
export function buildMultipart(parts: readonly MimePart[]): string {
  const digest = createHash('sha256')
  for (const p of parts) digest.update(p.kind === 'text' ? p.body : p.document)
  let boundary = `===============hwimage-${digest.digest('hex').slice(0, 24)}==`
  // A nested document could contain our boundary by chance only if it was made to.
  while (parts.some((p) => p.kind === 'mime' && p.document.includes(boundary))) boundary += '='
  const lines: string[] = [`Content-Type: multipart/mixed; boundary="${boundary}"`, 'MIME-Version: 1.0', '']
  for (const p of parts) {
    lines.push(`--${boundary}`)
    if (p.kind === 'mime') {
      lines.push(p.document.replace(/\r\n/g, '\n').replace(/\n+$/, ''))
      continue
    }
    lines.push(`Content-Type: ${p.contentType}; charset="utf-8"`)
    lines.push('MIME-Version: 1.0')
    lines.push('Content-Transfer-Encoding: base64')
    lines.push(`Content-Disposition: attachment; filename="${p.filename.replace(/["\\\r\n]/g, '_')}"`)
    if (p.mergeType) lines.push(`Merge-Type: ${p.mergeType}`)
    lines.push('')
    const b64 = Buffer.from(p.body, 'utf8').toString('base64')
    for (let i = 0; i < b64.length; i += 76) lines.push(b64.slice(i, i + 76))
  }
  lines.push(`--${boundary}--`, '')
  return lines.join('\n')
}
