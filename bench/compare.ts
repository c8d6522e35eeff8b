/**
 * netjail against a peer tool, one command line each: one unrecorded warm-up
 * run of each, then rounds that alternate which of the two goes first. Every
 * run checks its own result; a failed run is reported, not timed.
 */
import { Effect, Either } from "effect"
import { commandLine, expectSuccess, type Finished, RunFailed, timedRun } from "./processes.js"
import { formatRatio, markdownTable, type Summary, summarize, summaryCells } from "./stats.js"

export interface Contender<Extra> {
  /** How the row names it, e.g. `netjail --net=br0 -- true`. */
  readonly label: string
  readonly command: string
  readonly args: ReadonlyArray<string>
  /** Checks a run that exited 0; Left is why the result is wrong, Right what the run reported about itself. */
  readonly check: (finished: Finished) => Either.Either<Extra, string>
}

export interface Outcome<Extra> {
  readonly label: string
  readonly line: string
  readonly samples: Array<number>
  readonly extras: Array<Extra>
  readonly failures: Array<string>
  /** Set when the tool could not be used at all (not installed, refused to run in the warm-up). */
  readonly unavailable?: string
}

export interface Comparison<N, P> {
  readonly netjail: Outcome<N>
  readonly peer: Outcome<P>
}

const runChecked = <Extra>(contender: Contender<Extra>) =>
  Effect.gen(function*() {
    const line = commandLine(contender.command, contender.args)
    const finished = yield* Effect.flatMap(timedRun(contender.command, contender.args), (f) => expectSuccess(line, f))
    const checked = contender.check(finished)
    if (Either.isLeft(checked)) return yield* Effect.fail(new RunFailed(line, `wrong result: ${checked.left}`))
    return { millis: finished.millis, extra: checked.right }
  })

const outcome = <Extra>(contender: Contender<Extra>, unavailable?: string): Outcome<Extra> => ({
  label: contender.label,
  line: commandLine(contender.command, contender.args),
  samples: [],
  extras: [],
  failures: [],
  ...(unavailable === undefined ? {} : { unavailable })
})

const recordRun = <Extra>(contender: Contender<Extra>, into: Outcome<Extra>) =>
  runChecked(contender).pipe(
    Effect.match({
      onFailure: (error) => void into.failures.push(error.reason),
      onSuccess: ({ extra, millis }) => {
        into.samples.push(millis)
        into.extras.push(extra)
      }
    })
  )

/**
 * `peerUnavailable` skips the peer from the start (say, not installed). A peer
 * that fails its warm-up is dropped with the exact error; netjail's rows still run.
 */
export const compare = <N, P>(
  netjail: Contender<N>,
  peer: Contender<P>,
  rounds: number,
  options: {
    readonly peerUnavailable?: string | undefined
    /** An untimed pause before every run, so what the previous run left to die asynchronously is gone. */
    readonly settleMillis?: number
  } = {}
): Effect.Effect<Comparison<N, P>> =>
  Effect.gen(function*() {
    const settle = Effect.sleep(`${options.settleMillis ?? 0} millis`)
    const record = <Extra>(contender: Contender<Extra>, into: Outcome<Extra>) => Effect.zipRight(settle, recordRun(contender, into))
    const runOnce = <Extra>(contender: Contender<Extra>) => Effect.zipRight(settle, runChecked(contender))
    const ours = outcome(netjail)
    yield* runOnce(netjail).pipe(Effect.catchAll((error) => Effect.sync(() => ours.failures.push(`warm-up: ${error.reason}`))))
    let theirsUnavailable = options.peerUnavailable
    if (theirsUnavailable === undefined) {
      const warm = yield* Effect.either(runOnce(peer))
      if (Either.isLeft(warm)) theirsUnavailable = `refused to run here: ${warm.left.reason}`
    }
    const theirs = outcome(peer, theirsUnavailable)
    for (let round = 0; round < rounds; round++) {
      const both = [record(netjail, ours), ...(theirsUnavailable === undefined ? [record(peer, theirs)] : [])]
      // Alternating the order spreads caches, timers and neighbours' noise over both tools.
      yield* Effect.all(round % 2 === 0 ? both : [...both].reverse(), { discard: true })
    }
    return { netjail: ours, peer: theirs }
  })

export const HEADERS = ["command", "tool", "runs", "median", "min", "max", "netjail/peer (median)"]

/** Two rows, netjail's first with the ratio; the peer's row explains itself when it could not run. */
export const comparisonRows = <N, P>(what: string, comparison: Comparison<N, P>): Array<Array<string>> => {
  const ours: Summary | undefined = summarize(comparison.netjail.samples)
  const theirs: Summary | undefined = summarize(comparison.peer.samples)
  const peerRow = comparison.peer.unavailable === undefined
    ? [what, comparison.peer.label, String(comparison.peer.samples.length), ...summaryCells(theirs), ""]
    : [what, comparison.peer.label, "0", "—", "—", "—", "not run (see below)"]
  return [
    [what, comparison.netjail.label, String(comparison.netjail.samples.length), ...summaryCells(ours), formatRatio(ours, theirs)],
    peerRow
  ]
}

export const singleRow = (what: string, label: string, samples: ReadonlyArray<number>): Array<string> => [
  what,
  label,
  String(samples.length),
  ...summaryCells(summarize(samples)),
  ""
]

/** The notes under a table: failed runs and unavailable tools, with their exact errors. */
export const problems = (outcomes: ReadonlyArray<Outcome<unknown>>): Array<string> =>
  outcomes.flatMap((o) => [
    ...(o.unavailable === undefined ? [] : [`- **${o.label}** was not run: ${o.unavailable}`]),
    ...o.failures.map((f) => `- **${o.label}** failed a run: ${f}`)
  ]).map((line) => line.replaceAll("\n", "\n  "))

export const table = (rows: ReadonlyArray<ReadonlyArray<string>>) => markdownTable(HEADERS, rows)
