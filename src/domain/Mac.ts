/** Ethernet MAC addresses, kept as lower-case colon-separated text. */
import { Option, ParseResult, Schema } from "effect"

export const Mac = Schema.String.pipe(
  Schema.pattern(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/),
  Schema.brand("Mac"),
  Schema.annotations({ identifier: "Mac" })
)
export type Mac = typeof Mac.Type

/** Six groups of one or two hex digits, as firejail's atomac accepts, normalised. */
export const parse = (text: string): Option.Option<Mac> => {
  const groups = text.split(":")
  if (groups.length !== 6 || !groups.every((g) => /^[0-9a-fA-F]{1,2}$/.test(g))) return Option.none()
  return Option.some(groups.map((g) => g.toLowerCase().padStart(2, "0")).join(":") as Mac)
}

export const toBytes = (mac: Mac): Uint8Array => Uint8Array.from(mac.split(":").map((g) => parseInt(g, 16)))
export const fromBytes = (bytes: Uint8Array, offset = 0): Mac =>
  Array.from(bytes.subarray(offset, offset + 6), (b) => b.toString(16).padStart(2, "0")).join(":") as Mac

/** Bit 0 of the first octet marks group addresses, which no interface may own. */
export const isMulticast = (mac: Mac): boolean => (parseInt(mac.slice(0, 2), 16) & 1) === 1
export const isZero = (mac: Mac): boolean => mac === "00:00:00:00:00:00"

export const MacFromString = Schema.transformOrFail(Schema.String, Schema.typeSchema(Mac), {
  strict: true,
  decode: (text, _, ast) =>
    Option.match(parse(text), {
      onNone: () => ParseResult.fail(new ParseResult.Type(ast, text, `invalid MAC address ${text}`)),
      onSome: ParseResult.succeed
    }),
  encode: ParseResult.succeed
})
