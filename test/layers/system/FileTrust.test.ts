import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import { checkFileTrusted, walkPath } from "../../../src/layers/system/FileTrust.js"

const root = Fs.realpathSync(Fs.mkdtempSync(Path.join(Os.tmpdir(), "corral-trust-")))
afterAll(() => Fs.rmSync(root, { recursive: true, force: true }))

const file = Path.join(root, "real", "run.sh")
Fs.mkdirSync(Path.dirname(file))
Fs.writeFileSync(file, "#!/bin/sh\n", { mode: 0o755 })

describe("walkPath", () => {
  it("walks every directory from / and follows relative symlinks and .. to the real file", () => {
    Fs.mkdirSync(Path.join(root, "links"))
    Fs.symlinkSync("../real/run.sh", Path.join(root, "links", "run"))
    const walked = walkPath(Path.join(root, "links", "run"))
    expect(Either.isRight(walked)).toBe(true)
    if (Either.isLeft(walked)) return
    expect(walked.right.target).toMatchObject({ path: file, kind: "file" })
    const met = walked.right.steps.map((step) => step.entry.path)
    expect(met[0]).toBe(`/${root.split("/")[1]}`)
    expect(met).toContain(Path.join(root, "links", "run"))
    expect(met.at(-1)).toBe(file)
    expect(walked.right.steps.find((step) => step.entry.path === Path.join(root, "links", "run"))?.entry.kind).toBe("symlink")
  })

  it("reports a symlink loop, a missing entry and a file used as a directory", () => {
    Fs.symlinkSync("loop-b", Path.join(root, "loop-a"))
    Fs.symlinkSync("loop-a", Path.join(root, "loop-b"))
    expect(walkPath(Path.join(root, "loop-a"))).toEqual(Either.left({ _tag: "SymlinkLoop", path: expect.any(String) }))
    expect(walkPath(Path.join(root, "nope", "x"))).toEqual(Either.left({ _tag: "Missing", path: Path.join(root, "nope") }))
    expect(walkPath(Path.join(file, "x"))).toEqual(Either.left({ _tag: "WrongKind", path: file, expected: "directory" }))
  })
})

describe("checkFileTrusted", () => {
  it.effect("answers the real path of a trusted file under the sticky /tmp", () =>
    Effect.gen(function*() {
      expect(yield* checkFileTrusted(file)).toBe(file)
    }))

  it.effect("refuses a trusted-looking symlink whose target directory others can write", () =>
    Effect.gen(function*() {
      const open = Path.join(root, "open")
      Fs.mkdirSync(open)
      Fs.chmodSync(open, 0o777)
      Fs.writeFileSync(Path.join(open, "run.sh"), "", { mode: 0o755 })
      Fs.symlinkSync(Path.join(open, "run.sh"), Path.join(root, "real", "via-link"))
      const error = yield* Effect.flip(checkFileTrusted(Path.join(root, "real", "via-link")))
      expect(error.message).toBe(
        `${Path.join(root, "real", "via-link")} (-> ${Path.join(open, "run.sh")}): in ${open}, which is writable by others (mode 0777); chmod go-w ${open}`
      )
    }))
})
