/**
 * Timed child processes: wall time from spawn to exit, output captured. An
 * interrupted run signals its own child (by its pid, never by name) and waits
 * for it, so the lab is only deleted once nothing we started still uses it.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { Effect } from "effect"

export interface Finished {
  readonly millis: number
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

/**
 * The children's environment: ours without NODE_EXTRA_CA_CERTS, which makes
 * every Node process read and parse a CA bundle at start-up (about 50 ms on
 * the reference machine), a cost of that machine's set-up, not of either tool.
 */
export const REMOVED_FROM_ENVIRONMENT = ["NODE_EXTRA_CA_CERTS"] as const
const childEnvironment = Object.fromEntries(
  Object.entries(process.env).filter(([name]) => !(REMOVED_FROM_ENVIRONMENT as ReadonlyArray<string>).includes(name))
)

/** Children still running, for the last-resort clean-up on process exit. */
const running = new Set<ChildProcess>()

/** A run that takes longer than this (unless the caller allows more) is stuck: it is killed and reported. */
const RUN_LIMIT_MILLIS = 30_000
/** How long an interrupted child gets after SIGTERM before SIGKILL. */
const TERM_GRACE_MILLIS = 3_000

const alive = (child: ChildProcess) => child.exitCode === null && child.signalCode === null

export class RunFailed extends Error {
  constructor(readonly command: string, readonly reason: string) {
    super(`${command}: ${reason}`)
  }
}

export const commandLine = (command: string, args: ReadonlyArray<string>) => [command, ...args].join(" ")

export interface RunOptions {
  /** Added to the children's environment. */
  readonly environment?: Readonly<Record<string, string>>
  /** Written to the child's stdin, which is then closed (stdin is /dev/null without it). */
  readonly input?: string
  readonly limitMillis?: number
  readonly cwd?: string
}

export const timedRun = (
  command: string,
  args: ReadonlyArray<string>,
  options: RunOptions = {}
): Effect.Effect<Finished, RunFailed> =>
  Effect.async<Finished, RunFailed>((resume) => {
    const line = commandLine(command, args)
    const stdout: Array<Buffer> = []
    const stderr: Array<Buffer> = []
    const start = process.hrtime.bigint()
    let exitedAt: bigint | undefined
    const child = spawn(command, args, {
      stdio: [options.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
      env: { ...childEnvironment, ...options.environment },
      ...(options.cwd === undefined ? {} : { cwd: options.cwd })
    })
    running.add(child)
    if (options.input !== undefined) {
      child.stdin?.on("error", () => {}) // a child that exits without reading must not crash the bench
      child.stdin?.end(options.input)
    }
    child.stdout!.on("data", (chunk: Buffer) => stdout.push(chunk))
    child.stderr!.on("data", (chunk: Buffer) => stderr.push(chunk))
    const limitMillis = options.limitMillis ?? RUN_LIMIT_MILLIS
    const limit = setTimeout(() => {
      child.kill("SIGKILL")
      resume(Effect.fail(new RunFailed(line, `still running after ${limitMillis} ms, killed`)))
    }, limitMillis)
    child.once("exit", () => {
      exitedAt = process.hrtime.bigint()
    })
    child.once("error", (error) => {
      clearTimeout(limit)
      running.delete(child)
      resume(Effect.fail(new RunFailed(line, error.message)))
    })
    // 'close' comes after 'exit' once the pipes are drained, so the output is complete.
    child.once("close", (code, signal) => {
      clearTimeout(limit)
      running.delete(child)
      resume(Effect.succeed({
        millis: Number((exitedAt ?? process.hrtime.bigint()) - start) / 1e6,
        code,
        signal,
        stdout: Buffer.concat(stdout).toString("utf8"),
        stderr: Buffer.concat(stderr).toString("utf8")
      }))
    })
    return Effect.async<void>((done) => {
      clearTimeout(limit)
      if (!alive(child)) return done(Effect.void)
      const force = setTimeout(() => child.kill("SIGKILL"), TERM_GRACE_MILLIS)
      child.once("close", () => {
        clearTimeout(force)
        done(Effect.void)
      })
      child.kill("SIGTERM")
    })
  })

/** Last resort from an `exit` listener: SIGKILL whatever we started that still runs. */
export const killRunning = (): void => {
  for (const child of running) if (alive(child)) child.kill("SIGKILL")
}

/** The output of a finished run, for an error message: the last few lines of both streams. */
export const tail = (finished: Finished, lines = 6): string =>
  `${finished.stderr}\n${finished.stdout}`.trim().split("\n").slice(-lines).join("\n")

/** Fails unless the run exited with status 0. */
export const expectSuccess = (line: string, finished: Finished): Effect.Effect<Finished, RunFailed> =>
  finished.code === 0
    ? Effect.succeed(finished)
    : Effect.fail(
      new RunFailed(
        line,
        `exit ${finished.code ?? `signal ${finished.signal}`}${finished.stderr || finished.stdout ? `:\n${tail(finished)}` : ""}`
      )
    )

/** A child that keeps running while the bench watches it (a sandbox that must coexist with others, a noisy peer). */
export interface Started {
  readonly pid: number
  readonly line: string
  /** performance.now() at spawn. */
  readonly spawnedAt: number
  readonly output: () => { readonly stdout: string; readonly stderr: string }
  /** performance.now() when `readyWhen` first held; fails if the child ends first or `limitMillis` passes. */
  readonly ready: Effect.Effect<number, RunFailed>
  /** The finished run (millis from spawn to exit). */
  readonly closed: Effect.Effect<Finished>
  readonly signal: (signal: NodeJS.Signals) => void
}

/**
 * Spawns a child for the length of the scope: when the scope closes, a child
 * still running gets SIGTERM (by its pid), then SIGKILL after a grace period,
 * and the scope waits for it to end.
 */
export const startProcess = (
  command: string,
  args: ReadonlyArray<string>,
  options: RunOptions & { readonly readyWhen?: (output: { stdout: string; stderr: string }) => boolean } = {}
) =>
  Effect.acquireRelease(
    Effect.sync((): Started & { readonly child: ChildProcess } => {
      const line = commandLine(command, args)
      const spawnedAt = performance.now()
      const child = spawn(command, args, {
        stdio: [options.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
        env: { ...childEnvironment, ...options.environment },
        ...(options.cwd === undefined ? {} : { cwd: options.cwd })
      })
      running.add(child)
      if (options.input !== undefined) {
        child.stdin?.on("error", () => {})
        child.stdin?.end(options.input)
      }
      const output = { stdout: "", stderr: "" }
      let readyAt: number | undefined
      let exitedAt: number | undefined
      let finished: Finished | undefined
      const waiters = new Set<() => void>()
      const wake = () => {
        for (const w of [...waiters]) w()
      }
      const checkReady = () => {
        if (readyAt === undefined && options.readyWhen?.(output)) {
          readyAt = performance.now()
          wake()
        }
      }
      child.stdout!.setEncoding("utf8").on("data", (text: string) => {
        output.stdout += text
        checkReady()
      })
      child.stderr!.setEncoding("utf8").on("data", (text: string) => {
        output.stderr += text
        checkReady()
      })
      child.once("exit", () => (exitedAt = performance.now()))
      const end = (code: number | null, signal: NodeJS.Signals | null, extra = "") => {
        if (finished !== undefined) return
        running.delete(child)
        finished = {
          millis: (exitedAt ?? performance.now()) - spawnedAt,
          code,
          signal,
          stdout: output.stdout,
          stderr: output.stderr + extra
        }
        wake()
      }
      child.once("error", (error) => end(null, null, `\n${error.message}`))
      child.once("close", (code, signal) => end(code, signal))
      const waitFor = <A>(settled: () => A | undefined) =>
        Effect.async<A>((resume) => {
          const now = settled()
          if (now !== undefined) return resume(Effect.succeed(now))
          const waiter = () => {
            const value = settled()
            if (value === undefined) return
            waiters.delete(waiter)
            resume(Effect.succeed(value))
          }
          waiters.add(waiter)
          return Effect.sync(() => void waiters.delete(waiter))
        })
      const readyOrEnd = waitFor(() => (readyAt !== undefined ? { readyAt } : finished !== undefined ? { finished } : undefined))
      const limit = options.limitMillis ?? RUN_LIMIT_MILLIS
      return {
        child,
        pid: child.pid ?? -1,
        line,
        spawnedAt,
        output: () => ({ ...output }),
        ready: readyOrEnd.pipe(
          Effect.timeoutFail({
            duration: `${Math.max(0, limit - (performance.now() - spawnedAt))} millis`,
            onTimeout: () => new RunFailed(line, `not ready after ${limit} ms`)
          }),
          Effect.flatMap((r) =>
            "readyAt" in r
              ? Effect.succeed(r.readyAt)
              : Effect.fail(new RunFailed(line, `ended before it was ready: exit ${r.finished.code ?? `signal ${r.finished.signal}`}:\n${tail(r.finished)}`))
          )
        ),
        closed: waitFor(() => finished),
        signal: (signal) => {
          if (finished === undefined && alive(child)) child.kill(signal)
        }
      }
    }),
    (started) =>
      Effect.gen(function*() {
        if (!alive(started.child)) return yield* started.closed
        started.child.kill("SIGTERM")
        const done = yield* Effect.timeout(started.closed, `${TERM_GRACE_MILLIS} millis`).pipe(Effect.option)
        if (done._tag === "None") {
          started.child.kill("SIGKILL")
          yield* started.closed
        }
      })
  ).pipe(Effect.map((started): Started => started))
