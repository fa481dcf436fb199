// A small XML reader for MAVLink message definitions.
//
// Why not an npm parser: the generator ships with onbus so that a user can
// generate their own dialect from an installed package, and it should need
// nothing that is not already there. MAVLink definition files use a small part
// of XML (elements, attributes, text, comments, the five predefined entities
// and character references, an XML declaration), and this reader accepts that
// part and rejects anything else with the line it stopped at, rather than
// guessing (no DTDs, no processing instructions beyond the declaration).

/**
 * @typedef {{ name: string, attrs: Record<string, string>, children: XmlElement[], text: string, line: number }} XmlElement
 */

const ENTITIES = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" }

/** @param {string} s @param {() => number} lineAt */
function decodeEntities(s, lineAt) {
  if (!s.includes('&')) return s
  return s.replace(/&([^;\s&]*);?/g, (m, body) => {
    if (!m.endsWith(';')) throw new SyntaxError(`XML: bare '&' at line ${lineAt()}`)
    if (body[0] === '#') {
      const code = body[1] === 'x' || body[1] === 'X' ? parseInt(body.slice(2), 16) : parseInt(body.slice(1), 10)
      if (!Number.isFinite(code)) throw new SyntaxError(`XML: bad character reference '${m}' at line ${lineAt()}`)
      return String.fromCodePoint(code)
    }
    const v = ENTITIES[body]
    if (v === undefined) throw new SyntaxError(`XML: unknown entity '${m}' at line ${lineAt()}`)
    return v
  })
}

/**
 * Parses an XML document and returns its root element. An element's `text`
 * is the concatenation of its own text nodes (entity-decoded, untrimmed).
 * @param {string} src
 * @returns {XmlElement}
 */
export function parseXml(src) {
  let i = 0
  const n = src.length
  // line numbers for messages: counted incrementally (the scan only moves forward)
  let linePos = 0
  let lineNo = 1
  const lineAt = (pos = i) => {
    if (pos < linePos) {
      linePos = 0
      lineNo = 1
    }
    for (; linePos < pos && linePos < n; linePos++) if (src.charCodeAt(linePos) === 10) lineNo++
    return lineNo
  }
  const fail = (what) => {
    throw new SyntaxError(`XML: ${what} at line ${lineAt()}`)
  }
  /** @type {XmlElement[]} */
  const stack = []
  /** @type {XmlElement | undefined} */
  let root
  if (src.charCodeAt(0) === 0xfeff) i = 1
  while (i < n) {
    const lt = src.indexOf('<', i)
    const textEnd = lt < 0 ? n : lt
    if (textEnd > i) {
      const text = src.slice(i, textEnd)
      if (stack.length > 0) stack[stack.length - 1].text += decodeEntities(text, () => lineAt(i))
      else if (text.trim() !== '') fail('text outside the root element')
    }
    if (lt < 0) break
    i = lt
    if (src.startsWith('<!--', i)) {
      const end = src.indexOf('-->', i + 4)
      if (end < 0) fail('unterminated comment')
      i = end + 3
    } else if (src.startsWith('<![CDATA[', i)) {
      const end = src.indexOf(']]>', i + 9)
      if (end < 0) fail('unterminated CDATA section')
      if (stack.length === 0) fail('CDATA outside the root element')
      stack[stack.length - 1].text += src.slice(i + 9, end)
      i = end + 3
    } else if (src.startsWith('<?', i)) {
      const end = src.indexOf('?>', i + 2)
      if (end < 0) fail('unterminated declaration')
      if (!/^<\?xml[\s?]/.test(src.slice(i, i + 6))) fail('unsupported processing instruction')
      i = end + 2
    } else if (src.startsWith('<!', i)) {
      fail('unsupported markup declaration (DTD)')
    } else if (src[i + 1] === '/') {
      const end = src.indexOf('>', i)
      if (end < 0) fail('unterminated end tag')
      const name = src.slice(i + 2, end).trim()
      const open = stack.pop()
      if (!open || open.name !== name) fail(`end tag </${name}> does not match <${open ? open.name : ''}>`)
      i = end + 1
    } else {
      const line = lineAt(i)
      const m = /^<([A-Za-z_][\w.:-]*)/.exec(src.slice(i, i + 200))
      if (!m) fail('bad start tag')
      /** @type {XmlElement} */
      const el = { name: m[1], attrs: {}, children: [], text: '', line }
      i += m[0].length
      const attrRe = /\s*([A-Za-z_][\w.:-]*)\s*=\s*("([^"]*)"|'([^']*)')|\s*(\/?>)/y
      let selfClosing = false
      for (;;) {
        attrRe.lastIndex = i
        const a = attrRe.exec(src)
        if (!a) fail(`bad attribute in <${el.name}>`)
        i = attrRe.lastIndex
        if (a[5]) {
          selfClosing = a[5] === '/>'
          break
        }
        if (Object.hasOwn(el.attrs, a[1])) fail(`duplicate attribute '${a[1]}'`)
        el.attrs[a[1]] = decodeEntities(a[3] ?? a[4], () => line)
      }
      if (stack.length > 0) stack[stack.length - 1].children.push(el)
      else if (root) fail('more than one root element')
      else root = el
      if (!selfClosing) stack.push(el)
    }
  }
  if (stack.length > 0) fail(`unclosed <${stack[stack.length - 1].name}>`)
  if (!root) fail('no root element')
  return root
}
