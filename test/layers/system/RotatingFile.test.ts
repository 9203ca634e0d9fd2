import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import { makeRotatingFile } from "../../../src/layers/system/RotatingFile.js"

const root = Fs.mkdtempSync(Path.join(Os.tmpdir(), "corral-rotating-test-"))
afterAll(() => Fs.rmSync(root, { recursive: true, force: true }))

let counter = 0
const freshPath = (name: string) => Path.join(root, `case-${counter++}`, "nested", name)
const read = (path: string) => Fs.readFileSync(path, "utf8")

describe("makeRotatingFile", () => {
  it.scoped("creates parent directories and appends chunks and lines in order", () =>
    Effect.gen(function*() {
      const path = freshPath("a.log")
      const file = yield* makeRotatingFile(path, { maxBytes: 1024, keep: 2 })
      yield* file.write("one ")
      yield* file.write(new TextEncoder().encode("two"))
      yield* file.writeLine("")
      yield* file.writeLine("three")
      yield* file.flush
      expect(read(path)).toBe("one two\nthree\n")
      expect(Fs.statSync(path).mode & 0o777).toBe(0o600)
    }))

  it.scoped("rotates before a chunk would pass maxBytes, keeping `keep` old files and dropping the oldest", () =>
    Effect.gen(function*() {
      const path = freshPath("r.log")
      const file = yield* makeRotatingFile(path, { maxBytes: 10, keep: 2 })
      for (const line of ["aaaa", "bbbb", "cccc", "dddd", "eeee"]) yield* file.writeLine(line)
      yield* file.flush
      expect(read(path)).toBe("eeee\n")
      expect(read(`${path}.1`)).toBe("cccc\ndddd\n")
      expect(read(`${path}.2`)).toBe("aaaa\nbbbb\n")
      expect(Fs.existsSync(`${path}.3`)).toBe(false)
    }))

  it.scoped("writes a chunk larger than maxBytes whole into a fresh file", () =>
    Effect.gen(function*() {
      const path = freshPath("big.log")
      const file = yield* makeRotatingFile(path, { maxBytes: 8, keep: 1 })
      yield* file.write("small")
      yield* file.write("0123456789abcdef")
      yield* file.flush
      expect(read(path)).toBe("0123456789abcdef")
      expect(read(`${path}.1`)).toBe("small")
    }))

  it.scoped("continues an existing file's size after reopening, and keep 0 truncates", () =>
    Effect.gen(function*() {
      const path = freshPath("k0.log")
      Fs.mkdirSync(Path.dirname(path), { recursive: true })
      Fs.writeFileSync(path, "123456")
      const file = yield* makeRotatingFile(path, { maxBytes: 8, keep: 0 })
      yield* file.write("789")
      yield* file.flush
      expect(read(path)).toBe("789")
      expect(Fs.readdirSync(Path.dirname(path))).toEqual(["k0.log"])
    }))

  it.scoped("never interleaves chunks written concurrently from many fibers", () =>
    Effect.gen(function*() {
      const path = freshPath("c.log")
      const file = yield* makeRotatingFile(path, { maxBytes: 1 << 20, keep: 1 })
      const chunk = (n: number) => `${String(n).padStart(4, "0")}:${"x".repeat(2000)}\n`
      yield* Effect.all(Array.from({ length: 200 }, (_, n) => file.write(chunk(n))), { concurrency: "unbounded" })
      yield* file.flush
      const lines = read(path).split("\n").filter((line) => line !== "")
      expect(lines).toHaveLength(200)
      expect(new Set(lines.map((line) => line.slice(0, 4))).size).toBe(200)
      for (const line of lines) expect(line).toMatch(/^\d{4}:x{2000}$/)
    }))

  it.effect("a write only buffers: nothing reaches the file on the writer's turn, all of it after that turn", () =>
    Effect.gen(function*() {
      const path = freshPath("buffered.log")
      const scope = yield* Scope.make()
      const file = yield* Scope.extend(makeRotatingFile(path, { maxBytes: 1 << 20, keep: 1, buffered: true }), scope)
      for (let n = 0; n < 100; n++) yield* file.writeLine(`line ${n}`)
      // Still the writer's turn of the event loop: no synchronous write happened on its path.
      expect(Fs.existsSync(path)).toBe(false)
      yield* Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))
      expect(read(path).split("\n").filter((line) => line !== "")).toHaveLength(100)
      yield* Scope.close(scope, Exit.void)
    }))

  it.effect("the scope's finalizer writes everything still buffered before closing", () =>
    Effect.gen(function*() {
      const path = freshPath("final.log")
      const scope = yield* Scope.make()
      const file = yield* Scope.extend(makeRotatingFile(path, { maxBytes: 1 << 20, keep: 1, buffered: true }), scope)
      for (let n = 0; n < 500; n++) yield* file.writeLine(`record ${n}`)
      yield* Scope.close(scope, Exit.void)
      const lines = read(path).split("\n").filter((line) => line !== "")
      expect(lines).toHaveLength(500)
      expect(lines[499]).toBe("record 499")
    }))

  it.effect("an unbuffered file (child logs) has each write on disk when write returns", () =>
    Effect.gen(function*() {
      const path = freshPath("direct.log")
      const scope = yield* Scope.make()
      const file = yield* Scope.extend(makeRotatingFile(path, { maxBytes: 1 << 20, keep: 1 }), scope)
      yield* file.writeLine("now")
      expect(read(path)).toBe("now\n")
      yield* Scope.close(scope, Exit.void)
    }))

  it.effect("closes on scope close; later writes are dropped", () =>
    Effect.gen(function*() {
      const path = freshPath("closed.log")
      const scope = yield* Scope.make()
      const file = yield* Scope.extend(makeRotatingFile(path, { maxBytes: 100, keep: 1 }), scope)
      yield* file.writeLine("before")
      yield* Scope.close(scope, Exit.void)
      yield* file.writeLine("after")
      expect(read(path)).toBe("before\n")
    }))
})
