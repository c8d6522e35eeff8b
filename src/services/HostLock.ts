/**
 * The host-wide lock that serialises address choice across concurrent starts.
 */
import { Context, type Duration, type Effect, type Option, type Scope } from "effect"
import type { KernelError, LockTimeout } from "../domain/errors.js"

export interface HostLockService {
  /** Held until the scope closes; `None` waits as long as it takes. */
  readonly acquire: (
    timeout: Option.Option<Duration.Duration>
  ) => Effect.Effect<void, LockTimeout | KernelError, Scope.Scope>
}

export class HostLock extends Context.Tag("netjail/HostLock")<HostLock, HostLockService>() {}
