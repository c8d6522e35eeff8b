/**
 * The Linux Namespaces layer on the real kernel: a fresh namespace with only
 * `lo`, commands run inside it with their exit status, ids and environment,
 * and a sandboxed command that dies with netjail even when netjail is SIGKILLed.
 */
import { execFileSync } from "node:child_process"
import { chmodSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { basename, join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Exit, Scope } from "effect"
import { namespaceFd } from "../../src/linux/handle.js"
import { makeNamespaces } from "../../src/linux/namespaces.js"
import { firstLine, isRunning, killIfRunning, startFixture } from "./fixtures/processes.js"
import { describeKernel } from "./lab.js"

const namespaces = makeNamespaces({})
const NOBODY = 65534

/** A scratch directory every user may write to, for what sandboxed commands report. */
const scratch = Effect.acquireRelease(
  Effect.sync(() => {
    const dir = mkdtempSync(join(tmpdir(), "njt-ns-"))
    chmodSync(dir, 0o777)
    return dir
  }),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

/** Runs `sh -c script` in the namespace and returns its exit status. */
const shell = (namespace: { readonly id: string }, script: string, ids: { uid?: number; gid?: number } = {}) =>
  Effect.scoped(
    Effect.flatMap(namespaces.spawn(namespace, { command: "sh", args: ["-c", script], ...ids }), (p) => p.exitStatus)
  )

/** Waits (on the live clock) until `condition` holds or the time is up; returns whether it held. */
const eventually = (condition: () => boolean, within: Duration.Duration) =>
  Effect.gen(function*() {
    const tries = Math.ceil(Duration.toMillis(within) / 20)
    for (let i = 0; i < tries; i++) {
      if (condition()) return true
      yield* Effect.sleep(Duration.millis(20))
    }
    return condition()
  })

const statusField = (status: string, field: string) =>
  status.split("\n").find((line) => line.startsWith(`${field}:`))?.split(/\s+/).slice(1).join(" ")

describeKernel("linux Namespaces", () => {
  describe("create", () => {
    it.scopedLive("a new namespace whose only link is lo, up; the fd is closed with the scope", () =>
      Effect.gen(function*() {
        const scope = yield* Scope.make()
        const namespace = yield* Scope.extend(namespaces.create, scope)
        const fd = namespaceFd(namespace)
        const inode = /^netns:(\d+)$/.exec(namespace.id)?.[1]
        expect(readlinkSync(`/proc/self/fd/${fd}`)).toBe(`net:[${inode}]`)
        expect(readlinkSync("/proc/self/ns/net")).not.toBe(`net:[${inode}]`)

        // The oracle: iproute2 entering the namespace through the sandboxed process.
        const sleeper = yield* Scope.extend(namespaces.spawn(namespace, { command: "sleep", args: ["1000"] }), scope)
        expect(readlinkSync(`/proc/${sleeper.pid}/ns/net`)).toBe(`net:[${inode}]`)
        const links = JSON.parse(
          execFileSync("nsenter", [`--net=/proc/${sleeper.pid}/ns/net`, "ip", "-json", "link", "show"], {
            encoding: "utf8"
          })
        ) as Array<{ ifname: string; flags: Array<string> }>
        expect(links.map((l) => l.ifname)).toEqual(["lo"])
        expect(links[0]!.flags).toContain("UP")

        yield* Scope.close(scope, Exit.void)
        expect(() => namespaceFd(namespace)).toThrow()
        let after: string | undefined
        try {
          after = readlinkSync(`/proc/self/fd/${fd}`)
        } catch {
          after = undefined
        }
        expect(after).not.toBe(`net:[${inode}]`)
      }))
  })

  describe("spawn", () => {
    it.scopedLive("runs the command inside the namespace: /proc/net/dev lists only lo", () =>
      Effect.gen(function*() {
        const dir = yield* scratch
        const namespace = yield* namespaces.create
        expect(yield* shell(namespace, `cat /proc/net/dev > ${dir}/dev`)).toBe(0)
        const devices = readFileSync(join(dir, "dev"), "utf8").split("\n").slice(2).filter((l) => l.trim() !== "")
          .map((l) => l.split(":")[0]!.trim())
        expect(devices).toEqual(["lo"])
      }))

    it.scopedLive("passes the exit status through: a code, or 128 + the signal", () =>
      Effect.gen(function*() {
        const namespace = yield* namespaces.create
        expect(yield* shell(namespace, "exit 3")).toBe(3)
        expect(yield* shell(namespace, "kill -TERM $$")).toBe(143)
        const sleeper = yield* namespaces.spawn(namespace, { command: "sleep", args: ["1000"] })
        yield* sleeper.signal("SIGINT")
        expect(yield* sleeper.exitStatus).toBe(130)
      }))

    it.scopedLive("a missing command is CommandNotFound; a directory or a non-executable file is CommandNotExecutable", () =>
      Effect.gen(function*() {
        const dir = yield* scratch
        const namespace = yield* namespaces.create
        const spawnError = (command: string) =>
          Effect.flip(Effect.scoped(namespaces.spawn(namespace, { command, args: [] })))
        expect((yield* spawnError("njt-no-such-command"))._tag).toBe("CommandNotFound")
        expect((yield* spawnError(join(dir, "missing")))._tag).toBe("CommandNotFound")
        expect((yield* spawnError(dir))._tag).toBe("CommandNotExecutable")
        writeFileSync(join(dir, "plain"), "#!/bin/sh\n", { mode: 0o644 })
        expect((yield* spawnError(join(dir, "plain")))._tag).toBe("CommandNotExecutable")
      }))

    it.scopedLive("runs with the given uid and gid, no supplementary groups, no capabilities", () =>
      Effect.gen(function*() {
        const dir = yield* scratch
        const namespace = yield* namespaces.create
        const script = `id -u > ${dir}/id; id -g >> ${dir}/id; id -G >> ${dir}/id; cat /proc/self/status > ${dir}/status`
        expect(yield* shell(namespace, script, { uid: NOBODY, gid: NOBODY })).toBe(0)
        expect(readFileSync(join(dir, "id"), "utf8")).toBe(`${NOBODY}\n${NOBODY}\n${NOBODY}\n`)
        const status = readFileSync(join(dir, "status"), "utf8")
        // real, effective, saved and filesystem ids alike: no way back to root
        expect(statusField(status, "Uid")).toBe(`${NOBODY} ${NOBODY} ${NOBODY} ${NOBODY}`)
        expect(statusField(status, "Gid")).toBe(`${NOBODY} ${NOBODY} ${NOBODY} ${NOBODY}`)
        expect(statusField(status, "CapEff")).toBe("0000000000000000")
        expect(statusField(status, "CapPrm")).toBe("0000000000000000")
      }))

    it.scopedLive("passes the given environment, without undefined entries", () =>
      Effect.gen(function*() {
        const dir = yield* scratch
        const namespace = yield* namespaces.create
        const env = { PATH: "/usr/bin:/bin", NJT_GREETING: "hello", NJT_UNSET: undefined }
        const sandboxed = yield* namespaces.spawn(namespace, {
          command: "sh",
          args: ["-c", `echo "$NJT_GREETING \${NJT_UNSET-unset}" > ${dir}/env`],
          env
        })
        expect(yield* sandboxed.exitStatus).toBe(0)
        expect(readFileSync(join(dir, "env"), "utf8")).toBe("hello unset\n")
      }))

    it.scopedLive("closing the scope stops a running command: SIGTERM, then SIGKILL if it stays", () =>
      Effect.gen(function*() {
        const namespace = yield* namespaces.create
        const polite = yield* Scope.make()
        const sleeper = yield* Scope.extend(namespaces.spawn(namespace, { command: "sleep", args: ["1000"] }), polite)
        yield* Scope.close(polite, Exit.void)
        expect(yield* sleeper.exitStatus).toBe(143)
        expect(isRunning(sleeper.pid)).toBe(false)

        const stubborn = yield* Scope.make()
        const ignorer = yield* Scope.extend(
          namespaces.spawn(namespace, { command: "sh", args: ["-c", "trap '' TERM; while :; do sleep 0.1; done"] }),
          stubborn
        )
        // Give the shell time to install its trap before the scope closes.
        yield* Effect.sleep(Duration.millis(200))
        yield* Scope.close(stubborn, Exit.void)
        expect(yield* ignorer.exitStatus).toBe(137)
      }))
  })

  describe("parent death", () => {
    for (const [label, id] of [["as root", undefined], ["as another user (pdeathsig survives the id change)", NOBODY]] as const) {
      it.scopedLive(`the sandboxed command dies when netjail is SIGKILLed, ${label}`, () =>
        Effect.gen(function*() {
          const netjail = yield* startFixture("sandboxSleep.ts", ...(id === undefined ? [] : [String(id)]))
          const pid = Number(yield* firstLine(netjail))
          yield* Effect.addFinalizer(() => Effect.sync(() => killIfRunning(pid, "sleep")))
          // setpriv sets the death signal right before it execs, so wait for sleep proper.
          const execed = yield* eventually(() => {
            try {
              return basename(readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0]!) === "sleep"
            } catch {
              return false
            }
          }, Duration.seconds(5))
          expect(execed).toBe(true)
          const uid = statusField(readFileSync(`/proc/${pid}/status`, "utf8"), "Uid")?.split(" ")[0]
          expect(uid).toBe(String(id ?? 0))
          netjail.kill("SIGKILL")
          expect(yield* eventually(() => !isRunning(pid), Duration.seconds(5))).toBe(true)
        }))
    }
  })
})
