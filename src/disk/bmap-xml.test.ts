import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseXml, type XmlElement } from './bmap-xml.js'

class XmlError extends Error {}
const parse = (src: string): XmlElement => parseXml(src, (state) => new XmlError(state))
const rejects = (src: string, re: RegExp): void => {
  assert.throws(
    () => parse(src),
    (e: unknown) => e instanceof XmlError && re.test(e.message),
  )
}

test('parseXml() reads nested elements, attributes in either quote, text and comments', () => {
  const root = parse(
    `<?xml version="1.0" ?>\n<!-- c -->\n<a x="1" y='two'>\n  <!-- inner -->\n  <b>hi</b> <c/>\n</a>\n<!-- after -->\n`,
  )
  assert.equal(root.name, 'a')
  assert.deepEqual(
    [...root.attrs],
    [
      ['x', '1'],
      ['y', 'two'],
    ],
  )
  assert.deepEqual(
    root.children.map((c) => c.name),
    ['b', 'c'],
  )
  assert.equal(root.children[0]!.text, 'hi')
  assert.equal(root.children[1]!.text, '')
})

test('parseXml() decodes the predefined entities and character references', () => {
  const root = parse('<a v="&quot;&lt;&#65;&#x42;">&amp;&gt;&apos;&#x1F600;</a>')
  assert.equal(root.attrs.get('v'), '"<AB')
  assert.equal(root.text, "&>'😀")
})

test("parseXml() records where an element's content starts and ends in the source", () => {
  const src = '<a><b> 123 </b></a>'
  const b = parse(src).children[0]!
  assert.equal(src.slice(b.contentStart, b.contentEnd), ' 123 ')
})

test('parseXml() refuses unknown entities, a bare ampersand and out-of-range character references', () => {
  rejects('<a>&nbsp;</a>', /a known entity/)
  rejects('<a>a & b</a>', /an entity reference/)
  rejects('<a>&#0;</a>', /a known entity/)
  rejects('<a>&#xD800;</a>', /a known entity/)
  rejects('<a>&#x110000;</a>', /a known entity/)
})

test('parseXml() refuses DOCTYPE, CDATA and processing instructions', () => {
  rejects('<!DOCTYPE a [<!ENTITY x "y">]><a/>', /no DOCTYPE/)
  rejects('<a><![CDATA[x]]></a>', /no DOCTYPE, CDATA/)
  rejects('<a><?pi x?></a>', /processing instruction/)
})

test('parseXml() refuses mismatched and unterminated tags, naming line and column', () => {
  rejects('<a>\n  <b></c>\n</a>', /expected "<\/b>" at line 2, column 6/)
  rejects('<a>', /expected "<\/a>" at line 1, column 4, got "the end"/)
  rejects('<a x="1>', /closing quote/)
  rejects('<a x=1/>', /quoted attribute value/)
  rejects('<a x="1"y="2"/>', /whitespace/)
  rejects('<a x="1" x="2"/>', /attribute x only once/)
  rejects('<a x="<"/>', /no "<" in an attribute value/)
  rejects('<a><!-- x -- y --></a>', /no "--" inside a comment/)
  rejects('<a><!-- open</a>', /"-->"/)
  rejects('<a/><b/>', /the end of the file after the root element/)
  rejects('text', /expected "<"/)
  rejects('<1a/>', /a name/)
})

test('parseXml() refuses deep nesting instead of overflowing the stack', () => {
  rejects('<a>'.repeat(100000), /at most 32 nested elements/)
  assert.equal(parse('<a>'.repeat(32) + '</a>'.repeat(32)).name, 'a')
  rejects('<a>'.repeat(33) + '</a>'.repeat(33), /at most 32 nested elements/)
})
