// Secrets out of log lines: a machine's one-time token travels on a kernel command line
// (hwimage.token=…), in an Authorization header (Bearer …) and could be put in a query
// string by a careless client (?token=…). Every log line serve writes passes here.

const REPLACEMENT = '[redacted]'

const PATTERNS: RegExp[] = [
  // Authorization: Bearer <token> (RFC 6750 §2.1), in any case.
  /(\bbearer\s+)[A-Za-z0-9._~+/=-]+/gi,
  // hwimage.token=… on a kernel command line, token=… / access_token=… in a query string.
  /(\b(?:hwimage\.token|access_token|operator_token|token)=)[^\s&#"']+/gi,
  // "token":"…" in JSON text.
  /("(?:token|operator_token|operatorToken)"\s*:\s*")[^"]*/gi,
]

/** The text with every token-looking value replaced by "[redacted]". */
export function redact(text: string): string {
  let out = text
  for (const re of PATTERNS) out = out.replace(re, `$1${REPLACEMENT}`)
  return out
}

/** A copy of a log record with its string values redacted (keys named like secrets dropped to "[redacted]"). */
export function redactRecord(record: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(record)) {
    if (/token|authorization|password|secret/i.test(k)) out[k] = REPLACEMENT
    else if (typeof v === 'string') out[k] = redact(v)
    else if (v !== null && typeof v === 'object' && !Array.isArray(v))
      out[k] = redactRecord(v as Record<string, unknown>)
    else out[k] = v
  }
  return out
}
