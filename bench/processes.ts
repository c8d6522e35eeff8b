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

/** A run that takes longer than this is stuck: it is killed and reported. */
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

export const timedRun = (
  command: string,
  args: ReadonlyArray<string>,
  extraEnvironment: Readonly<Record<string, string>> = {}
): Effect.Effect<Finished, RunFailed> =>
  Effect.async<Finished, RunFailed>((resume) => {
    const line = commandLine(command, args)
    const stdout: Array<Buffer> = []
    const stderr: Array<Buffer> = []
    const start = process.hrtime.bigint()
    let exitedAt: bigint | undefined
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...childEnvironment, ...extraEnvironment } })
    running.add(child)
    child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk))
    child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk))
    const limit = setTimeout(() => {
      child.kill("SIGKILL")
      resume(Effect.fail(new RunFailed(line, `still running after ${RUN_LIMIT_MILLIS} ms, killed`)))
    }, RUN_LIMIT_MILLIS)
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
