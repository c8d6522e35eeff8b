/** The simulated Namespaces service: namespace ids in the world, processes as records. */
import { Effect, Ref } from "effect"
import type { NamespacesService, SandboxNamespace } from "../services/Namespaces.js"
import { mutation } from "./kernel.js"
import { macFor, type World } from "./world.js"

/** The kernel's cleanup when the last reference to a namespace goes: its links, their veth peers, its routes. */
export const destroy = (w: World, id: string): World => {
  const inside = w.links.filter((l) => l.namespace === id)
  const gone = new Set(inside.flatMap((l) => (l.peer === undefined ? [l.index] : [l.index, l.peer])))
  return {
    ...w,
    namespaces: w.namespaces.filter((n) => n !== id),
    links: w.links.filter((l) => !gone.has(l.index)),
    routes: w.routes.filter((r) => r.namespace !== id),
    processes: w.processes.map((p) => (p.namespace === id ? { ...p, running: false } : p))
  }
}

const stop = (world: Ref.Ref<World>, pid: number) =>
  Ref.update(world, (w) => ({ ...w, processes: w.processes.map((p) => (p.pid === pid ? { ...p, running: false } : p)) }))

const signals: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 }

export const makeNamespaces = (world: Ref.Ref<World>): NamespacesService => ({
  create: Effect.acquireRelease(
    Effect.zipRight(
      mutation(world, "create network namespace"),
      Ref.modify(world, (w): [SandboxNamespace, World] => {
        const id = `ns${w.nextId}`
        return [{ id }, {
          ...w,
          nextId: w.nextId + 1,
          nextIndex: w.nextIndex + 1,
          namespaces: [...w.namespaces, id],
          links: [...w.links, {
            index: w.nextIndex,
            name: "lo",
            namespace: id,
            kind: "loopback",
            mac: macFor(0, 0),
            mtu: 65536,
            up: true,
            addresses: []
          }]
        }]
      })
    ),
    (namespace) => Ref.update(world, (w) => destroy(w, namespace.id))
  ),

  spawn: (namespace, request) =>
    Effect.acquireRelease(
      Ref.modify(world, (w) => {
        const pid = 1000 + w.nextId
        return [{ pid, status: w.programs[request.command] ?? 0 }, {
          ...w,
          nextId: w.nextId + 1,
          processes: [...w.processes, { pid, namespace: namespace.id, command: request.command, running: true }]
        }] as const
      }),
      ({ pid }) => stop(world, pid)
    ).pipe(Effect.map(({ pid, status }) => ({
      pid,
      exitStatus: Effect.as(stop(world, pid), status),
      signal: (signal: NodeJS.Signals) => stop(world, pid).pipe(Effect.as(128 + (signals[signal] ?? 0)), Effect.asVoid)
    })))
})
