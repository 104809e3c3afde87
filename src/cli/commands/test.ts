// `hwimage test IMAGE`: boots an image across emulated firmware × storage × NIC and reports.

import { availableParallelism } from 'node:os'
import { relative, resolve } from 'node:path'
import { mkdir, readFile, stat } from 'node:fs/promises'
import { InputError, InterruptedError, UsageError } from '../../errors.js'
import { FIRMWARES } from '../../tools/qemu.js'
import { overlayPreparer, runMatrix, type MatrixEvent, type MatrixResult } from '../../lab/matrix.js'
import { installPreparer } from '../../lab/install-preparer.js'
import { cellText, formatDuration, imageTitle, renderSideBySide, writeMatrixReport } from '../../lab/matrix-report.js'
import { commaList, parseFirmware, parseSize, positiveInt } from '../args.js'
import { parseVerbArgs, type Command } from '../command.js'
import { Reporter } from '../progress.js'

const DEFAULT_STORAGE = 'virtio-blk,virtio-scsi,ahci,nvme,megasas,mptsas1068'
const DEFAULT_NICS = 'virtio-net-pci,e1000,e1000e,rtl8139'

const help = `Usage: hwimage test IMAGE|DIR [options]
       hwimage test --compare REPORT_DIR REPORT_DIR…

Boots an image in QEMU (TCG) across firmware × storage controller × NIC cells.
Each cell gets a fresh target disk with the image installed on it and a seed
partition whose report URL points at a listener this command runs; the cell
passes when the machine's first-boot report arrives over its NIC. A failed
cell says where it stopped (no boot entry, bootloader, kernel panic, no root
device, no network, cloud-init error, timeout), read from its serial console. Cells no real firmware of that
kind could boot from (e.g. OVMF and MegaRAID) are marked not applicable.
The report page lays out rows storage × NIC and columns firmware, each cell
with its time, its diagnosis and a link to its console log.

Options:
  --firmware LIST    bios,uefi,uefi-sb (default: all three)
  --storage LIST     QEMU storage devices (default ${DEFAULT_STORAGE});
                     any QEMU device name is accepted and wired onto its bus
  --nic LIST         QEMU network devices (default ${DEFAULT_NICS})
  --cells MODE       covering (default): fewest cells with every value at least
                     once; all: every combination
  --jobs N           cells booted at once (default: number of cores)
  --memory MIB       memory per machine (default 1024)
  --timeout S        seconds per cell (default 900)
  --disk-size SIZE   target disk size (default 8G)
  --prepare HOW      install (default): \`hwimage install --seed\` onto a fresh
                     disk file, seed partition at its end; overlay: a qcow2
                     overlay over the image and the seed on a second disk (faster)
  --report DIR       report.json, report.md and console logs (default lab-report);
                     each finished cell also leaves cells/ID/result.json there
  --resume           keep the cells an earlier, interrupted run of the same image
                     finished in --report DIR and boot only the rest (a full
                     matrix takes hours under TCG)
  --run-gaps         also boot devices QEMU emulates too loosely to test (today
                     mptsas1068: Linux sees the controller but no disks); they
                     are otherwise listed as not applicable, with the reason
  --json             the result as JSON on stdout, JSON-lines progress on stderr
  --compare          boot nothing: print the matrices of earlier runs (their
                     --report DIRs) side by side as a Markdown table, one column
                     per run and firmware, labelled by kernel flavor (e.g. the
                     generic and the cloud flavor of one image)

Exit status: 0 when every applicable cell passed, 1 otherwise.
`

/** `hwimage test`. */
export const testCommand: Command = {
  name: 'test',
  help,
  async run(argv, ctx) {
    const parsed = parseVerbArgs(
      this,
      argv,
      {
        firmware: { type: 'string', default: FIRMWARES.join(',') },
        storage: { type: 'string', default: DEFAULT_STORAGE },
        nic: { type: 'string', default: DEFAULT_NICS },
        cells: { type: 'string', default: 'covering' },
        jobs: { type: 'string' },
        memory: { type: 'string', default: '1024' },
        timeout: { type: 'string', default: '900' },
        'disk-size': { type: 'string', default: '8G' },
        report: { type: 'string', default: 'lab-report' },
        'run-gaps': { type: 'boolean' },
        resume: { type: 'boolean' },
        compare: { type: 'boolean' },
        prepare: { type: 'string', default: 'install' },
        json: { type: 'boolean' },
      },
      ctx,
    )
    if (!parsed) return 0
    const v = parsed.values as Record<string, string | boolean | undefined>
    if (v.compare === true) return await compare(parsed.positionals, v.json === true, ctx.stdout)
    if (parsed.positionals.length !== 1)
      throw new UsageError('Cannot test: give exactly one IMAGE or build directory', { hint: 'hwimage test out/demo' })
    const firmwares = commaList(String(v.firmware), '--firmware').map(parseFirmware)
    const cells = String(v.cells)
    if (cells !== 'covering' && cells !== 'all')
      throw new UsageError(`Cannot use --cells "${cells}": it is not covering or all`)
    const prepare = String(v.prepare)
    if (prepare !== 'install' && prepare !== 'overlay')
      throw new UsageError(`Cannot use --prepare "${prepare}": it is not install or overlay`)
    const jobs = v.jobs === undefined ? availableParallelism() : positiveInt(String(v.jobs), '--jobs')
    const reportDir = resolve(String(v.report))
    await mkdir(reportDir, { recursive: true })
    const json = v.json === true
    const rep = new Reporter(ctx.stderr, json)
    const result = await runMatrix({
      image: parsed.positionals[0]!,
      firmwares,
      storages: commaList(String(v.storage), '--storage'),
      nics: commaList(String(v.nic), '--nic'),
      cells,
      jobs,
      timeoutMs: positiveInt(String(v.timeout), '--timeout') * 1000,
      memoryMiB: positiveInt(String(v.memory), '--memory'),
      diskSizeBytes: parseSize(String(v['disk-size']), '--disk-size'),
      reportDir,
      runGaps: v['run-gaps'] === true,
      resume: v.resume === true,
      prepare: prepare === 'install' ? installPreparer : overlayPreparer,
      signal: ctx.signal,
      onEvent: (e) => progress(rep, e),
    })
    const paths = await writeMatrixReport(reportDir, result)
    if (result.interrupted) {
      const { finished, planned } = result.interrupted
      throw new InterruptedError(
        `Interrupted: ${finished} of ${planned} boots finished; the report of those is in ${paths.page}`,
        {
          hint: `run the same command with --resume to boot only the other ${planned - finished}`,
        },
      )
    }
    if (json)
      ctx.stdout.write(JSON.stringify({ ...result, reportJson: paths.json, reportPage: paths.page }, null, 2) + '\n')
    else {
      const s = result.summary
      ctx.stdout.write(
        `${s.pass} pass, ${s.fail} fail, ${s.notApplicable} not applicable in ${formatDuration(result.seconds)}\nreport: ${paths.page}\n`,
      )
    }
    return result.summary.fail === 0 && result.summary.pass > 0 ? 0 : 1
  },
}

/** `--compare`: earlier runs' matrices side by side, links to console logs relative to the working directory. */
async function compare(dirs: string[], json: boolean, stdout: NodeJS.WritableStream): Promise<number> {
  if (dirs.length < 2)
    throw new UsageError('Cannot compare: give two or more report directories', {
      hint: 'hwimage test --compare lab/generic lab/cloud',
    })
  const runs: { label: string; result: MatrixResult; linkBase: string }[] = []
  for (const arg of dirs) {
    const dir = (await stat(arg).catch(() => undefined))?.isDirectory() === false ? resolve(arg, '..') : resolve(arg)
    let result: MatrixResult
    try {
      result = JSON.parse(await readFile(resolve(dir, 'report.json'), 'utf8')) as MatrixResult
    } catch (e) {
      throw new InputError('NOT_FOUND', `Cannot compare "${arg}": ${(e as Error).message}`, {
        hint: 'give directories that `hwimage test --report DIR` wrote',
      })
    }
    if (!Array.isArray(result.cells) || !Array.isArray(result.firmwares))
      throw new InputError('FORMAT_REPORT', `Cannot compare "${arg}": its report.json is not a lab report`)
    const base = relative(process.cwd(), dir)
    runs.push({
      label: result.image.kernelFlavor ?? result.image.name ?? arg,
      result,
      linkBase: base ? `${base}/` : '',
    })
  }
  if (json) {
    stdout.write(
      JSON.stringify(
        runs.map((r) => ({ label: r.label, image: r.result.image, summary: r.result.summary, cells: r.result.cells })),
        null,
        2,
      ) + '\n',
    )
    return 0
  }
  const lines = runs.map((r) => {
    const s = r.result.summary
    return `- **${r.label}**: ${imageTitle(r.result)} — ${s.pass} pass, ${s.fail} fail, ${s.notApplicable} not applicable (${r.result.mode === 'all' ? 'full matrix' : 'covering set'})`
  })
  stdout.write(`${lines.join('\n')}\n\n${renderSideBySide(runs)}`)
  return 0
}

function progress(rep: Reporter, e: MatrixEvent): void {
  rep.event(e.type, e.type === 'cell-done' ? { ...e.result, done: e.done, boots: e.boots } : { ...e })
  switch (e.type) {
    case 'start':
      rep.log(
        `lab: ${e.boots} boots of ${e.cells} cells${e.resumed ? ` (${e.resumed} kept from an earlier run)` : ''}, ${e.jobs} at a time under TCG (reports to ${e.listen})`,
      )
      break
    case 'cell-start':
      rep.log(`[${e.index + 1}/${e.boots}] ${e.id}: booting`)
      break
    case 'cell-done': {
      const r = e.result
      const why = r.diagnosis ? ` — ${r.diagnosis.summary}` : ''
      rep.log(
        `[${e.done}/${e.boots}] ${r.id}: ${cellText(r)
          .replace(/ \[log\]\(.*\)$/, '')
          .replaceAll('**', '')}${why}`,
      )
      break
    }
    case 'milestone':
      break
  }
}
