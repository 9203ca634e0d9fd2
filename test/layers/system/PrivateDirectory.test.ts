import { spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import { privateDirectory } from "../../../src/layers/system/PrivateDirectory.js"
import { inodeOf, removeStaleSocket } from "../../../src/layers/system/SocketFiles.js"
import { parseFdSoftLimit } from "../../../src/layers/system/FdUsage.js"
import { otherUser } from "../../support/otherUser.js"

const root = Fs.realpathSync(Fs.mkdtempSync(Path.join(Os.tmpdir(), "corral-private-")))
afterAll(() => Fs.rmSync(root, { recursive: true, force: true }))

const modeOf = (path: string) => Fs.statSync(path).mode & 0o777
const failureOf = (path: string, anyOwner = false) =>
  Effect.runSync(Effect.either(privateDirectory(path, { anyOwner })))

const other = otherUser()
if ("skip" in other) console.log(`skipping the other-owner privateDirectory test: ${other.skip}`)

describe("privateDirectory", () => {
  it("creates a missing directory (and its parents) 0700 and tightens an existing one to 0700", () => {
    const fresh = Path.join(root, "a", "b")
    expect(Either.getOrThrow(failureOf(fresh))).toBe(fresh)
    expect(modeOf(fresh)).toBe(0o700)
    const loose = Path.join(root, "loose")
    Fs.mkdirSync(loose, { mode: 0o755 })
    Fs.chmodSync(loose, 0o755)
    Either.getOrThrow(failureOf(loose))
    expect(modeOf(loose)).toBe(0o700)
  })

  it("refuses a file or a symlink at the path, naming it", () => {
    const file = Path.join(root, "file")
    Fs.writeFileSync(file, "")
    const link = Path.join(root, "link")
    Fs.symlinkSync(root, link)
    for (const path of [file, link]) {
      const result = failureOf(path)
      expect(Either.isLeft(result)).toBe(true)
      if (Either.isLeft(result)) expect(result.left.message).toBe(`${path} is not a directory; remove it so the host can create its private directory there`)
    }
    expect(modeOf(root)).toBe(0o700)
  })

  it.skipIf("skip" in other)("refuses another user's directory unless told any owner will do", () => {
    if ("skip" in other) return
    const theirs = Path.join(root, "theirs")
    Fs.mkdirSync(theirs, { mode: 0o755 })
    Fs.chownSync(theirs, other.uid, other.gid)
    const refused = failureOf(theirs)
    expect(Either.isLeft(refused)).toBe(true)
    if (Either.isLeft(refused)) expect(refused.left.message).toContain(`${theirs} is owned by uid ${other.uid}`)
    Either.getOrThrow(failureOf(theirs, true))
    expect(modeOf(theirs)).toBe(0o700)
  })
})

describe("removeStaleSocket", () => {
  it("unlinks a socket, leaves anything else, and reports which", () => {
    const socket = Path.join(root, "stale.sock")
    // A socket left by a process that exited without unlinking it.
    const bound = spawnSync("python3", ["-c", "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])", socket], { timeout: 10_000 })
    expect(bound.status).toBe(0)
    expect(inodeOf(socket)).toBeTypeOf("number")
    expect(removeStaleSocket(socket)).toBe("removed")
    expect(inodeOf(socket)).toBeUndefined()
    expect(removeStaleSocket(socket)).toBe("absent")
    const file = Path.join(root, "not.sock")
    Fs.writeFileSync(file, "keep")
    expect(removeStaleSocket(file)).toBe("not_socket")
    expect(Fs.readFileSync(file, "utf8")).toBe("keep")
  })
})

describe("parseFdSoftLimit", () => {
  it("reads the soft limit of this process's /proc/self/limits, and null for unlimited", () => {
    const limits = Fs.readFileSync("/proc/self/limits", "utf8")
    const soft = /^Max open files\s+(\S+)/m.exec(limits)?.[1]
    expect(parseFdSoftLimit(limits)).toBe(soft === "unlimited" ? null : Number(soft))
    expect(parseFdSoftLimit("Max open files            unlimited            unlimited            files\n")).toBeNull()
  })
})
