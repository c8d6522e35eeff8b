/**
 * The Namespaces service on the real kernel: a network namespace held by an fd,
 * and the sandboxed command forked inside it through setpriv, which ties its life to ours.
 */
import { type ChildProcess, spawn as spawnChild } from "node:child_process"
import { readdirSync, readlinkSync, statSync } from "node:fs"
import { constants as osConstants } from "node:os"
import { delimiter, join, resolve } from "node:path"
import { Deferred, Duration, Effect, Either, Exit, Option } from "effect"
import { CommandNotExecutable, CommandNotFound, KernelError } from "../domain/errors.js"
import type { NamespacesService, SandboxNamespace, SandboxProcess, SpawnRequest } from "../services/Namespaces.js"
import { namespaceFd, register, unregister } from "./handle.js"
import { attempt } from "./attempt.js"
import * as libc from "./libc.js"
import { bringUp } from "./links.js"
import { unshareNamespace, withNamespaceFd } from "./netnsWindow.js"

const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
/** How long a command gets to exit after SIGTERM when the scope closes, before SIGKILL. */
const TERMINATION_GRACE = Duration.seconds(2)

/** Every process whose network namespace is the one held by `fd`: only a sandbox's own processes can be in it. */
const processesIn = (fd: number): Array<number> => {
  const link = readlinkSync(`/proc/self/fd/${fd}`) // net:[inode], as /proc/<pid>/ns/net reads
  return readdirSync("/proc").filter((entry) => /^\d+$/.test(entry)).map(Number).filter((pid) => {
    if (pid === process.pid) return false
    try {
      return readlinkSync(`/proc/${pid}/ns/net`) === link
    } catch {
      return false // gone meanwhile, or a kernel thread
    }
  })
}

const killQuietly = (pid: number) => {
  try {
    process.kill(pid, "SIGKILL")
  } catch {
    // gone already
  }
}

/** `net:[4026532297]` names the namespace for as long as it lives; the id carries the inode. */
const namespaceId = (fd: number): string => {
  const target = readlinkSync(`/proc/self/fd/${fd}`)
  const inode = /^net:\[(\d+)\]$/.exec(target)?.[1]
  return `netns:${inode ?? target}`
}

// ---- finding the command -------------------------------------------------------------

/** Whether the given user may execute the file, by its mode bits (root: any x bit). */
const executableBy = (mode: number, owner: number, group: number, uid: number, gid: number): boolean => {
  if (uid === 0) return (mode & 0o111) !== 0
  if (owner === uid) return (mode & 0o100) !== 0
  if (group === gid) return (mode & 0o010) !== 0
  return (mode & 0o001) !== 0
}

type Candidate = "missing" | "directory" | "denied" | "ok"

const inspect = (path: string, uid: number, gid: number): Candidate => {
  const stat = statSync(path, { throwIfNoEntry: false })
  if (stat === undefined) return "missing"
  if (stat.isDirectory()) return "directory"
  return stat.isFile() && executableBy(stat.mode, stat.uid, stat.gid, uid, gid) ? "ok" : "denied"
}

/**
 * The absolute path the command resolves to, as a shell would resolve it, so a
 * missing or unusable command is a typed error before anything is forked
 * (setpriv would only print a message and exit 127).
 */
export const resolveCommand = (
  command: string,
  searchPath: string,
  uid: number,
  gid: number
): Either.Either<string, CommandNotFound | CommandNotExecutable> => {
  const refuse = (path: string, found: Candidate) =>
    found === "directory"
      ? Either.left(new CommandNotExecutable({ command, reason: `${path} is a directory` }))
      : Either.left(new CommandNotExecutable({ command, reason: `${path}: permission denied` }))
  if (command === "") return Either.left(new CommandNotFound({ command }))
  if (command.includes("/")) {
    const path = resolve(command)
    const found = inspect(path, uid, gid)
    if (found === "ok") return Either.right(path)
    return found === "missing" ? Either.left(new CommandNotFound({ command })) : refuse(path, found)
  }
  // Like execvp: the first executable match wins; a match we may not run is
  // reported only when nothing later in PATH works.
  let refused: Option.Option<[string, Candidate]> = Option.none()
  for (const dir of searchPath.split(delimiter)) {
    const path = resolve(join(dir === "" ? "." : dir, command))
    const found = inspect(path, uid, gid)
    if (found === "ok") return Either.right(path)
    if (found !== "missing" && Option.isNone(refused)) refused = Option.some([path, found])
  }
  return Option.match(refused, {
    onNone: () => Either.left(new CommandNotFound({ command })),
    onSome: ([path, found]) => refuse(path, found)
  })
}

// ---- running it ----------------------------------------------------------------------

/**
 * setpriv applies --pdeathsig after it has changed the ids; the kernel clears
 * the parent-death signal on every euid/egid change, so the other order would
 * silently lose it (measured with util-linux 2.38.1; the parent-death tests
 * guard it). KILL because the command may ignore or handle TERM.
 */
const setprivArguments = (request: SpawnRequest, executable: string): Array<string> => [
  "--pdeathsig",
  "KILL",
  ...(request.uid === undefined ? [] : [`--reuid=${request.uid}`]),
  ...(request.gid === undefined ? [] : [`--regid=${request.gid}`]),
  // Root's supplementary groups must not follow the command into another user's ids.
  ...(request.uid === undefined && request.gid === undefined ? [] : ["--clear-groups"]),
  "--",
  executable,
  ...request.args
]

const definedEntries = (env: Readonly<Record<string, string | undefined>>): Record<string, string> =>
  Object.fromEntries(Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined))

const exitStatusOf = (code: number | null, signal: NodeJS.Signals | null): number =>
  code ?? 128 + (signal === null ? 0 : osConstants.signals[signal])

const stillRunning = (child: ChildProcess) => child.exitCode === null && child.signalCode === null

export const makeNamespaces = (_options: { readonly hostNamespace?: string }): NamespacesService => {
  const create = Effect.acquireRelease(
    attempt("create network namespace", () => {
      const fd = unshareNamespace()
      try {
        bringUp(fd, "lo")
        const namespace: SandboxNamespace = { id: namespaceId(fd) }
        register(namespace, fd)
        return namespace
      } catch (error) {
        libc.close(fd)
        throw error
      }
    }),
    (namespace) =>
      Effect.sync(() => {
        const fd = namespaceFd(namespace)
        unregister(namespace)
        // What the command left running in the background would keep the namespace
        // (and a veth) alive: the sandbox ends with its command, as in firejail's PID namespace.
        for (const pid of processesIn(fd)) killQuietly(pid)
        // The kernel destroys the namespace, and the links inside, with its last reference.
        libc.close(fd)
      })
  )

  const start = (namespace: SandboxNamespace, request: SpawnRequest) =>
    Effect.gen(function*() {
      const env = request.env === undefined ? undefined : definedEntries(request.env)
      const searchPath = env === undefined ? process.env.PATH : env.PATH
      const uid = request.uid ?? process.getuid?.() ?? 0
      const gid = request.gid ?? process.getgid?.() ?? 0
      const executable = yield* resolveCommand(request.command, searchPath ?? DEFAULT_PATH, uid, gid)
      const setpriv = yield* resolveCommand("setpriv", process.env.PATH ?? DEFAULT_PATH, 0, 0)
      const exited = yield* Deferred.make<number>()
      const child = withNamespaceFd(
        namespaceFd(namespace),
        // fork happens synchronously here, so the child starts in the namespace.
        () => spawnChild(setpriv, setprivArguments(request, executable), { stdio: "inherit", ...(env ? { env } : {}) })
      )
      child.on("exit", (code, signal) => Deferred.unsafeDone(exited, Exit.succeed(exitStatusOf(code, signal))))
      if (child.pid === undefined) {
        // The fork itself failed (EAGAIN, ENOMEM): Node reports it on the next tick.
        return yield* Effect.async<never, KernelError>((resume) => {
          child.once("error", (error: NodeJS.ErrnoException) =>
            resume(Effect.fail(new KernelError({
              operation: `spawn ${request.command}`,
              errno: Math.abs(error.errno ?? 0),
              code: error.code ?? "unknown"
            }))))
        })
      }
      // A failed kill (already reaped) is reported as 'error'; the exit event tells the story.
      child.on("error", () => {})
      const process_: SandboxProcess = {
        pid: child.pid,
        exitStatus: Deferred.await(exited),
        // Node only signals a child it has not reaped yet, so the pid cannot have been reused.
        signal: (signal) => Effect.sync(() => void (stillRunning(child) && child.kill(signal)))
      }
      return { process: process_, child }
    })

  const stop = ({ child, process: sandboxProcess }: { readonly child: ChildProcess; readonly process: SandboxProcess }) =>
    Effect.gen(function*() {
      if (!stillRunning(child)) return
      // Releases run uninterruptibly; the wait must be interruptible or the timeout could never cut it short.
      const exited = Effect.interruptible(sandboxProcess.exitStatus).pipe(Effect.timeout(TERMINATION_GRACE), Effect.option)
      yield* sandboxProcess.signal("SIGTERM")
      if (Option.isSome(yield* exited)) return
      yield* sandboxProcess.signal("SIGKILL")
      yield* exited
    })

  return {
    create,
    spawn: (namespace, request) => Effect.acquireRelease(start(namespace, request), stop).pipe(Effect.map((s) => s.process))
  }
}
