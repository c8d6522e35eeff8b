/**
 * IPv4 subnets: an interface address with its prefix, and the arithmetic the
 * address checks need (network, broadcast, host range, membership).
 */
import { Option, ParseResult, Schema } from "effect"
import * as Ipv4 from "./Ipv4.js"

export const Prefix = Schema.Int.pipe(Schema.between(0, 32))

/** An address on a subnet, as `ip addr` shows it: 10.10.20.1/24. */
export const Cidr = Schema.Struct({ address: Ipv4.Ipv4, prefix: Prefix })
export type Cidr = typeof Cidr.Type

export const make = (address: Ipv4.Ipv4, prefix: number): Cidr => ({ address, prefix })

export const maskOf = (prefix: number): Ipv4.Ipv4 =>
  (prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0) as Ipv4.Ipv4

/** The prefix length of a contiguous mask; firejail never checked contiguity, we do. */
export const prefixOfMask = (mask: Ipv4.Ipv4): Option.Option<number> => {
  const inverted = ~mask >>> 0
  return (inverted & (inverted + 1)) === 0 ? Option.some(32 - Math.log2(inverted + 1)) : Option.none()
}

export const network = (c: Cidr): Ipv4.Ipv4 => ((c.address & maskOf(c.prefix)) >>> 0) as Ipv4.Ipv4
export const broadcast = (c: Cidr): Ipv4.Ipv4 => ((network(c) | ~maskOf(c.prefix)) >>> 0) as Ipv4.Ipv4
export const contains = (c: Cidr, ip: Ipv4.Ipv4): boolean => ((ip & maskOf(c.prefix)) >>> 0) === network(c)

/** First and last usable host; subnets smaller than /30 have none in firejail's model. */
export const firstHost = (c: Cidr): Ipv4.Ipv4 => (network(c) + 1) as Ipv4.Ipv4
export const lastHost = (c: Cidr): Ipv4.Ipv4 => (broadcast(c) - 1) as Ipv4.Ipv4
export const hostCount = (c: Cidr): number => Math.max(0, broadcast(c) - network(c) - 1)

/** A host address: inside the subnet and neither its network nor its broadcast address. */
export const isHost = (c: Cidr, ip: Ipv4.Ipv4): boolean =>
  contains(c, ip) && ip !== network(c) && ip !== broadcast(c)

export const format = (c: Cidr): string => `${Ipv4.format(c.address)}/${c.prefix}`

export const parse = (text: string): Option.Option<Cidr> => {
  const [addr, bits, ...extra] = text.split("/")
  if (extra.length > 0 || addr === undefined || bits === undefined || !/^\d{1,2}$/.test(bits)) return Option.none()
  const prefix = Number(bits)
  if (prefix > 32) return Option.none()
  return Option.map(Ipv4.parse(addr), (address) => make(address, prefix))
}

export const CidrFromString = Schema.transformOrFail(Schema.String, Schema.typeSchema(Cidr), {
  strict: true,
  decode: (text, _, ast) =>
    Option.match(parse(text), {
      onNone: () => ParseResult.fail(new ParseResult.Type(ast, text, `invalid CIDR ${text}`)),
      onSome: ParseResult.succeed
    }),
  encode: (c) => ParseResult.succeed(format(c))
})
