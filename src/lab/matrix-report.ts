// The lab's report: report.json (the MatrixResult as is) and report.md, a page with
// rows storage × NIC and columns firmware, each cell pass or fail with its time, its
// diagnosis and a link to its console log; then failures and non-applicable cells.

import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { CellResult } from './cell-results.js'
import type { MatrixResult } from './matrix.js'

/** Writes report.json and report.md into the report directory; returns their paths. */
export async function writeMatrixReport(dir: string, result: MatrixResult): Promise<{ json: string; page: string }> {
  const json = join(dir, 'report.json')
  const page = join(dir, 'report.md')
  await writeFile(json, JSON.stringify(result, null, 2) + '\n')
  await writeFile(page, renderMatrixMarkdown(result))
  return { json, page }
}

/** A cell's text in a table: "pass 142 s", "FAIL root-device-missing 215 s", "n/a", "·" (not run). */
export function cellText(c: CellResult | undefined, linkBase = ''): string {
  if (!c) return '·'
  if (c.status === 'n/a') return 'n/a'
  const log = c.serialLog ? ` [log](${linkBase}${c.serialLog})` : ''
  const again = c.retried ? ' (2nd boot)' : ''
  if (c.status === 'pass') return `pass ${Math.round(c.seconds ?? 0)} s${again}${log}`
  return `**FAIL** ${c.diagnosis?.code ?? 'unknown'} ${Math.round(c.seconds ?? 0)} s${again}${log}`
}

/** The title line of a run: image name, kernel flavor and version. */
export function imageTitle(r: MatrixResult): string {
  const name = r.image.name ?? r.image.path
  const kernel = [r.image.kernelFlavor, r.image.kernelVersion].filter(Boolean).join(' ')
  return kernel ? `${name} (${kernel})` : name
}

/** The Markdown page of one run. */
export function renderMatrixMarkdown(r: MatrixResult): string {
  const s = r.summary
  const boots = s.pass + s.fail
  const lines = [
    `# Hardware lab: ${imageTitle(r)}`,
    '',
    `${r.mode === 'covering' ? 'Covering set' : 'Full matrix'}: ${boots} boots — ${s.pass} pass, ${s.fail} fail, ${s.notApplicable} not applicable. ` +
      `${formatDuration(r.seconds)} with ${r.jobs} job${r.jobs === 1 ? '' : 's'}, ${r.memoryMiB} MiB per machine, timeout ${r.timeoutSeconds} s, QEMU TCG. Started ${r.started}.`,
    '',
    "A cell passes when the machine's first-boot report arrives over its NIC; the time is from QEMU's start to the report (or to where a failed boot stopped). `·`: not part of this run.",
    '',
    ...(r.interrupted
      ? [
          `**Interrupted**: ${r.interrupted.finished} of ${r.interrupted.planned} boots finished; the same command with \`--resume\` boots the rest.`,
          '',
        ]
      : []),
    ...matrixTable(r),
  ]
  const failed = r.cells.filter((c) => c.status === 'fail')
  if (failed.length) {
    lines.push('', '## Failures', '')
    for (const c of failed) {
      const d = c.diagnosis!
      lines.push(
        `- **${c.firmware} · ${c.storage} · ${c.nic}** — \`${d.code}\`: ${d.summary}.${d.evidence ? ` Console: \`${d.evidence.replaceAll('`', "'")}\`` : ''}${c.serialLog ? ` ([log](${c.serialLog}))` : ''}`,
      )
    }
  }
  const retried = r.cells.filter((c) => c.retried)
  if (retried.length) {
    lines.push(
      '',
      '## Booted twice',
      '',
      'The first boot failed the way TCG fails on an overloaded host (not the image), so the cell was booted again on a fresh disk:',
      '',
    )
    for (const c of retried)
      lines.push(
        `- **${c.firmware} · ${c.storage} · ${c.nic}** — first boot: \`${c.retried!.diagnosis.evidence ?? c.retried!.diagnosis.code}\` ([log](${c.retried!.serialLog}))`,
      )
  }
  const na = r.cells.filter((c) => c.status === 'n/a')
  if (na.length) {
    lines.push('', '## Not applicable', '')
    const byReason = new Map<string, string[]>()
    for (const c of na)
      byReason.set(c.reason ?? '', [...(byReason.get(c.reason ?? '') ?? []), `${c.firmware} × ${c.storage}`])
    for (const [reason, which] of byReason) lines.push(`- ${[...new Set(which)].join(', ')}: ${reason}.`)
  }
  return lines.join('\n') + '\n'
}

/** The storage × NIC by firmware table of a run, as Markdown lines. */
export function matrixTable(r: MatrixResult, linkBase = ''): string[] {
  const lines = [
    `| storage | NIC | ${r.firmwares.join(' | ')} |`,
    `| --- | --- |${' --- |'.repeat(r.firmwares.length)}`,
  ]
  for (const storage of r.storages) {
    for (const nic of r.nics) {
      const row = r.firmwares.map((f) =>
        r.cells.find((c) => c.firmware === f && c.storage === storage && c.nic === nic),
      )
      if (row.every((c) => c === undefined)) continue
      lines.push(`| ${storage} | ${nic} | ${row.map((c) => cellText(c, linkBase)).join(' | ')} |`)
    }
  }
  return lines
}

/** Several runs side by side (e.g. the generic and cloud flavors): one column per run and firmware. */
export function renderSideBySide(runs: readonly { label: string; result: MatrixResult; linkBase?: string }[]): string {
  const firmwares = runs[0]?.result.firmwares ?? []
  const head = runs.flatMap((r) => firmwares.map((f) => `${r.label} ${f}`))
  const lines = [`| storage | NIC | ${head.join(' | ')} |`, `| --- | --- |${' --- |'.repeat(head.length)}`]
  const storages = [...new Set(runs.flatMap((r) => r.result.storages))]
  const nics = [...new Set(runs.flatMap((r) => r.result.nics))]
  for (const storage of storages) {
    for (const nic of nics) {
      const cells = runs.flatMap((r) =>
        firmwares.map((f) => ({
          c: r.result.cells.find((c) => c.firmware === f && c.storage === storage && c.nic === nic),
          base: r.linkBase ?? '',
        })),
      )
      if (cells.every(({ c }) => c === undefined)) continue
      lines.push(`| ${storage} | ${nic} | ${cells.map(({ c, base }) => cellText(c, base)).join(' | ')} |`)
    }
  }
  return lines.join('\n') + '\n'
}

/** 845 → "14 min 5 s". */
export function formatDuration(seconds: number): string {
  const m = Math.floor(seconds / 60)
  const s = Math.round(seconds % 60)
  return m ? `${m} min ${s} s` : `${s} s`
}
