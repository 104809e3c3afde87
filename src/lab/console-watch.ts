// Follows a machine's serial console and recognises how far its boot got: firmware,
// bootloader, kernel, Secure Boot state, initramfs, root file system, systemd,
// cloud-init's stages, hwimage's own marker lines and the login prompt. Pure: text in
// (with the time it arrived), milestones and facts out; boot.ts feeds it from the log.

/** A step of a boot, in roughly the order a good boot passes them. */
export type MilestoneKind =
  | 'firmware'
  | 'no-boot-entry'
  | 'bootloader'
  | 'bootloader-error'
  | 'kernel'
  | 'secure-boot'
  | 'initramfs'
  | 'root-missing'
  | 'panic'
  | 'root-mounted'
  | 'systemd'
  | 'cloud-init-local'
  | 'network'
  | 'cloud-init-error'
  | 'cloud-init-final'
  | 'ready'
  | 'login'

/** The first time a milestone was seen, and the console line that showed it. */
export interface Milestone {
  kind: MilestoneKind
  /** Seconds since the machine started. */
  at: number
  line: string
}

/** What the console told about the machine. */
export interface ConsoleFacts {
  /** The kernel's own report (Debian: "secureboot: Secure boot enabled"); absent on BIOS boots. */
  secureBoot?: 'enabled' | 'disabled' | 'unknown'
  kernelVersion?: string
  cloudInitVersion?: string
  /** cloud-init's datasource at the final stage, e.g. "DataSourceNoCloud [seed=/dev/vdb][dsmode=net]". */
  datasource?: string
  /** The hostname from hwimage's marker line or the login prompt. */
  hostname?: string
  /** Size of the root file system from hwimage's `df -B1 /` marker lines. */
  rootBytes?: number
  /** Network interfaces cloud-init listed with an IPv4 address (not loopback). */
  interfaces: string[]
  /** cloud-init printed its "Net device info" table (so `interfaces` is complete). */
  netInfoSeen: boolean
  /** How many times the firmware started (more than 1: the machine reset). */
  firmwareStarts: number
}

/** The marker line hwimage's seeds print on the console when first boot has run. */
export const READY_MARKER = 'HWIMAGE-READY'
/** The prefix of the `df -B1 /` lines hwimage's seeds print on the console. */
export const DF_MARKER = 'HWIMAGE-DF'

type Rule = { kind: MilestoneKind; re: RegExp; fact?: (m: RegExpExecArray, f: ConsoleFacts) => void }

// Each rule is checked against every complete console line; the first match of a
// kind is the milestone (later ones only update facts).
const RULES: Rule[] = [
  {
    kind: 'firmware',
    re: /SeaBIOS \(version [^)]*\)|BdsDxe: (?:loading|starting|failed to load) Boot|BdsDxe: No bootable/,
  },
  // OVMF without Secure Boot falls back to its built-in shell when no disk has a boot entry.
  {
    kind: 'no-boot-entry',
    re: /No bootable device\.|BdsDxe: No bootable option or device was found|Boot failed: not a bootable disk|UEFI Interactive Shell v\d/,
  },
  { kind: 'bootloader', re: /Welcome to GRUB!|^\s*Booting `|Loading Linux \S+ \.\.\.|GNU GRUB\s+version/ },
  // GRUB's "error: no suitable video mode found." on a machine without a display is harmless.
  {
    kind: 'bootloader-error',
    re: /^error: (?!no suitable video mode found).+|grub rescue>|Verification failed: \(0x[0-9A-F]+\)|Failed to load image|start_image\(\) returned|BdsDxe: failed to (?:load|start) Boot\d+ "(?!EFI Internal Shell)[^"]*".*: (?:Security Violation|Access Denied)|you need to load the kernel first/,
  },
  { kind: 'kernel', re: /Linux version (\S+)/, fact: (m, f) => void (f.kernelVersion ??= m[1]) },
  {
    kind: 'secure-boot',
    re: /secureboot: Secure boot (enabled|disabled|could not be determined)/,
    fact: (m, f) => void (f.secureBoot = m[1] === 'enabled' ? 'enabled' : m[1] === 'disabled' ? 'disabled' : 'unknown'),
  },
  { kind: 'initramfs', re: /Loading, please wait\.\.\.|Run \/init as init process|Begin: Loading essential drivers/ },
  { kind: 'root-missing', re: /Gave up waiting for root (?:file system )?device|ALERT!\s+\S+ does not exist/ },
  { kind: 'panic', re: /Kernel panic - not syncing:.*/ },
  { kind: 'root-mounted', re: /EXT4-fs \([^)]+\): (?:re)?mounted filesystem/ },
  { kind: 'systemd', re: /systemd\[1\]: systemd \d+\S* running in system mode|Welcome to .*Debian GNU\/Linux/ },
  {
    kind: 'cloud-init-local',
    re: /Cloud-init v\. (\S+) running 'init-local'/,
    fact: (m, f) => void (f.cloudInitVersion ??= m[1]),
  },
  {
    kind: 'network',
    re: /ci-info: \|\s*([\w.@-]+)\s*\|\s*True\s*\|\s*(\d+\.\d+\.\d+\.\d+)\s*\|/,
    fact: (m, f) => {
      if (m[2]!.startsWith('127.')) return
      if (!f.interfaces.includes(m[1]!)) f.interfaces.push(m[1]!)
    },
  },
  {
    kind: 'cloud-init-error',
    re: /cloud-init\[\d+\]: .*(?:\bERROR\b|Traceback)|Failed to start .*[Cc]loud-init|util\.py\[WARNING\]: Running module \S+ .* failed|Datasource DataSourceNone\./,
  },
  {
    kind: 'cloud-init-final',
    re: /Cloud-init v\. (\S+) finished at .*?Datasource (.*?)\.\s+Up [\d.]+ seconds/,
    fact: (m, f) => {
      f.cloudInitVersion ??= m[1]
      f.datasource = m[2]
    },
  },
  { kind: 'ready', re: new RegExp(`${READY_MARKER} (\\S+)`), fact: (m, f) => void (f.hostname = m[1]) },
  { kind: 'login', re: /^([\w.-]+) login:/, fact: (m, f) => void (f.hostname ??= m[1]) },
]

// `df -B1 /` lines after the marker: "HWIMAGE-DF /dev/vda1 21003583488 1234 5678 7% /".
const DF_LINE = new RegExp(`${DF_MARKER} \\S+\\s+(\\d+)\\s+\\d+\\s+\\d+\\s+\\d+%\\s+/\\s*$`)

// Prompts end without a newline; they are checked on the pending partial line too.
const PROMPTS: MilestoneKind[] = ['login', 'bootloader-error']

/** Removes terminal control sequences and carriage returns from console text. */
export function stripControl(text: string): string {
  // CSI sequences (colours, cursor moves, OVMF's clear-screen), ESC c (reset), other
  // single-character escapes, then the control bytes that are left.
  return text
    .replace(/\x1b\[[0-9;?=]*[ -/]*[@-~]/g, '')
    .replace(/\x1b[@-Z\\-_c]/g, '')
    .replace(/[\x00-\x08\x0b-\x1f\x7f]/g, (c) => (c === '\t' ? c : ''))
}

/** Recognises milestones and facts in a console stream fed piece by piece. */
export class ConsoleWatcher {
  readonly milestones: Milestone[] = []
  readonly facts: ConsoleFacts = { interfaces: [], netInfoSeen: false, firmwareStarts: 0 }
  private pending = ''
  private lastFirmwareLine = -1
  private lineNo = 0

  /** Feeds console bytes (as text) that arrived `at` seconds after the start. */
  feed(text: string, at: number): void {
    const lines = (this.pending + text).split('\n')
    this.pending = lines.pop() ?? ''
    for (const raw of lines) this.line(stripControl(raw), at)
    const partial = stripControl(this.pending)
    for (const rule of RULES) {
      if (!PROMPTS.includes(rule.kind) || this.has(rule.kind)) continue
      const m = rule.re.exec(partial)
      if (m) this.record(rule, m, partial, at)
    }
  }

  /** Feeds the rest of a partial line at the end of the stream. */
  end(at: number): void {
    if (this.pending) this.line(stripControl(this.pending), at)
    this.pending = ''
  }

  /** Whether a milestone was seen. */
  has(kind: MilestoneKind): boolean {
    return this.milestones.some((m) => m.kind === kind)
  }

  /** The first milestone of a kind. */
  get(kind: MilestoneKind): Milestone | undefined {
    return this.milestones.find((m) => m.kind === kind)
  }

  /** The milestone seen last (how far the boot got). */
  last(): Milestone | undefined {
    return this.milestones.at(-1)
  }

  private line(line: string, at: number): void {
    this.lineNo++
    const df = DF_LINE.exec(line)
    if (df) this.facts.rootBytes = Number(df[1])
    if (/ci-info: \++\s*Net device info\s*\++/.test(line)) this.facts.netInfoSeen = true
    for (const rule of RULES) {
      const m = rule.re.exec(line)
      if (!m) continue
      if (rule.kind === 'firmware' && this.lineNo !== this.lastFirmwareLine + 1) this.facts.firmwareStarts++
      if (rule.kind === 'firmware') this.lastFirmwareLine = this.lineNo
      this.record(rule, m, line, at)
    }
  }

  private record(rule: Rule, m: RegExpExecArray, line: string, at: number): void {
    rule.fact?.(m, this.facts)
    if (!this.has(rule.kind)) this.milestones.push({ kind: rule.kind, at, line: line.trim().slice(0, 300) })
  }
}

/** A watcher fed a whole console log at once (a finished boot, a test's fixture). */
export function watchConsole(log: string): ConsoleWatcher {
  const w = new ConsoleWatcher()
  w.feed(log, 0)
  w.end(0)
  return w
}
