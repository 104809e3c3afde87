// Numbers as an operator reads them: binary byte units, rates, durations, times.

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB']

/** 1536 → "1.5 KiB". */
export function bytes(n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '–'
  let i = 0
  let v = n
  while (v >= 1024 && i < UNITS.length - 1) {
    v /= 1024
    i++
  }
  return `${i === 0 ? v : v.toFixed(v >= 100 ? 0 : 1)} ${UNITS[i]}`
}

/** Bytes per second → "105 MiB/s". */
export function rate(n) {
  return typeof n === 'number' && Number.isFinite(n) ? `${bytes(n)}/s` : '–'
}

/** Seconds → "48.2 s" (the API's phases are tenths), "3 min 05 s", "1 h 02 min"; `whole`: "48 s". */
export function duration(s, { whole = false } = {}) {
  if (typeof s !== 'number' || !Number.isFinite(s)) return '–'
  if (s < 60) return `${whole ? Math.round(s) : s.toFixed(1)} s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m} min ${String(Math.round(s % 60)).padStart(2, '0')} s`
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`
}

/** An ISO time → the local time of day, with the date when it is not today. */
export function time(iso) {
  if (!iso) return '–'
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return iso
  const today = new Date().toDateString() === d.toDateString()
  return today ? d.toLocaleTimeString() : d.toLocaleString()
}

/** An ISO time → "12 s ago". */
export function ago(iso, now = Date.now()) {
  const t = Date.parse(iso)
  if (!Number.isFinite(t)) return '–'
  const s = Math.max(0, (now - t) / 1000)
  if (s < 60) return `${Math.round(s)} s ago`
  if (s < 3600) return `${Math.round(s / 60)} min ago`
  if (s < 86400) return `${Math.round(s / 3600)} h ago`
  return `${Math.round(s / 86400)} d ago`
}

/** The install's progress in words: done, total, rate, ETA and stage. */
export function progressParts(p) {
  if (!p || typeof p !== 'object') return null
  const done = typeof p.done === 'number' ? p.done : 0
  const total = typeof p.total === 'number' && p.total > 0 ? p.total : undefined
  const r = typeof p.rate === 'number' && p.rate > 0 ? p.rate : undefined
  const eta = total !== undefined && r !== undefined ? Math.max(0, (total - done) / r) : undefined
  return {
    stage: String(p.stage ?? ''),
    done,
    total,
    fraction: total ? Math.min(1, done / total) : undefined,
    rate: r,
    eta,
    text: [
      total ? `${bytes(done)} of ${bytes(total)}` : bytes(done),
      r !== undefined ? rate(r) : undefined,
      eta !== undefined ? `ETA ${duration(eta, { whole: true })}` : undefined,
    ]
      .filter(Boolean)
      .join(' · '),
  }
}

/** The phases of a deploy, as the API's deploy-phases names them, in order. */
export const PHASES = [
  ['deployEnvironmentBoot', 'network boot'],
  ['waitForAssignment', 'wait'],
  ['install', 'install'],
  ['reboot', 'reboot'],
  ['firstBoot', 'first boot'],
  ['total', 'total'],
]

/** A machine's error ({code, message}) in words. */
export function errorText(e) {
  if (!e || typeof e !== 'object') return ''
  const code = e.code ? `${e.code}: ` : ''
  return `${code}${e.message ?? 'failed'}`
}
