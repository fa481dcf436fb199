import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseConfig, ConfigError, type ConfigIssue } from '../lib/config/index.js'
import { loadKinds, type LinkKind } from '../lib/daemon/kinds.js'
import { Daemon } from '../lib/daemon/daemon.js'
import { createUdpLink } from '../lib/index.js'

let kinds: Map<string, LinkKind>
const dir = mkdtempSync(join(tmpdir(), 'onbus-config-'))
beforeAll(async () => {
  kinds = await loadKinds()
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function issues(text: string, file = 'vehicle.yaml'): ConfigIssue[] {
  try {
    parseConfig(text, file, kinds)
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError)
    expect((err as ConfigError).code).toBe('ERR_ONBUS_CONFIG')
    return (err as ConfigError).issues
  }
  throw new Error('the configuration was accepted')
}

/** A free UDP port now (bound and closed again). */
function freeUdpPort(): number {
  const l = createUdpLink({ port: 0, receive: false })
  const p = l.address().port
  l.close()
  return p
}

describe('configuration validation', () => {
  it('accepts a complete configuration (YAML) and the same as JSON', () => {
    const yaml = `version: 1
links:
  lidar: { kind: udp, port: 2368, maxDatagramSize: 1280 }
  gcs: { kind: tcp-server, port: 5760, framing: { type: length, lengthSize: 2 } }
topics:
  lidar/packets:
    codec: raw
    qos: { profile: sensorData, depth: 64 }
    from: [lidar]
    to: [gcs, { link: lidar, port: 2369 }]
modules:
  perception: { command: node, args: [p.js], restart: on-failure }
`
    const c = parseConfig(yaml, 'a.yaml', kinds)
    expect(Object.keys(c.links!)).toEqual(['lidar', 'gcs'])
    const json = parseConfig(JSON.stringify(c, null, 2), 'a.json', kinds)
    expect(json).toEqual(c)
  })

  it('a wrong type names file:line:column, the key and what was expected', () => {
    const text = `links:
  lidar:
    kind: udp
    port: "2368"
`
    const [i, ...rest] = issues(text)
    expect(rest).toEqual([])
    expect(i).toMatchObject({ file: 'vehicle.yaml', line: 4, column: 11, path: 'links.lidar.port' })
    expect(i.message).toMatch(/must be of type integer \(got string "2368"\)/)
  })

  it('an unknown key is rejected at the key, with the keys allowed there', () => {
    const text = `links:
  lidar:
    kind: udp
    prot: 2368
`
    const [i] = issues(text)
    expect(i).toMatchObject({ line: 4, column: 5, path: 'links.lidar.prot' })
    expect(i.message).toMatch(/unknown key 'prot'; expected one of: kind, address, port/)
  })

  it('an unknown top-level key and an out-of-range value, every problem reported in file order', () => {
    const text = `version: 1
linx: {}
links:
  a: { kind: udp, port: 70000 }
topics:
  t:
    qos: { profile: sensorData, overflow: sometimes }
`
    const list = issues(text)
    expect(list.map((i) => [i.line, i.path, i.message])).toEqual([
      [2, 'linx', "unknown key 'linx'; expected one of: version, ipc, stats, links, topics, modules, sim"],
      [4, 'links.a.port', 'must be <= 65535 (got 70000)'],
      [7, 'topics.t.qos.overflow', 'must be one of "drop-oldest", "drop-newest", "block" (got "sometimes")'],
    ])
    const again = issues(text.replace('linx: {}\n', '').replace('sometimes', 'block'))
    expect(again.map((i) => [i.line, i.path, i.message])).toEqual([
      [3, 'links.a.port', 'must be <= 65535 (got 70000)'],
      [6, 'topics.t.qos.overflow', "'block' requires reliability 'reliable'"],
    ])
  })

  it('an unknown link kind is reported with the list of known kinds', () => {
    const [i] = issues(`links:\n  x:\n    kind: carrier-pigeon\n`)
    expect(i).toMatchObject({ line: 3, column: 11, path: 'links.x.kind' })
    expect(i.message).toMatch(/unknown link kind 'carrier-pigeon'; known kinds: .*serial.*tcp.*tcp-server.*tls-command.*udp.*unix/)
  })

  it('the rtp-camera and mavlink kinds are checked against their own options', () => {
    const list = issues(`links:\n  cam:\n    kind: rtp-camera\n    port: 5600\n    codec: mjpeg\n  fc:\n    kind: mavlink\n    endpoints:\n      - { kind: udp-server, port: 14550, baud: 57600 }\n`)
    expect(list.map((i) => [i.line, i.path])).toEqual([
      [5, 'links.cam.codec'],
      [9, 'links.fc.endpoints.0.baud'],
    ])
    expect(list[0].message).toMatch(/must be one of "h264", "h265"/)
    expect(list[1].message).toMatch(/unknown key 'baud'/)
  })

  it('feeds must name existing links; QoS must be explicit', () => {
    const list = issues(`links:
  a: { kind: udp }
topics:
  t:
    qos: { reliability: reliable, depth: 4 }
    from: [a, b]
`)
    expect(list.map((i) => [i.line, i.path])).toEqual([
      [5, 'topics.t.qos'],
      [5, 'topics.t.qos'],
      [6, 'topics.t.from.1'],
    ])
    expect(list[2].message).toBe("no link named 'b'; links: a")
    expect(list[0].message).toMatch(/missing 'overflow'/)
  })

  it('YAML syntax errors and duplicate keys point at the line', () => {
    const [i] = issues(`links:\n  a: { kind: udp\n`)
    expect(i.line).toBeGreaterThanOrEqual(2)
    expect(i.message).toMatch(/^syntax:/)
    const [d] = issues(`links:\n  a: { kind: udp }\n  a: { kind: tcp }\n`)
    expect(d.line).toBe(3)
  })

  it('nothing is opened when the configuration is invalid: the valid link’s port stays free', async () => {
    const port = freeUdpPort()
    const file = join(dir, 'bad.yaml')
    writeFileSync(file, `links:\n  good: { kind: udp, port: ${port} }\n  bad: { kind: udp, port: -1 }\n`)
    await expect(Daemon.start({ file, ipcDir: join(dir, 'ipc') })).rejects.toThrow(/bad\.yaml:3:\d+: links\.bad\.port: must be >= 0/)
    const probe = createUdpLink({ port }) // EADDRINUSE if the daemon had bound it
    probe.close()
  })

  it('nothing stays open when a link fails to open: links opened before it are closed again', async () => {
    const taken = createUdpLink({ port: 0 })
    const busy = taken.address().port
    const port = freeUdpPort()
    const file = join(dir, 'busy.yaml')
    writeFileSync(file, `ipc: { enabled: false }\nlinks:\n  first: { kind: udp, port: ${port} }\n  second: { kind: udp, port: ${busy} }\n`)
    try {
      await expect(Daemon.start({ file })).rejects.toMatchObject({ code: 'EADDRINUSE', message: expect.stringMatching(/link 'second' \(udp\)/) })
      const probe = createUdpLink({ port })
      probe.close()
    } finally {
      taken.close()
    }
  })
})
