/**
 * The lease registry on disk: one small file per leased address under
 * /run/netjail/leases/<segment>/<address>. One file per address because
 * taking a lease is then one atomic link(2) that fails with EEXIST when
 * another start got there first, a damaged entry spoils only itself, and a
 * rewrite (probing → active) is one atomic rename(2). Owners are named by pid
 * and start time, so a reused pid cannot keep a dead sandbox's lease alive.
 */
import { linkSync, mkdirSync, readdirSync, readFileSync, renameSync, rmdirSync, statSync, unlinkSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { Effect, Either, ParseResult, Schema } from "effect"
import { AddressInUse, KernelError } from "../domain/errors.js"
import { errnoName } from "../domain/errno.js"
import * as Ipv4 from "../domain/Ipv4.js"
import type { Lease, LeaseDetails, LeaseOwner, RegistryService } from "../services/Registry.js"

const LeaseFile = Schema.Struct({
  segment: Schema.String,
  address: Ipv4.Ipv4FromString,
  state: Schema.Literal("probing", "active"),
  owner: Schema.Struct({ pid: Schema.Int, startTime: Schema.String }),
  device: Schema.String,
  namespace: Schema.optionalWith(Schema.String, { exact: true }),
  interface: Schema.optionalWith(Schema.String, { exact: true }),
  hostVeth: Schema.optionalWith(Schema.String, { exact: true })
})
const decode = Schema.decodeUnknownEither(Schema.parseJson(LeaseFile))
const encode = (lease: Lease) => JSON.stringify(Schema.encodeSync(LeaseFile)(lease)) + "\n"

/** Field 22 of /proc/<pid>/stat, in clock ticks since boot: with the pid, it names one process for all time. */
export const startTimeOf = (pid: number): string | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]
  } catch {
    return undefined
  }
}

const isAlive = (owner: LeaseOwner) => startTimeOf(owner.pid) === owner.startTime

const fsError = (operation: string, error: unknown): KernelError => {
  const errno = Math.abs((error as NodeJS.ErrnoException).errno ?? 5)
  return new KernelError({ operation, errno, code: errnoName(errno) })
}

const fsAttempt = <A>(operation: string, action: () => A) =>
  Effect.try({ try: action, catch: (error) => fsError(operation, error) })

const listDirectory = (path: string): Array<string> => {
  try {
    return readdirSync(path)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return []
    throw error
  }
}

const tryUnlink = (path: string) => {
  try {
    unlinkSync(path)
  } catch {
    // gone already
  }
}

export interface RegistryOptions {
  /** Where `leases/` lives: /run/netjail unless a test or an embedder says otherwise. */
  readonly directory: string
  readonly hostNamespace?: string
}

export const makeRegistry = (options: RegistryOptions): RegistryService => {
  const root = join(options.directory, "leases")
  const pid = process.pid
  const owner: LeaseOwner = { pid, startTime: startTimeOf(pid) ?? "0" }

  const entryPath = (segment: string, address: Ipv4.Ipv4) => join(root, segment, Ipv4.format(address))
  /** A file written in full under a name nobody else uses, so readers never see half of it. */
  const writeTemporary = (segment: string, lease: Lease) => {
    const dir = join(root, segment)
    const temporary = join(dir, `.${Ipv4.format(lease.address)}.${pid}.${Math.random().toString(36).slice(2)}`)
    const text = encode(lease)
    try {
      writeFileSync(temporary, text, { mode: 0o644 })
    } catch (error) {
      // the segment's first lease (or a prune removed the empty directory): a sweep pays mkdir once, not per lease
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error
      mkdirSync(dir, { recursive: true, mode: 0o755 })
      writeFileSync(temporary, text, { mode: 0o644 })
    }
    return temporary
  }

  /** A lease, the reason it is unreadable, or undefined when it vanished meanwhile (released without the lock). */
  const readEntry = (path: string): Either.Either<Lease, string> | undefined => {
    let text: string
    try {
      text = readFileSync(path, "utf8")
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined
      return Either.left(String((error as Error).message))
    }
    return Either.mapLeft(decode(text), (e) => ParseResult.TreeFormatter.formatErrorSync(e).split("\n")[0] ?? "invalid")
  }

  /** Every entry of every segment: the leases, and the entries that could not be read. */
  const scan = () => {
    const leases: Array<{ readonly path: string; readonly lease: Lease }> = []
    const broken: Array<{ readonly path: string; readonly reason: string }> = []
    const strays: Array<string> = []
    for (const segment of listDirectory(root)) {
      for (const name of listDirectory(join(root, segment))) {
        const path = join(root, segment, name)
        if (name.startsWith(".")) {
          strays.push(path)
          continue
        }
        const entry = readEntry(path)
        if (entry === undefined) continue
        Either.match(entry, {
          onLeft: (reason) => broken.push({ path, reason }),
          onRight: (lease) => leases.push({ path, lease })
        })
      }
    }
    return { leases, broken, strays }
  }

  const service: RegistryService = {
    segmentOf: (device) =>
      fsAttempt(`identify the namespace of ${device}`, () =>
        `${statSync(options.hostNamespace ?? "/proc/self/ns/net").ino}-${device}`),

    prune: fsAttempt("prune the lease registry", () => {
      const { broken, leases, strays } = scan()
      const pruned: Array<Lease> = []
      for (const { lease, path } of leases) {
        if (isAlive(lease.owner)) continue
        tryUnlink(path)
        pruned.push(lease)
      }
      const problems = broken.map(({ path, reason }) => {
        tryUnlink(path)
        return `lease entry ${path} is unreadable (${reason}); removed it`
      })
      // half-written temporaries of dead writers: .<address>.<pid>.<random>
      for (const path of strays) {
        const writer = Number(path.split(".").at(-2))
        if (!Number.isInteger(writer) || startTimeOf(writer) === undefined) tryUnlink(path)
      }
      // segments nobody uses any more (a removed bridge, a deleted namespace)
      for (const segment of listDirectory(root)) {
        try {
          rmdirSync(join(root, segment))
        } catch {
          // not empty, or taken again meanwhile: it stays
        }
      }
      return { pruned, problems }
    }),

    leased: (segment) =>
      fsAttempt(`read the leases of ${segment}`, () => {
        const held = new Map<Ipv4.Ipv4, Lease["state"]>()
        for (const name of listDirectory(join(root, segment))) {
          if (name.startsWith(".")) continue
          const entry = readEntry(join(root, segment, name))
          if (entry !== undefined) Either.map(entry, (lease) => held.set(lease.address, lease.state))
        }
        return held
      }),

    take: (segment, address, details) =>
      Effect.acquireRelease(
        Effect.suspend((): Effect.Effect<void, AddressInUse | KernelError> => {
          const lease: Lease = { ...details, segment, address, state: "probing", owner }
          let temporary: string | undefined
          try {
            temporary = writeTemporary(segment, lease)
            linkSync(temporary, entryPath(segment, address))
            return Effect.void
          } catch (error) {
            return (error as NodeJS.ErrnoException).code === "EEXIST"
              ? Effect.fail(new AddressInUse({ address }))
              : Effect.fail(fsError(`lease ${Ipv4.format(address)}`, error))
          } finally {
            if (temporary) tryUnlink(temporary)
          }
        }),
        // Ours for certain: only a dead owner's or an unreadable entry is ever pruned,
        // and no one else can link over an existing one; so no read-back (a sweep releases hundreds).
        () => Effect.sync(() => tryUnlink(entryPath(segment, address)))
      ),

    activate: (segment, address, details: LeaseDetails) =>
      fsAttempt(`activate the lease of ${Ipv4.format(address)}`, () => {
        const lease: Lease = { ...details, segment, address, state: "active", owner }
        renameSync(writeTemporary(segment, lease), entryPath(segment, address))
      }),

    list: fsAttempt("read the lease registry", () => {
      const { broken, leases } = scan()
      return {
        leases: leases.map((l) => l.lease),
        problems: broken.map(({ path, reason }) => `lease entry ${path} is unreadable (${reason})`)
      }
    })
  }
  return service
}
