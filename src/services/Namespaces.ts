/**
 * The sandbox's network namespace and the processes that run inside it.
 */
import { Context, type Effect, type Scope } from "effect"
import type { CommandError, KernelError } from "../domain/errors.js"

/** A network namespace held open for the sandbox's lifetime; each layer knows what stands behind the id. */
export interface SandboxNamespace {
  readonly id: string
}

export interface SpawnRequest {
  readonly command: string
  readonly args: ReadonlyArray<string>
  /** Run as this user and group (for example sudo's caller); unset keeps netjail's own. */
  readonly uid?: number
  readonly gid?: number
  readonly env?: Readonly<Record<string, string | undefined>>
}

export interface SandboxProcess {
  readonly pid: number
  /** The exit status as a shell reports it: the code, or 128 + the signal number. */
  readonly exitStatus: Effect.Effect<number>
  readonly signal: (signal: NodeJS.Signals) => Effect.Effect<void>
}

export interface NamespacesService {
  /** A new, empty network namespace with `lo` up; closing the scope lets the kernel reclaim it. */
  readonly create: Effect.Effect<SandboxNamespace, KernelError, Scope.Scope>
  /** Starts a command inside the namespace; closing the scope kills it if it still runs. */
  readonly spawn: (
    namespace: SandboxNamespace,
    request: SpawnRequest
  ) => Effect.Effect<SandboxProcess, CommandError | KernelError, Scope.Scope>
}

export class Namespaces extends Context.Tag("netjail/Namespaces")<Namespaces, NamespacesService>() {}
