/**
 * Signal routing for the whole run. Before the command starts, SIGINT, SIGTERM
 * and SIGHUP interrupt the setup (whose scope then removes what it built);
 * while it runs they are forwarded to it; a second signal during clean-up is
 * ignored, so it cannot kill netjail half-way through removing things.
 */
import { Effect, type Scope } from "effect"

export const HANDLED = ["SIGINT", "SIGTERM", "SIGHUP"] as const

let forward: ((signal: NodeJS.Signals) => void) | undefined

/**
 * Ctrl-C in a terminal already reaches the command (it shares netjail's
 * process group), so SIGINT is forwarded only when there is no terminal.
 */
const shouldForward = (signal: NodeJS.Signals) => signal !== "SIGINT" || !process.stdin.isTTY

/** While the scope is open, signals go to the command instead of stopping netjail. */
export const forwardTo = (send: (signal: NodeJS.Signals) => void): Effect.Effect<void, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      forward = (signal) => shouldForward(signal) && send(signal)
    }),
    () => Effect.sync(() => (forward = undefined))
  )

/** Installs the handlers once; `interrupt` is called for the first signal that arrives outside forwarding. */
export const install = (interrupt: (signal: NodeJS.Signals) => void): void => {
  let interrupted = false
  for (const signal of HANDLED) {
    process.on(signal, () => {
      if (forward) return forward(signal)
      if (interrupted) return
      interrupted = true
      interrupt(signal)
    })
  }
}

export const signalNumber = (signal: NodeJS.Signals): number =>
  ({ SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as Record<string, number>)[signal] ?? 0
