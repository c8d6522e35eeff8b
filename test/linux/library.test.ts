/** The README's library example on the real kernel, in a lab namespace: embed, run, release. */
import { rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { layerLinux, makeConfig, Namespaces, Sandbox, Subnet } from "netjail"
import { describeKernel, lab } from "./lab.js"

describeKernel("netjail as a library", () => {
  describe("Sandbox.layer with layerLinux", () => {
    // live: the Linux layer's probe windows run on the real clock
    it.live("gives the embedder a running sandbox and removes it with the scope", () =>
      Effect.gen(function*() {
        const l = yield* lab
        l.bridge("br0", "10.10.20.1/24")
        l.peer("br0", "a", "10.10.20.2/24")
        const runDirectory = join(tmpdir(), l.name)
        yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(runDirectory, { force: true, recursive: true })))
        const config = makeConfig({ interfaces: [{ device: "br0" }], probe: { probes: 2, window: 100 } })

        const program = Effect.gen(function*() {
          const sandbox = yield* Sandbox
          const address = Option.map(sandbox.interfaces[0]!.address, Subnet.format)
          // exits 0 only where eth0 exists: inside the sandbox
          const child = yield* (yield* Namespaces).spawn(sandbox.namespace, { command: "ip", args: ["link", "show", "eth0"] })
          return { address, status: yield* child.exitStatus, hostEnd: Option.getOrThrow(sandbox.interfaces[0]!.hostName) }
        })

        const result = yield* program.pipe(
          Effect.scoped,
          Effect.provide(Sandbox.layer(config)),
          Effect.provide(layerLinux({ hostNamespace: l.path, runDirectory }))
        )
        expect(Option.isSome(result.address)).toBe(true)
        expect(result.address).not.toEqual(Option.some("10.10.20.2/24"))
        expect(result.status).toBe(0)
        // the layer's scope has closed: the host end is gone from the bridge
        expect(l.linkNames()).not.toContain(result.hostEnd)
      }).pipe(Effect.scoped))
  })
})
