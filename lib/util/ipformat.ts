/** Formats 4 or 16 address bytes (RFC 5952 for IPv6, as Node prints them). */
export function formatIp(b: Uint8Array, off: number, v6: boolean, scope = 0, scopeName?: string): string {
  if (!v6) return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`
  // IPv4-mapped ::ffff:a.b.c.d
  let mapped = b[off + 10] === 0xff && b[off + 11] === 0xff
  for (let i = 0; i < 10 && mapped; i++) if (b[off + i] !== 0) mapped = false
  if (mapped) return `::ffff:${b[off + 12]}.${b[off + 13]}.${b[off + 14]}.${b[off + 15]}`
  const words: number[] = []
  for (let i = 0; i < 8; i++) words.push((b[off + 2 * i] << 8) | b[off + 2 * i + 1])
  let bestStart = -1
  let bestLen = 0
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && words[j] === 0) j++
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i
      bestLen = j - i
    }
    i = j
  }
  let s: string
  if (bestStart < 0) s = words.map((w) => w.toString(16)).join(':')
  else {
    const head = words.slice(0, bestStart).map((w) => w.toString(16)).join(':')
    const tail = words.slice(bestStart + bestLen).map((w) => w.toString(16)).join(':')
    s = `${head}::${tail}`
  }
  if (scope) s += `%${scopeName ?? scope}`
  return s
}
