import { describe, expect, it } from "@effect/vitest"
import {
  type EntryKind,
  judgeWalk,
  type PathEntry,
  type PathWalk,
  UntrustedFile
} from "../../../src/services/system/FileTrust.js"

const host = 1000
const bob = 1001
const trusted = [host, 0]

const entry = (path: string, mode: number, uid = 0, kind: EntryKind = "directory"): PathEntry => ({ path, uid, mode, kind })

/** A walk through `directories` (outermost first) to `target`, each step the next entry in its parent. */
const walk = (directories: ReadonlyArray<PathEntry>, target: PathEntry): PathWalk => {
  const chain = [...directories, target]
  return {
    steps: chain.slice(1).map((next, index) => ({ directory: chain[index] ?? next, entry: next })),
    target
  }
}

const slash = entry("/", 0o755)
const tmp = entry("/tmp", 0o1777)
const srv = entry("/srv", 0o755)

describe("judgeWalk: the StrictModes rule", () => {
  it("trusts a file the host's user owns under directories only root and the host can write", () => {
    const home = entry("/srv/app", 0o700, host)
    expect(judgeWalk(walk([slash, srv, home], entry("/srv/app/run.sh", 0o755, host, "file")), "file", trusted)).toBeUndefined()
  })

  it("refuses the file when others or group can write it (others named first)", () => {
    expect(judgeWalk(walk([slash, srv], entry("/srv/run.sh", 0o777, 0, "file")), "file", trusted))
      .toEqual({ _tag: "WritableByOthers", path: "/srv/run.sh", mode: 0o777 })
    expect(judgeWalk(walk([slash, srv], entry("/srv/run.sh", 0o775, 0, "file")), "file", trusted))
      .toEqual({ _tag: "WritableByGroup", path: "/srv/run.sh", mode: 0o775 })
  })

  it("refuses a file owned by another user, and one under a directory another user owns", () => {
    expect(judgeWalk(walk([slash, srv], entry("/srv/run.sh", 0o755, bob, "file")), "file", trusted))
      .toEqual({ _tag: "OwnedByOther", path: "/srv/run.sh", uid: bob })
    const theirs = entry("/srv/bob", 0o755, bob)
    expect(judgeWalk(walk([slash, srv, theirs], entry("/srv/bob/run.sh", 0o755, 0, "file")), "file", trusted))
      .toEqual({ _tag: "OwnedByOther", path: "/srv/bob", uid: bob })
  })

  it("refuses the outermost writable directory on the way", () => {
    const open = entry("/srv/x", 0o777)
    const inner = entry("/srv/x/bin", 0o775)
    expect(judgeWalk(walk([slash, srv, open, inner], entry("/srv/x/bin/run", 0o755, 0, "file")), "file", trusted))
      .toEqual({ _tag: "WritableByOthers", path: "/srv/x", mode: 0o777 })
  })

  it("passes through a sticky /tmp to a directory a trusted user owns", () => {
    const mine = entry("/tmp/corral-1", 0o700, host)
    expect(judgeWalk(walk([slash, tmp, mine], entry("/tmp/corral-1/run", 0o755, host, "file")), "file", trusted)).toBeUndefined()
  })

  it("refuses a file directly in a sticky directory, even one it owns", () => {
    expect(judgeWalk(walk([slash, tmp], entry("/tmp/run", 0o755, host, "file")), "file", trusted))
      .toEqual({ _tag: "WritableByOthers", path: "/tmp", mode: 0o1777 })
  })

  it("refuses passing through a sticky directory to an entry another user owns, or one another user owns", () => {
    const theirs = entry("/tmp/bob", 0o755, bob)
    expect(judgeWalk(walk([slash, tmp, theirs], entry("/tmp/bob/run", 0o755, 0, "file")), "file", trusted))
      .toEqual({ _tag: "WritableByOthers", path: "/tmp", mode: 0o1777 })
    const bobsTmp = entry("/srv/tmp", 0o1777, bob)
    const mine = entry("/srv/tmp/mine", 0o700, host)
    expect(judgeWalk(walk([slash, srv, bobsTmp, mine], entry("/srv/tmp/mine/run", 0o755, host, "file")), "file", trusted))
      .toEqual({ _tag: "OwnedByOther", path: "/srv/tmp", uid: bob })
  })

  it("refuses a target of the wrong kind", () => {
    expect(judgeWalk(walk([slash], srv), "file", trusted)).toEqual({ _tag: "WrongKind", path: "/srv", expected: "file" })
    expect(judgeWalk(walk([slash], srv), "directory", trusted)).toBeUndefined()
  })
})

describe("UntrustedFile messages", () => {
  it("name the file, the culprit, the reason and the fix", () => {
    expect(new UntrustedFile({ file: "/srv/x/run.sh", realPath: "/srv/x/run.sh", distrust: { _tag: "WritableByOthers", path: "/srv/x/run.sh", mode: 0o777 } }).message)
      .toBe("/srv/x/run.sh: writable by others (mode 0777); chmod go-w /srv/x/run.sh")
    expect(new UntrustedFile({ file: "/d/svc.service.json", realPath: "/home/bob/svc.service.json", distrust: { _tag: "OwnedByOther", path: "/home/bob/svc.service.json", uid: bob } }).message)
      .toBe(
        "/d/svc.service.json (-> /home/bob/svc.service.json): owned by uid 1001; " +
          "only files and directories of the host's user or root are trusted: chown /home/bob/svc.service.json or move the file"
      )
    expect(new UntrustedFile({ file: "/tmp/run", realPath: "/tmp/run", distrust: { _tag: "WritableByOthers", path: "/tmp", mode: 0o1777 } }).message)
      .toBe("/tmp/run: in /tmp, which is writable by others (mode 1777); keep it in a directory that only its owner can write, not in the shared /tmp")
  })
})
