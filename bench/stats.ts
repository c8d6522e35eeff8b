/** Summaries of timing samples and the markdown tables that show them. */

export interface Summary {
  readonly n: number
  readonly median: number
  readonly min: number
  readonly max: number
}

export const summarize = (samples: ReadonlyArray<number>): Summary | undefined => {
  if (samples.length === 0) return undefined
  const sorted = [...samples].sort((a, b) => a - b)
  const middle = sorted.length >> 1
  const median = sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
  return { n: sorted.length, median, min: sorted[0]!, max: sorted[sorted.length - 1]! }
}

/** Milliseconds with about three significant digits; microseconds below 1 ms. */
export const formatMillis = (millis: number): string => {
  if (millis < 1) return `${Math.round(millis * 1000)} µs`
  if (millis < 10) return `${millis.toFixed(2)} ms`
  if (millis < 100) return `${millis.toFixed(1)} ms`
  return `${Math.round(millis)} ms`
}

export const formatRatio = (netjail: Summary | undefined, peer: Summary | undefined): string =>
  netjail === undefined || peer === undefined || peer.median === 0 ? "" : `${(netjail.median / peer.median).toFixed(2)}×`

/** median | min | max cells, or dashes when there are no samples. */
export const summaryCells = (summary: Summary | undefined): Array<string> =>
  summary === undefined
    ? ["—", "—", "—"]
    : [formatMillis(summary.median), formatMillis(summary.min), formatMillis(summary.max)]

export const markdownTable = (headers: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const escape = (cell: string) => cell.replaceAll("|", "\\|")
  const line = (cells: ReadonlyArray<string>) => `| ${cells.map(escape).join(" | ")} |`
  return [line(headers), line(headers.map(() => "---")), ...rows.map(line)].join("\n")
}
