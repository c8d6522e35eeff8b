/**
 * What every simulated kernel call shares: counting mutating calls so a test
 * can fail the n-th one with a chosen errno, and the kernel's error shape.
 */
import { Effect, Option, Ref } from "effect"
import { KernelError } from "../domain/errors.js"
import { errnoName } from "../domain/errno.js"
import type { World } from "./world.js"

export const kernelError = (operation: string, errno: number, detail?: string) =>
  new KernelError({ operation, errno, code: errnoName(errno), ...(detail ? { detail } : {}) })

/** Counts one mutating call and fails it when the world's fault plan says so. */
export const mutation = (world: Ref.Ref<World>, operation: string): Effect.Effect<void, KernelError> =>
  Ref.modify(world, (w) => {
    const n = w.mutations + 1
    const hit = Option.filter(w.fault, (f) => f.at === n)
    return [hit, { ...w, mutations: n }] as const
  }).pipe(
    Effect.flatMap(Option.match({
      onNone: () => Effect.void,
      onSome: (fault) => Effect.fail(kernelError(operation, fault.errno, "injected fault"))
    }))
  )
