/**
 * Running a sandbox from the command line: build it, report it, run the
 * command inside with signals forwarded, and hand back its exit status; the
 * scope then removes the interfaces and the namespace.
 */
import { Clock, Effect } from "effect"
import type { Invocation } from "../domain/Config.js"
import { NotRoot } from "../domain/errors.js"
import { Sandbox } from "../pipeline/Sandbox.js"
import { Namespaces } from "../services/Namespaces.js"
import { humanSummary, jsonSummary, planSummary } from "./output.js"
import { forwardTo } from "./signals.js"

/** Checked up front: without it the first kernel call would fail with a bare EPERM. */
export const requireRoot = Effect.suspend(() => (process.getuid?.() === 0 ? Effect.void : Effect.fail(new NotRoot())))

const stderr = (text: string) => Effect.sync(() => process.stderr.write(text))

/** Under sudo the command runs as the calling user, not as root, unless --as-root. */
export const callerIds = (asRoot: boolean, env = process.env): { uid?: number; gid?: number } => {
  if (asRoot || process.getuid?.() !== 0) return {}
  const uid = Number(env.SUDO_UID)
  const gid = Number(env.SUDO_GID)
  return Number.isInteger(uid) && Number.isInteger(gid) && env.SUDO_UID && env.SUDO_GID ? { uid, gid } : {}
}

export const dryRun = (invocation: Invocation) =>
  Effect.gen(function*() {
    yield* requireRoot
    const plan = yield* Sandbox.plan(invocation.sandbox)
    if (invocation.output !== "quiet") yield* stderr(planSummary(plan, invocation.output === "json"))
    return 0
  })

export const runInSandbox = (invocation: Invocation) =>
  Effect.scoped(Effect.gen(function*() {
    yield* requireRoot
    const start = yield* Clock.currentTimeMillis
    const sandbox = yield* Sandbox.run(invocation.sandbox)
    const readyIn = (yield* Clock.currentTimeMillis) - start
    // reported before the command starts, as firejail does, so it never lands amid the command's output
    // firejail prints nothing for --net=none: there is nothing to report
    if (invocation.output === "table" && sandbox.interfaces.length > 0) yield* stderr(humanSummary(sandbox))
    if (invocation.output === "json") {
      yield* stderr(jsonSummary(sandbox, { command: invocation.command, readyMillis: readyIn }))
    }
    const [command, ...args] = invocation.command
    const ids = callerIds(invocation.asRoot)
    const child = yield* (yield* Namespaces).spawn(sandbox.namespace, { command: command!, args, ...ids })
    yield* forwardTo((signal) => Effect.runFork(child.signal(signal)))
    return yield* child.exitStatus
  }))
