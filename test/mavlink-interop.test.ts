// Proof against an independent implementation: node-mavlink (npm) must read
// the frames onbus writes, and onbus must read the frames node-mavlink writes,
// for every message of common.xml that node-mavlink's mappings also define,
// with random field values, signed and unsigned.
import { describe, it, expect } from 'vitest'
import { once } from 'node:events'
import * as nm from 'node-mavlink'
import { DIALECT, MavlinkEncoder, MavlinkParser, MavlinkSigning, SigningClock } from '../lib/mavlink/index.js'
import type { MavlinkFrame, MessageDef } from '../lib/mavlink/index.js'
import { mismatch, prng, randomData } from './mavlink-random.js'

type NmField = { source: string; name: string; type: string; offset: number; length: number; extension: boolean }
type NmClass = { MSG_ID: number; MSG_NAME: string; MAGIC_NUMBER: number; PAYLOAD_LENGTH: number; FIELDS: NmField[]; new (): Record<string, unknown> }

const nmRegistry: Record<number, NmClass> = {
  ...(nm.minimal.REGISTRY as unknown as Record<number, NmClass>),
  ...(nm.standard.REGISTRY as unknown as Record<number, NmClass>),
  ...(nm.common.REGISTRY as unknown as Record<number, NmClass>),
}

/**
 * Same CRC_EXTRA and the same field layout, except that our (newer) XML may
 * have extension fields node-mavlink's mappings do not have yet.
 */
function compatible(def: MessageDef, c: NmClass): boolean {
  if (c.MAGIC_NUMBER !== def.crcExtra) return false
  const ourField = new Map(def.fields.map((f) => [f.name, f]))
  const theirs = new Set(c.FIELDS.map((f) => f.source))
  return c.FIELDS.every((f) => ourField.get(f.source)?.offset === f.offset) && def.fields.every((f) => f.extension || theirs.has(f.name))
}

const ours = [...DIALECT.messages.values()].sort((a, b) => a.id - b.id)
const missing = ours.filter((d) => !nmRegistry[d.id]).map((d) => `${d.name} (${d.id})`)
const differing = ours.filter((d) => nmRegistry[d.id] && !compatible(d, nmRegistry[d.id])).map((d) => `${d.name} (${d.id})`)
const shared = ours.filter((d) => nmRegistry[d.id] && compatible(d, nmRegistry[d.id]))
/** Fields node-mavlink knows, per message id. */
const known = new Map(shared.map((d) => [d.id, new Set(nmRegistry[d.id].FIELDS.map((f) => f.source))]))
const newerExtensions = shared.filter((d) => known.get(d.id)!.size < d.fields.length).map((d) => `${d.name} (${d.fields.filter((f) => !known.get(d.id)!.has(f.name)).map((f) => f.name).join(', ')})`)

const KEY = nm.MavLinkPacketSignature.key('onbus interop test key')
const LINK_ID = 7

/** Our value -> what node-mavlink's serializers take. */
function toNm(v: unknown): unknown {
  if (typeof v === 'string' && v === '\0') return 0
  if (typeof v === 'string' && v.length === 1) return v.charCodeAt(0)
  return v
}

function toNmMessage(def: MessageDef, c: NmClass, data: Record<string, unknown>): Record<string, unknown> {
  const m = new c()
  const byName = new Map(c.FIELDS.map((f) => [f.source, f]))
  for (const f of def.fields) {
    const nf = byName.get(f.name)
    if (!nf) continue
    const v = data[f.name]
    // node-mavlink's single char is a number on write
    m[nf.name] = f.type === 'char' && f.arrayLength === 0 ? toNm(v) : v
  }
  return m
}

async function nmParse(bytes: Buffer): Promise<nm.MavLinkPacket[]> {
  const splitter = new nm.MavLinkPacketSplitter()
  const parser = splitter.pipe(new nm.MavLinkPacketParser())
  const packets: nm.MavLinkPacket[] = []
  parser.on('data', (p: nm.MavLinkPacket) => packets.push(p))
  splitter.end(bytes)
  await once(parser, 'end')
  return packets
}

function signing(): MavlinkSigning {
  return new MavlinkSigning({ key: new Uint8Array(KEY), linkId: LINK_ID, clock: new SigningClock() })
}

// generous: the whole suite also runs under QEMU (scripts/qemu.mjs), many times slower
describe('MAVLink interop with node-mavlink', { timeout: 120_000 }, () => {
  it('covers every common.xml message node-mavlink defines (the rest are listed)', () => {
    // printed so the report can name them; the test fails if node-mavlink's
    // mappings and ours disagree on a message both define
    console.log(`node-mavlink lacks ${missing.length} of ${ours.length} common.xml messages: ${missing.join(', ')}`)
    console.log(`node-mavlink lacks newer extension fields of: ${newerExtensions.join('; ')} (those fields are left out of the comparison)`)
    expect(differing).toEqual([])
    expect(shared.length).toBeGreaterThan(200)
  })

  for (const signed of [false, true]) {
    it(`onbus -> node-mavlink, ${signed ? 'signed' : 'unsigned'}, random values, every shared message`, async () => {
      const r = prng(signed ? 11 : 10)
      const enc = new MavlinkEncoder({ sysid: 42, compid: 191, signing: signed ? signing() : undefined })
      const sent: { def: MessageDef; data: Record<string, unknown> }[] = []
      const chunks: Uint8Array[] = []
      for (const def of shared) {
        for (let k = 0; k < 3; k++) {
          const data = randomData(r, def)
          sent.push({ def, data })
          chunks.push(enc.encode(def, data))
        }
      }
      const packets = await nmParse(Buffer.concat(chunks))
      expect(packets.length).toBe(sent.length)
      packets.forEach((p, k) => {
        const { def, data } = sent[k]
        expect(p.header.msgid).toBe(def.id)
        expect(p.header.sysid).toBe(42)
        expect(p.header.compid).toBe(191)
        const c = nmRegistry[def.id]
        const obj = p.protocol.data(p.payload, c as never) as unknown as Record<string, unknown>
        const byName = new Map(c.FIELDS.map((f) => [f.source, f.name]))
        expect(mismatch(def, data, (n) => obj[byName.get(n)!], false, known.get(def.id))).toBe('')
        if (signed) {
          expect(p.signature).not.toBeNull()
          expect(p.signature!.matches(KEY)).toBe(true)
          expect(p.signature!.linkId).toBe(LINK_ID)
        } else expect(p.signature).toBeNull()
      })
    })

    it(`node-mavlink -> onbus, ${signed ? 'signed' : 'unsigned'}, random values, every shared message`, () => {
      const r = prng(signed ? 21 : 20)
      // node-mavlink sets the signed flag through the protocol's incompatibility flags
      const proto = new nm.MavLinkProtocolV2(33, 44, signed ? nm.MavLinkProtocolV2.IFLAG_SIGNED : 0)
      const sent: { def: MessageDef; data: Record<string, unknown> }[] = []
      const chunks: Buffer[] = []
      // node-mavlink timestamps from Date.now() (ms); give each frame its own
      const t0 = Date.now() - 1000
      for (const def of shared) {
        for (let k = 0; k < 3; k++) {
          const data = randomData(r, def)
          let buf = proto.serialize(toNmMessage(def, nmRegistry[def.id], data) as never, sent.length & 0xff)
          if (signed) buf = proto.sign(buf, LINK_ID, KEY, t0 + sent.length)
          sent.push({ def, data })
          chunks.push(buf)
        }
      }
      const parser = new MavlinkParser({ signing: signed ? signing() : undefined })
      const got: MavlinkFrame[] = []
      parser.push(Buffer.concat(chunks), (f) => got.push(f.clone()))
      expect(parser.stats.rejected).toEqual(Object.fromEntries(Object.keys(parser.stats.rejected).map((k) => [k, 0])))
      expect(got.length).toBe(sent.length)
      got.forEach((f, k) => {
        const { def, data } = sent[k]
        expect(f.msgid).toBe(def.id)
        expect(f.sysid).toBe(33)
        expect(f.signed).toBe(signed)
        expect(f.verified).toBe(signed)
        if (signed) expect(f.linkId).toBe(LINK_ID)
        const msg = f.message as unknown as Record<string, unknown>
        expect(mismatch(def, data, (n) => msg[n], false, known.get(def.id))).toBe('')
      })
      expect(parser.stats.signed).toBe(signed ? sent.length : 0)
    })
  }

  it('MAVLink 1 both ways for the shared messages with ids up to 255', async () => {
    const r = prng(30)
    const v1 = shared.filter((d) => d.id <= 255)
    // onbus -> node-mavlink
    const enc = new MavlinkEncoder({ sysid: 5, compid: 6, version: 1 })
    const sent = v1.map((def) => ({ def, data: randomData(r, def, true) }))
    const packets = await nmParse(Buffer.concat(sent.map(({ def, data }) => enc.encode(def, data))))
    expect(packets.length).toBe(sent.length)
    packets.forEach((p, k) => {
      const { def, data } = sent[k]
      const c = nmRegistry[def.id]
      const obj = p.protocol.data(p.payload, c as never) as unknown as Record<string, unknown>
      const byName = new Map(c.FIELDS.map((f) => [f.source, f.name]))
      expect(mismatch(def, data, (n) => obj[byName.get(n)!], true, known.get(def.id))).toBe('')
    })
    // node-mavlink -> onbus (node-mavlink's v1 frames carry the extension
    // fields too, which onbus accepts and reads)
    const proto = new nm.MavLinkProtocolV1(8, 9)
    const back = v1.map((def) => ({ def, data: randomData(r, def) }))
    const parser = new MavlinkParser()
    const got: MavlinkFrame[] = []
    parser.push(Buffer.concat(back.map(({ def, data }, k) => proto.serialize(toNmMessage(def, nmRegistry[def.id], data) as never, k & 0xff))), (f) => got.push(f.clone()))
    expect(got.length).toBe(back.length)
    got.forEach((f, k) => {
      expect(f.version).toBe(1)
      const msg = f.message as unknown as Record<string, unknown>
      expect(mismatch(back[k].def, back[k].data, (n) => msg[n], false, known.get(back[k].def.id))).toBe('')
    })
  })
})
