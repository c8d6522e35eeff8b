/**
 * netjail against one or more peer tools: one unrecorded warm-up run of each,
 * then rounds that rotate which tool goes first. Every run checks its own
 * result: a run that exits as expected but hands out a wrong answer is
 * counted as wrong (warm-up included) and never timed; a run that cannot
 * complete is reported with its error.
 */
import { Effect, Either } from "effect"
import { commandLine, type Finished, RunFailed, type RunOptions, tail, timedRun } from "./processes.js"
import { formatRatio, markdownTable, type Summary, summarize, summaryCells } from "./stats.js"

/** A tool run as one command line. */
export interface Contender<Extra> {
  /** How the row names it, e.g. `netjail --net=br0 -- true`. */
  readonly label: string
  readonly command: string
  readonly args: ReadonlyArray<string>
  readonly options?: RunOptions
  /** Which exits are a completed run (default: status 0); any other is a failed run. */
  readonly completed?: (finished: Finished) => boolean
  /** Checks a completed run; Left is why the answer is wrong, Right what the run reported about itself. */
  readonly check: (finished: Finished) => Either.Either<Extra, string>
}

/** One timed run's verdict: a sample, or a wrong answer. */
export type Verdict<Extra> =
  | { readonly _tag: "Sample"; readonly millis: number; readonly extra: Extra }
  | { readonly _tag: "Wrong"; readonly why: string }

/** A tool run any way at all (a command line, or a sequence of them as a CNI runtime does). */
export interface Runner<Extra> {
  readonly label: string
  /** What the notes show as the command. */
  readonly line: string
  readonly run: Effect.Effect<Verdict<Extra>, RunFailed>
}

export interface Outcome<Extra> {
  readonly label: string
  readonly line: string
  readonly samples: Array<number>
  readonly extras: Array<Extra>
  /** Wrong answers (the warm-up's included), with why. */
  readonly wrong: Array<string>
  readonly failures: Array<string>
  /** Set when the tool could not be used at all (not installed, refused to run in the warm-up). */
  readonly unavailable?: string
}

export interface Comparison<N, P> {
  readonly netjail: Outcome<N>
  readonly peer: Outcome<P>
}

export const runnerOf = <Extra>(contender: Contender<Extra>): Runner<Extra> => {
  const line = commandLine(contender.command, contender.args)
  const completed = contender.completed ?? ((f: Finished) => f.code === 0)
  return {
    label: contender.label,
    line,
    run: Effect.gen(function*() {
      const finished = yield* timedRun(contender.command, contender.args, contender.options)
      if (!completed(finished)) {
        return yield* Effect.fail(
          new RunFailed(line, `exit ${finished.code ?? `signal ${finished.signal}`}${finished.stderr || finished.stdout ? `:\n${tail(finished)}` : ""}`)
        )
      }
      const checked = contender.check(finished)
      return Either.isLeft(checked)
        ? { _tag: "Wrong", why: checked.left } as const
        : { _tag: "Sample", millis: finished.millis, extra: checked.right } as const
    })
  }
}

const outcome = <Extra>(runner: Runner<Extra>, unavailable?: string): Outcome<Extra> => ({
  label: runner.label,
  line: runner.line,
  samples: [],
  extras: [],
  wrong: [],
  failures: [],
  ...(unavailable === undefined ? {} : { unavailable })
})

const record = <Extra>(runner: Runner<Extra>, into: Outcome<Extra>, warmUp: boolean) =>
  runner.run.pipe(
    Effect.match({
      onFailure: (error) => void into.failures.push(`${warmUp ? "warm-up: " : ""}${error.reason}`),
      onSuccess: (verdict) => {
        if (verdict._tag === "Wrong") return void into.wrong.push(`${warmUp ? "warm-up: " : ""}${verdict.why}`)
        if (warmUp) return
        into.samples.push(verdict.millis)
        into.extras.push(verdict.extra)
      }
    })
  )

export interface CompareOptions {
  /** Per peer (same order): a reason to skip it from the start (say, not installed). */
  readonly peersUnavailable?: ReadonlyArray<string | undefined>
  /** An untimed pause before every run, so what the previous run left to die asynchronously is gone. */
  readonly settleMillis?: number
}

/**
 * netjail first, then its peers. A peer whose warm-up cannot complete is
 * dropped with the exact error; netjail's rows still run.
 */
export const compareAll = <N, const P extends ReadonlyArray<Runner<any>>>(
  netjail: Runner<N>,
  peers: P,
  rounds: number,
  options: CompareOptions = {}
): Effect.Effect<[Outcome<N>, ...{ [K in keyof P]: P[K] extends Runner<infer E> ? Outcome<E> : never }]> =>
  Effect.gen(function*() {
    const settle = Effect.sleep(`${options.settleMillis ?? 0} millis`)
    const ours = outcome(netjail)
    yield* Effect.zipRight(settle, record(netjail, ours, true))
    const theirs: Array<Outcome<any>> = []
    for (const [i, peer] of peers.entries()) {
      const skipped = options.peersUnavailable?.[i]
      if (skipped !== undefined) {
        theirs.push(outcome(peer, skipped))
        continue
      }
      const warm = outcome(peer)
      yield* Effect.zipRight(settle, record(peer, warm, true))
      theirs.push(
        warm.failures.length > 0
          ? outcome(peer, `refused to run here: ${warm.failures[0]!.replace(/^warm-up: /, "")}`)
          : warm
      )
    }
    const live = [[netjail, ours] as const, ...peers.map((p, i) => [p, theirs[i]!] as const)]
      .filter(([, o]) => o.unavailable === undefined)
    for (let round = 0; round < rounds; round++) {
      // Rotating the order spreads caches, timers and neighbours' noise over every tool.
      const order = live.map((_, i) => live[(i + round) % live.length]!)
      for (const [runner, into] of order) yield* Effect.zipRight(settle, record(runner, into, false))
    }
    return [ours, ...theirs] as any
  })

/** netjail against one peer (the two-column case). */
export const compare = <N, P>(
  netjail: Contender<N>,
  peer: Contender<P>,
  rounds: number,
  options: { readonly peerUnavailable?: string | undefined; readonly settleMillis?: number } = {}
): Effect.Effect<Comparison<N, P>> =>
  Effect.map(
    compareAll(runnerOf(netjail), [runnerOf(peer)], rounds, {
      peersUnavailable: [options.peerUnavailable],
      ...(options.settleMillis === undefined ? {} : { settleMillis: options.settleMillis })
    }),
    ([ours, theirs]) => ({ netjail: ours, peer: theirs })
  )

export const HEADERS = ["command", "tool", "runs", "wrong", "median", "min", "max", "netjail/peer (median)"]

/** netjail's row, then each peer's with netjail's median over the peer's; a peer that could not run says so. */
export const outcomeRows = (what: string, outcomes: ReadonlyArray<Outcome<unknown>>): Array<Array<string>> => {
  const [ours, ...theirs] = outcomes
  const oursSummary: Summary | undefined = summarize(ours?.samples ?? [])
  const row = (o: Outcome<unknown>, ratio: string) => [what, o.label, String(o.samples.length), String(o.wrong.length), ...summaryCells(summarize(o.samples)), ratio]
  return [
    ...(ours === undefined ? [] : [row(ours, "")]),
    ...theirs.map((o) =>
      o.unavailable === undefined
        ? row(o, formatRatio(oursSummary, summarize(o.samples)))
        : [what, o.label, "0", "—", "—", "—", "—", "not run (see below)"]
    )
  ]
}

export const comparisonRows = <N, P>(what: string, comparison: Comparison<N, P>): Array<Array<string>> =>
  outcomeRows(what, [comparison.netjail, comparison.peer])

export const singleRow = (what: string, label: string, samples: ReadonlyArray<number>): Array<string> => [
  what,
  label,
  String(samples.length),
  "",
  ...summaryCells(summarize(samples)),
  ""
]

/** The notes under a table: unavailable tools, wrong answers and failed runs, with their exact errors. */
export const problems = (outcomes: ReadonlyArray<Outcome<unknown>>): Array<string> =>
  outcomes.flatMap((o) => [
    ...(o.unavailable === undefined ? [] : [`- **${o.label}** was not run: ${o.unavailable}`]),
    ...counted(o.wrong).map((w) => `- **${o.label}** gave a wrong answer: ${w}`),
    ...counted(o.failures).map((f) => `- **${o.label}** failed a run: ${f}`)
  ]).map((line) => line.replaceAll("\n", "\n  "))

/** Identical messages once, with how often they came. */
export const counted = (messages: ReadonlyArray<string>): Array<string> => {
  const counts = new Map<string, number>()
  for (const m of messages) counts.set(m, (counts.get(m) ?? 0) + 1)
  return [...counts].map(([m, n]) => (n === 1 ? m : `${m} (${n}×)`))
}

export const table = (rows: ReadonlyArray<ReadonlyArray<string>>) => markdownTable(HEADERS, rows)

export const notes = (lines: ReadonlyArray<string>): Array<string> => (lines.length === 0 ? [] : ["", ...lines])
