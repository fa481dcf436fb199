import { afterEach } from 'vitest'
import { createUdpLink, type UdpLink } from '../../lib/index.js'

/** A createUdpLink that closes every link it made after each test. */
export function udpLinkFactory(): (opts?: Parameters<typeof createUdpLink>[0]) => UdpLink {
  const links: UdpLink[] = []
  afterEach(() => {
    for (const l of links.splice(0)) l.close()
  })
  return (opts = {}) => {
    const l = createUdpLink(opts)
    links.push(l)
    return l
  }
}
