// How hwimage writes sizes and durations for people: one place for the CLI's lines, the
// install report and the progress bar (the dashboard's dashboard/format.js mirrors it).

/** 1536 → "1.5 KiB", 3 << 30 → "3.0 GiB". */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0
  let v = n
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`
}

/** 75 → "1:15". */
export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?'
  const m = Math.floor(s / 60)
  const sec = Math.floor(s % 60)
  return `${m}:${String(sec).padStart(2, '0')}`
}
