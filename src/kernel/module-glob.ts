// Module alias patterns are fnmatch(3) globs: modprobe matches a device's modalias
// against each `alias PATTERN MODULE` line of modules.alias with fnmatch(pattern,
// modalias, 0) (kmod libkmod/libkmod-index.c). No flags: `*` also matches `/`, a
// leading `.` is not special, and a backslash quotes the next character.

const cache = new Map<string, RegExp>()

/** Compiles an fnmatch(3) glob (flags 0) into an anchored RegExp; results are cached. */
export function globToRegExp(pattern: string): RegExp {
  const hit = cache.get(pattern)
  if (hit) return hit
  let re = '^'
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!
    if (c === '*') re += '[\\s\\S]*'
    else if (c === '?') re += '[\\s\\S]'
    else if (c === '\\' && i + 1 < pattern.length) re += escapeChar(pattern[++i]!)
    else if (c === '[') {
      const end = bracketEnd(pattern, i)
      if (end < 0) re += '\\['
      else {
        re += bracketClass(pattern.slice(i + 1, end))
        i = end
      }
    } else re += escapeChar(c)
  }
  const compiled = new RegExp(re + '$')
  cache.set(pattern, compiled)
  return compiled
}

/** True when `text` matches the fnmatch(3) glob `pattern`. */
export function globMatches(pattern: string, text: string): boolean {
  if (!hasGlobChars(pattern)) return pattern === text
  return globToRegExp(pattern).test(text)
}

/** True when a pattern has characters fnmatch treats specially. */
export function hasGlobChars(pattern: string): boolean {
  return /[*?[\\]/.test(pattern)
}

function escapeChar(c: string): string {
  return /[\\^$.*+?()[\]{}|/-]/.test(c) ? `\\${c}` : c
}

// Index of the `]` closing the bracket expression that opens at `start`, or -1.
// A `]` right after `[`, `[!` or `[^` is a member, as POSIX says.
function bracketEnd(pattern: string, start: number): number {
  let i = start + 1
  if (pattern[i] === '!' || pattern[i] === '^') i++
  if (pattern[i] === ']') i++
  for (; i < pattern.length; i++) if (pattern[i] === ']') return i
  return -1
}

function bracketClass(body: string): string {
  let negate = false
  if (body[0] === '!' || body[0] === '^') {
    negate = true
    body = body.slice(1)
  }
  let out = ''
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!
    if (c === '-' && i > 0 && i < body.length - 1) out += '-'
    else out += /[\\\]^[-]/.test(c) ? `\\${c}` : c
  }
  return `[${negate ? '^' : ''}${out}]`
}
