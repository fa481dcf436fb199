import { describe, it, expect } from 'vitest'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { XMLParser } from 'fast-xml-parser'
// @ts-expect-error: plain ESM tool without type declarations
import { DEFAULT_OUT, DEFINITIONS_DIR, HAVE_DEFINITIONS, generate } from '../tools/mavgen/mavgen.mjs'
import * as mav from '../lib/mavlink/index.js'
import { DIALECT, MavlinkEncoder, MavlinkParser, defineDialect } from '../lib/mavlink/index.js'
import type { Dialect, MessageDef } from '../lib/mavlink/index.js'

const SIZE: Record<string, number> = { char: 1, int8_t: 1, uint8_t: 1, uint8_t_mavlink_version: 1, int16_t: 2, uint16_t: 2, int32_t: 4, uint32_t: 4, float: 4, int64_t: 8, uint64_t: 8, double: 8 }

type XField = { '@_type': string; '@_name': string }
type XMessage = { '@_id': string; '@_name': string; field: XField[]; extensions?: unknown }
type XEnum = { '@_name': string; entry?: { '@_name': string; '@_value': string }[] }

/**
 * common.xml and its includes read with an independent XML parser
 * (fast-xml-parser), keeping document order so extension fields can be told
 * apart.
 */
function readIndependently(file: string): { messages: { id: number; name: string; base: XField[]; ext: XField[] }[]; enums: XEnum[] } {
  const ordered = new XMLParser({ ignoreAttributes: false, preserveOrder: true })
  const flat = new XMLParser({ ignoreAttributes: false, isArray: (name) => ['include', 'enum', 'entry', 'message', 'field'].includes(name) })
  const messages: { id: number; name: string; base: XField[]; ext: XField[] }[] = []
  const enums: XEnum[] = []
  const seen = new Set<string>()
  const visit = (name: string): void => {
    if (seen.has(name)) return
    seen.add(name)
    const text = readFileSync(join(DEFINITIONS_DIR, name), 'utf8')
    const doc = flat.parse(text).mavlink
    for (const inc of doc.include ?? []) visit(String(inc))
    enums.push(...(doc.enums?.enum ?? []))
    // document order of <field> and <extensions/> per message
    const tree = ordered.parse(text) as Record<string, unknown>[]
    const root = tree.find((n) => 'mavlink' in n)!.mavlink as Record<string, unknown>[]
    const msgs = (root.find((n) => 'messages' in n)?.messages ?? []) as Record<string, unknown>[]
    for (const m of msgs.filter((n) => 'message' in n)) {
      const attrs = m[':@'] as Record<string, string>
      const base: XField[] = []
      const ext: XField[] = []
      let inExt = false
      for (const c of m.message as Record<string, unknown>[]) {
        if ('extensions' in c) inExt = true
        if ('field' in c) (inExt ? ext : base).push(c[':@'] as XField)
      }
      messages.push({ id: Number(attrs['@_id']), name: attrs['@_name'], base, ext })
    }
  }
  visit(file)
  return { messages, enums }
}

const arr = (t: string): [string, number] => {
  const m = /^(\w+)(?:\[(\d+)\])?$/.exec(t)!
  return [m[1], m[2] ? Number(m[2]) : 0]
}

// generous: the whole suite also runs under QEMU (scripts/qemu.mjs), many times slower
if (!HAVE_DEFINITIONS) console.warn(`skipping the MAVLink generator tests: the official XML definitions are not at ${DEFINITIONS_DIR} (set ONBUS_MAVLINK_DEFINITIONS)`)

describe.skipIf(!HAVE_DEFINITIONS)('MAVLink generator', { timeout: 120_000 }, () => {
  it('the committed modules are what the generator makes from the official XML', () => {
    const files = generate() as Map<string, string>
    expect(files.size).toBe(10)
    for (const [name, text] of files) expect(readFileSync(join(DEFAULT_OUT, name), 'utf8') === text, name).toBe(true)
  })

  it('covers every message, field, enum and entry of common.xml (read with an independent XML parser)', () => {
    const { messages, enums } = readIndependently('common.xml')
    expect(messages.length).toBe(DIALECT.messages.size)
    for (const x of messages) {
      const def = DIALECT.messages.get(x.id)!
      expect(def?.name).toBe(x.name)
      // wire order: base fields by type size, largest first, stable; then extensions in XML order
      const base = x.base.map((f, k) => ({ f, k })).sort((a, b) => SIZE[arr(b.f['@_type'])[0]] - SIZE[arr(a.f['@_type'])[0]] || a.k - b.k)
      const order = [...base.map((b) => b.f), ...x.ext]
      expect(def.fields.map((f) => f.name), x.name).toEqual(order.map((f) => f['@_name']))
      let off = 0
      order.forEach((xf, k) => {
        const f = def.fields[k]
        const [t, n] = arr(xf['@_type'])
        expect([f.type, f.arrayLength, f.offset, f.extension]).toEqual([t, n, off, k >= x.base.length])
        off += SIZE[t] * (n || 1)
      })
      expect(def.maxLength).toBe(off)
    }
    const exported = mav as unknown as Record<string, Record<string, number>>
    let entries = 0
    for (const e of enums) {
      const obj = exported[e['@_name']]
      expect(obj, e['@_name']).toBeTypeOf('object')
      for (const en of e.entry ?? []) {
        expect(obj[en['@_name']], en['@_name']).toBe(Number(en['@_value']))
        entries++
      }
    }
    expect(entries).toBeGreaterThan(1500)
  })

  it('CRC_EXTRA matches the published values', () => {
    const published: Record<string, number> = {
      HEARTBEAT: 50,
      SYS_STATUS: 124,
      PARAM_VALUE: 220,
      GPS_RAW_INT: 24,
      ATTITUDE: 39,
      GLOBAL_POSITION_INT: 104,
      MISSION_ITEM_INT: 38,
      COMMAND_LONG: 152,
      COMMAND_ACK: 143,
      STATUSTEXT: 83,
      SETUP_SIGNING: 71,
      RADIO_STATUS: 185,
      TIMESYNC: 34,
    }
    for (const [name, crc] of Object.entries(published)) expect(DIALECT.byName.get(name)?.crcExtra, name).toBe(crc)
  })

  it('generates a user dialect that includes common.xml and works with the parser', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'onbus-mavgen-'))
    try {
      const xml = join(dir, 'mydialect.xml')
      writeFileSync(
        xml,
        `<?xml version="1.0"?>
<mavlink>
  <include>common.xml</include>
  <dialect>42</dialect>
  <enums>
    <enum name="MY_STATE"><entry value="0" name="MY_STATE_IDLE"/><entry value="1" name="MY_STATE_BUSY"/></enum>
    <enum name="MAV_CMD"><entry value="50001" name="MY_CMD_PING"><description>Extends common's MAV_CMD.</description></entry></enum>
  </enums>
  <messages>
    <message id="50000" name="MY_SENSOR">
      <description>A custom sensor &amp; its state.</description>
      <field type="uint8_t" name="state" enum="MY_STATE">State</field>
      <field type="float[3]" name="xyz">Vector</field>
      <field type="char[8]" name="label">Label</field>
      <field type="uint64_t" name="time_usec">Time</field>
      <extensions/>
      <field type="int16_t" name="extra">Extension</field>
    </message>
  </messages>
</mavlink>
`,
      )
      const runtime = pathToFileURL(resolve('lib/mavlink/codec.ts')).href
      const files = generate([xml], { runtime }) as Map<string, string>
      expect([...files.keys()]).toContain('mydialect.ts')
      for (const [name, text] of files) writeFileSync(join(dir, name), text)
      const mod = (await import(pathToFileURL(join(dir, 'mydialect.ts')).href)) as Record<string, unknown> & { DIALECT: Dialect; MAV_CMD: Record<string, number> }
      expect(mod.MAV_CMD.MY_CMD_PING).toBe(50001)
      expect(mod.MAV_CMD.MAV_CMD_NAV_WAYPOINT).toBe(16)
      const def = mod.DIALECT.byName.get('MY_SENSOR') as MessageDef
      expect(def.fields.map((f) => f.name)).toEqual(['time_usec', 'xyz', 'state', 'label', 'extra'])
      expect(mod.DIALECT.messages.get(0)?.name).toBe('HEARTBEAT')
      const enc = new MavlinkEncoder({ sysid: 1, compid: 1 })
      const parser = new MavlinkParser({ dialect: mod.DIALECT })
      let got: Record<string, unknown> | undefined
      parser.push(enc.encode(def, { state: 1, xyz: [1, 2, 3], label: 'probe', time_usec: 123n, extra: -5 }), (f) => (got = f.message?.toObject()))
      expect(got).toMatchObject({ state: 1, label: 'probe', time_usec: 123n, extra: -5 })
      expect(Array.from(got!.xyz as Float32Array)).toEqual([1, 2, 3])
      // and it composes with the built-in dialect objects
      expect(defineDialect('both', 3, [def], [DIALECT]).messages.size).toBe(DIALECT.messages.size + 1)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('refuses definitions it cannot generate correctly', () => {
    const dir = mkdtempSync(join(tmpdir(), 'onbus-mavgen-'))
    try {
      const bad = (body: string): string => {
        const p = join(dir, `bad${Math.random().toString(36).slice(2)}.xml`)
        writeFileSync(p, `<?xml version="1.0"?><mavlink><messages>${body}</messages></mavlink>`)
        return p
      }
      expect(() => generate([bad('<message id="1" name="A"><field type="uint128_t" name="x">x</field></message>')])).toThrow(/unknown type/)
      expect(() => generate([bad('<message id="1" name="A"><field type="uint8_t" name="_v">x</field></message>')])).toThrow(/reserves/)
      expect(() => generate([bad('<message id="1" name="A"><field type="uint8_t[200]" name="a">x</field><field type="uint8_t[200]" name="b">x</field></message>')])).toThrow(/> 255/)
      expect(() => generate([bad('<message id="1" name="A"><field type="uint8_t" name="a">x</field></message><message id="1" name="B"><field type="uint8_t" name="a">x</field></message>')])).toThrow(/defined twice/)
      expect(() => generate([bad('<message id="1" name="A"><field type="uint8_t" name="a">x</message>')])).toThrow(/does not match/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
