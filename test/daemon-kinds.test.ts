import { describe, it, expect } from 'vitest'
import { fileURLToPath } from 'node:url'
import { parseConfig, ConfigError } from '../lib/config/index.js'
import { loadKinds } from '../lib/daemon/kinds.js'

const fake = fileURLToPath(new URL('./fixtures/daemon-fake-router.mjs', import.meta.url))

describe('optional link kinds (wired at merge)', () => {
  it('without the module: registered, refused at validation with the reason', async () => {
    const kinds = await loadKinds({ modules: { mavlink: '/nonexistent/router.js' } })
    expect(kinds.get('mavlink')!.unavailable).toMatch(/its module \(\/nonexistent\/router\.js\) is not in this build/)
    expect(() => parseConfig('links:\n  ap: { kind: mavlink, endpoints: [] }\n', 'v.yaml', kinds)).toThrow(/v\.yaml:2:\d+: links\.ap\.kind: link kind 'mavlink' is not available in this build/)
  })

  it("with the module: its own schema checks the options (without kind), create() gets them and close() closes", async () => {
    const kinds = await loadKinds({ modules: { mavlink: fake } })
    const k = kinds.get('mavlink')!
    expect(k.unavailable).toBeUndefined()
    const cfg = parseConfig('links:\n  ap: { kind: mavlink, endpoints: [{ udp: "127.0.0.1:14550" }] }\n', 'v.yaml', kinds)
    try {
      parseConfig('links:\n  ap:\n    kind: mavlink\n    endpoints: [{ tcp: "x" }]\n', 'v.yaml', kinds)
      throw new Error('accepted')
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError)
      expect((err as ConfigError).issues.map((i) => [i.line, i.path, i.message.split(';')[0]])).toEqual([
        [4, 'links.ap.endpoints.0', "missing required key 'udp'"],
        [4, 'links.ap.endpoints.0.tcp', "unknown key 'tcp'"],
      ])
    }
    const running = await k.create(cfg.links!.ap, { name: 'ap', resolvePath: (p) => p, log: () => {} })
    const mod = (await import(fake)) as { created: { config: unknown; closed: boolean }[] }
    expect(mod.created.at(-1)!.config).toEqual({ endpoints: [{ udp: '127.0.0.1:14550' }] })
    await running.close()
    expect(mod.created.at(-1)!.closed).toBe(true)
  })
})
