/**
 * Where the CLI's start-up goes. The bundle is rebuilt with its whitespace kept
 * (same entry, identifiers and syntax minified as in dist/), so each source
 * module keeps its lines and esbuild's `// path` marker. Two measurements:
 * - a copy with a timestamp at every marker: the top-level evaluation of each
 *   module, inclusive of what it calls (a Schema built at load time counts for
 *   the module that builds it), plus what comes before and after;
 * - `node --cpu-prof` on the plain copy: V8's compile of the bundle, Node's
 *   own bootstrap, the garbage collector, next to the bundle's code.
 * The bytes per package come from esbuild's metafile.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { Effect } from "effect"
import { build } from "esbuild"
import { expectSuccess, timedRun } from "./processes.js"
import { formatMillis, markdownTable, summarize } from "./stats.js"

interface ProfileNode {
  readonly id: number
  readonly callFrame: { readonly functionName: string; readonly url: string }
}

interface CpuProfile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

/** What the instrumented copy writes on exit: [module, ms since process start] at each marker. */
interface Marks {
  readonly marks: ReadonlyArray<readonly [string, number]>
  readonly exit: number
}

/** Sampling period: finer costs more profiler overhead, coarser misses short phases. */
const INTERVAL_MICROS = 200
const MARKER = /^\/\/ ((?:node_modules|src)\/\S+)$/gm
const BEFORE = "before the bundle's code runs: Node's bootstrap, koffi's addon, compiling the bundle"
const AFTER = "after the last module: main() (argv, @effect/cli, layers, the run) until exit"

/** node_modules/@effect/cli/… → @effect/cli; src/linux/… → netjail src/linux. */
const packageOf = (path: string): string => {
  const dependency = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path)?.[1]
  if (dependency !== undefined) return dependency
  return path.startsWith("src/") ? `netjail ${path.split("/").slice(0, 2).join("/")}` : path
}

/** Every marker gets a timestamp call; markers sit between top-level statements, so this stays valid JS. */
const instrument = (bundle: string): string =>
  bundle.replace(MARKER, (line, path: string) => `${line}\n__njbMark(${JSON.stringify(path)});`)

const MARKS_BANNER = [
  "const __njbMarks = [];",
  "const __njbMark = (path) => void __njbMarks.push([path, performance.now()]);",
  "process.once('exit', () => { if (process.env.NJB_MARKS) require('node:fs').writeFileSync(process.env.NJB_MARKS,",
  "  JSON.stringify({ marks: __njbMarks, exit: performance.now() })) });"
].join("\n")

/** Milliseconds per segment of one run: before, each module's top level, after. */
const segments = ({ exit, marks }: Marks): Map<string, number> => {
  const out = new Map<string, number>()
  out.set(BEFORE, marks[0]?.[1] ?? exit)
  marks.forEach(([path, at], i) => {
    const end = marks[i + 1]?.[1]
    // The last module is the entry (src/cli/main.ts), whose top level ends by calling main().
    if (end !== undefined) out.set(path, (out.get(path) ?? 0) + end - at)
    else out.set(AFTER, exit - at)
  })
  return out
}

type Kind =
  | "V8 compiling the bundle (compileSourceTextModule)"
  | "the bundle's own code"
  | "Node's bootstrap and module loaders (node:*)"
  | "garbage collector"
  | "native and other ((program), koffi's addon, …)"

const kinds = (profile: CpuProfile, bundleUrl: string): Map<Kind, number> => {
  const selfMicros = new Map<number, number>()
  profile.samples.forEach((id, i) => selfMicros.set(id, (selfMicros.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)))
  const out = new Map<Kind, number>()
  for (const node of profile.nodes) {
    const micros = selfMicros.get(node.id) ?? 0
    const { functionName, url } = node.callFrame
    if (micros === 0 || functionName === "(idle)") continue
    const kind: Kind = url === bundleUrl
      ? "the bundle's own code"
      : functionName === "compileSourceTextModule"
      ? "V8 compiling the bundle (compileSourceTextModule)"
      : functionName === "(garbage collector)"
      ? "garbage collector"
      : url.startsWith("node:")
      ? "Node's bootstrap and module loaders (node:*)"
      : "native and other ((program), koffi's addon, …)"
    out.set(kind, (out.get(kind) ?? 0) + micros / 1000)
  }
  return out
}

const median = (values: ReadonlyArray<number>) => summarize(values)?.median ?? 0

/** Median per key over runs; a key missing from a run counts as 0 there. */
const medians = <K>(runs: ReadonlyArray<Map<K, number>>): Map<K, number> => {
  const keys = new Set(runs.flatMap((r) => [...r.keys()]))
  return new Map([...keys].map((k) => [k, median(runs.map((r) => r.get(k) ?? 0))]))
}

const byValue = <K>(map: Map<K, number>) => [...map].sort((a, b) => b[1] - a[1])

export const startupProfile = (root: string, runs: number) =>
  Effect.gen(function*() {
    // Inside the project, so the external koffi still resolves from node_modules.
    const dir = join(root, "bench", ".profile")
    yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
    rmSync(dir, { recursive: true, force: true })
    mkdirSync(join(dir, "profiles"), { recursive: true })
    const plain = join(dir, "netjail.mjs")
    const marked = join(dir, "netjail-marked.mjs")
    const { version } = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string }
    const requireBanner =
      "import { createRequire as __netjailRequire } from 'node:module'; const require = __netjailRequire(import.meta.url);"
    const result = yield* Effect.promise(() =>
      build({
        entryPoints: [join(root, "src/cli/main.ts")],
        outfile: plain,
        bundle: true,
        platform: "node",
        target: "node20",
        format: "esm",
        minifyIdentifiers: true,
        minifySyntax: true,
        metafile: true,
        external: ["koffi"],
        define: { NETJAIL_VERSION: JSON.stringify(version) },
        banner: { js: requireBanner },
        logLevel: "warning"
      })
    )
    const bundle = readFileSync(plain, "utf8")
    writeFileSync(marked, instrument(bundle).replace(requireBanner, `${requireBanner}\n${MARKS_BANNER}`))

    const node = process.execPath
    const run = (args: ReadonlyArray<string>, environment: Record<string, string> = {}) =>
      Effect.flatMap(timedRun(node, args, { environment }), (f) => expectSuccess(`node ${args.join(" ")}`, f))
    const walls = { bare: [] as Array<number>, marked: [] as Array<number>, plain: [] as Array<number> }
    const timelines: Array<Map<string, number>> = []
    for (let i = 0; i < runs; i++) {
      walls.bare.push((yield* run(["-e", "0"])).millis)
      const marksFile = join(dir, `marks-${i}.json`)
      walls.marked.push((yield* run([marked, "--version"], { NJB_MARKS: marksFile })).millis)
      timelines.push(segments(JSON.parse(readFileSync(marksFile, "utf8")) as Marks))
      const profileArgs = ["--cpu-prof", `--cpu-prof-dir=${join(dir, "profiles")}`, "--cpu-prof-interval", String(INTERVAL_MICROS)]
      walls.plain.push((yield* run([...profileArgs, plain, "--version"])).millis)
    }
    const bundleUrl = pathToFileURL(plain).href
    const profileKinds = readdirSync(join(dir, "profiles")).map((f) =>
      kinds(JSON.parse(readFileSync(join(dir, "profiles", f), "utf8")) as CpuProfile, bundleUrl)
    )

    const timeline = medians(timelines)
    const before = timeline.get(BEFORE) ?? 0
    const after = timeline.get(AFTER) ?? 0
    const moduleTimes = new Map([...timeline].filter(([k]) => k !== BEFORE && k !== AFTER))
    const evaluation = [...moduleTimes.values()].reduce((a, b) => a + b, 0)
    const packageTimes = new Map<string, number>()
    for (const [path, ms] of moduleTimes) packageTimes.set(packageOf(path), (packageTimes.get(packageOf(path)) ?? 0) + ms)

    const output = Object.values(result.metafile!.outputs).find((o) => o.entryPoint !== undefined)!
    const bytes = new Map<string, number>()
    for (const [path, input] of Object.entries(output.inputs)) {
      bytes.set(packageOf(path), (bytes.get(packageOf(path)) ?? 0) + input.bytesInOutput)
    }
    const totalBytes = [...bytes.values()].reduce((a, b) => a + b, 0)
    const packages = [...new Set([...packageTimes.keys(), ...bytes.keys()])]
      .sort((a, b) => (packageTimes.get(b) ?? 0) - (packageTimes.get(a) ?? 0) || (bytes.get(b) ?? 0) - (bytes.get(a) ?? 0))

    return [
      `## 6b. Where the CLI's start-up goes (${runs} runs of \`--version\`)`,
      "",
      ...(existsSync(join(root, "dist/netjail.cjs.cache"))
        ? [
          "Note: the shipped dist/netjail.mjs loads dist/netjail.cjs with a V8 code cache (scripts/bundle.mjs), so it" +
          " skips most of the compile time profiled below; section 6 measures the shipped form. This profile is of a plain" +
          " ESM build without a cache: what the cache saves, and what remains.",
          ""
        ]
        : []),
      `A build of the same entry with its whitespace kept (${(totalBytes / 1024).toFixed(0)} KiB from` +
      ` ${Object.keys(output.inputs).length} modules). Wall time, median: \`node -e 0\` ${formatMillis(median(walls.bare))},` +
      ` the copy with a timestamp at each module ${formatMillis(median(walls.marked))},` +
      ` the plain copy under \`--cpu-prof\` (${INTERVAL_MICROS} µs) ${formatMillis(median(walls.plain))}.`,
      "",
      "Timeline of the timestamped copy (ms since the process started; medians):",
      "",
      markdownTable(["segment", "ms"], [
        [BEFORE, formatMillis(before)],
        [`top-level evaluation of the ${moduleTimes.size} bundled modules`, formatMillis(evaluation)],
        [AFTER, formatMillis(after)]
      ]),
      "",
      "CPU profile of the plain copy, self time by kind (median per run):",
      "",
      markdownTable(["kind", "ms"], byValue(medians(profileKinds)).map(([k, ms]) => [k, formatMillis(ms)])),
      "",
      "Top-level evaluation by package (inclusive of the library calls each module makes while loading), and its share of" +
      " the bundle's bytes, which drive the compile time:",
      "",
      markdownTable(
        ["package", "evaluation", "bytes", "share of bytes"],
        packages.map((name) => [
          name,
          formatMillis(packageTimes.get(name) ?? 0),
          String(bytes.get(name) ?? 0),
          `${(((bytes.get(name) ?? 0) / totalBytes) * 100).toFixed(1)} %`
        ])
      ),
      "",
      "The modules whose top level costs the most:",
      "",
      markdownTable(
        ["module", "evaluation (median)"],
        byValue(moduleTimes).slice(0, 15).map(([path, ms]) => [path, formatMillis(ms)])
      )
    ].join("\n")
  }).pipe(Effect.scoped)
