/**
 * IPv4 addresses as host-order uint32 numbers, as the kernel structs and
 * firejail's arithmetic use them; parsing is strict dotted-quad.
 */
import { Option, ParseResult, Schema } from "effect"

export const Ipv4 = Schema.Number.pipe(
  Schema.int(),
  Schema.between(0, 0xffffffff),
  Schema.brand("Ipv4"),
  Schema.annotations({ identifier: "Ipv4" })
)
export type Ipv4 = typeof Ipv4.Type

const octet = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/

/** Strict a.b.c.d (firejail's sscanf also took "10.0.0.5/24" as 10.0.0.5; we refuse it). */
export const parse = (text: string): Option.Option<Ipv4> => {
  const parts = text.split(".")
  if (parts.length !== 4 || !parts.every((p) => octet.test(p))) return Option.none()
  return Option.some(fromOctets(parts.map(Number) as [number, number, number, number]))
}

export const fromOctets = ([a, b, c, d]: readonly [number, number, number, number]): Ipv4 =>
  (((a << 24) >>> 0) + (b << 16) + (c << 8) + d) as Ipv4

export const octets = (ip: Ipv4): [number, number, number, number] => [
  ip >>> 24,
  (ip >>> 16) & 0xff,
  (ip >>> 8) & 0xff,
  ip & 0xff
]

export const format = (ip: Ipv4): string => octets(ip).join(".")

/** Network byte order, as netlink attributes and ARP payloads carry it. */
export const toBytes = (ip: Ipv4): Uint8Array => Uint8Array.from(octets(ip))
export const fromBytes = (bytes: Uint8Array, offset = 0): Ipv4 =>
  fromOctets([bytes[offset]!, bytes[offset + 1]!, bytes[offset + 2]!, bytes[offset + 3]!])

export const Ipv4FromString = Schema.transformOrFail(Schema.String, Schema.typeSchema(Ipv4), {
  strict: true,
  decode: (text, _, ast) =>
    Option.match(parse(text), {
      onNone: () => ParseResult.fail(new ParseResult.Type(ast, text, `invalid IP address ${text}`)),
      onSome: ParseResult.succeed
    }),
  encode: (ip) => ParseResult.succeed(format(ip))
}).annotations({ identifier: "Ipv4FromString" })
