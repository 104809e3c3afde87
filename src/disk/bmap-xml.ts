// The XML subset a bmap file uses (XML 1.0 §2–4, strictly): an optional XML declaration,
// comments, elements with quoted attributes, character data with the five predefined entities
// and character references. DOCTYPE, CDATA and processing instructions are refused: bmaptool
// never writes them, and refusing them keeps entity expansion and external references out.

/** An element: its name, attributes, child elements and the concatenated character data directly in it. */
export interface XmlElement {
  name: string
  attrs: Map<string, string>
  children: XmlElement[]
  text: string
  /** Index in the source of the first character after the start tag. */
  contentStart: number
  /** Index in the source of the end tag's "<". */
  contentEnd: number
}

const NAME = /[A-Za-z_:][A-Za-z0-9_:.-]*/y
const SPACE = /[ \t\r\n]*/y
const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" }
/** Far deeper than a bmap (3 levels); keeps hostile nesting from exhausting the stack. */
const MAX_DEPTH = 32

/** Parses `src` into its root element; every syntax error is `fail(state)` with a line and column. */
export function parseXml(src: string, fail: (state: string) => Error): XmlElement {
  let i = 0
  const at = (pos: number): string => {
    const before = src.slice(0, pos)
    const line = before.split('\n').length
    return `line ${line}, column ${pos - before.lastIndexOf('\n')}`
  }
  const error = (what: string, pos = i): Error =>
    fail(`expected ${what} at ${at(pos)}, got ${JSON.stringify(src.slice(pos, pos + 12) || 'the end')}`)
  const skipSpace = (): void => {
    SPACE.lastIndex = i
    SPACE.exec(src)
    i = SPACE.lastIndex
  }
  const name = (): string => {
    NAME.lastIndex = i
    const m = NAME.exec(src)
    if (!m) throw error('a name')
    i = NAME.lastIndex
    return m[0]
  }
  const refuseUnsupported = (): void => {
    if (src.startsWith('<!DOCTYPE', i) || src.startsWith('<![CDATA[', i) || src.startsWith('<?', i)) {
      throw error('no DOCTYPE, CDATA or processing instruction (not used by bmap files)')
    }
  }
  const comment = (): void => {
    const end = src.indexOf('-->', i + 4)
    if (end < 0) throw error('"-->" closing this comment')
    // XML 1.0 §2.5: "--" must not occur inside a comment.
    const dashes = src.indexOf('--', i + 4)
    if (dashes < end) throw error('no "--" inside a comment', dashes)
    i = end + 3
  }
  const decode = (raw: string, start: number): string =>
    raw.replace(/&([^;&<]*);|&/g, (_whole, ref: string | undefined, offset: number) => {
      const pos = start + offset
      if (ref === undefined) throw error('an entity reference like "&amp;"', pos)
      const named = ENTITIES[ref]
      if (named !== undefined) return named
      const m = /^#(?:x([0-9A-Fa-f]{1,6})|([0-9]{1,7}))$/.exec(ref)
      const code = m ? parseInt(m[1] ?? m[2]!, m[1] ? 16 : 10) : -1
      if (code < 1 || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff))
        throw error('a known entity or character reference', pos)
      return String.fromCodePoint(code)
    })
  // Misc (XML 1.0 §2.8): whitespace and comments around the root element.
  const skipMisc = (): void => {
    for (;;) {
      skipSpace()
      if (src.startsWith('<!--', i)) comment()
      else return
    }
  }
  const element = (depth: number): XmlElement => {
    if (depth >= MAX_DEPTH) throw error(`at most ${MAX_DEPTH} nested elements`)
    if (src[i] !== '<') throw error('"<"')
    i++
    const el: XmlElement = { name: name(), attrs: new Map(), children: [], text: '', contentStart: 0, contentEnd: 0 }
    for (;;) {
      const hadSpace = i
      skipSpace()
      if (src.startsWith('/>', i)) {
        i += 2
        el.contentStart = el.contentEnd = i
        return el
      }
      if (src[i] === '>') break
      if (hadSpace === i) throw error('whitespace, ">" or "/>" after the element name or attribute')
      const attr = name()
      skipSpace()
      if (src[i] !== '=') throw error(`"=" after attribute ${attr}`)
      i++
      skipSpace()
      const quote = src[i]
      if (quote !== '"' && quote !== "'") throw error('a quoted attribute value')
      const end = src.indexOf(quote, i + 1)
      if (end < 0) throw error('the closing quote of the attribute value')
      const raw = src.slice(i + 1, end)
      if (raw.includes('<')) throw error('no "<" in an attribute value', i + 1 + raw.indexOf('<'))
      if (el.attrs.has(attr)) throw error(`attribute ${attr} only once`)
      el.attrs.set(attr, decode(raw, i + 1))
      i = end + 1
    }
    i++
    el.contentStart = i
    for (;;) {
      if (i >= src.length) throw error(`"</${el.name}>"`)
      if (src.startsWith('</', i)) {
        el.contentEnd = i
        i += 2
        const endName = name()
        if (endName !== el.name) throw error(`"</${el.name}>"`, el.contentEnd)
        skipSpace()
        if (src[i] !== '>') throw error('">"')
        i++
        return el
      }
      if (src.startsWith('<!--', i)) {
        comment()
        continue
      }
      refuseUnsupported()
      if (src[i] === '<') {
        el.children.push(element(depth + 1))
        continue
      }
      const next = src.indexOf('<', i)
      const end = next < 0 ? src.length : next
      el.text += decode(src.slice(i, end), i)
      i = end
    }
  }

  if (src.startsWith('\uFEFF')) i = 1
  if (src.startsWith('<?xml', i) && /[ \t\r\n?]/.test(src[i + 5] ?? '')) {
    const end = src.indexOf('?>', i)
    if (end < 0) throw error('"?>" closing the XML declaration')
    i = end + 2
  }
  skipMisc()
  refuseUnsupported()
  const root = element(0)
  skipMisc()
  if (i !== src.length) throw error('the end of the file after the root element')
  return root
}
