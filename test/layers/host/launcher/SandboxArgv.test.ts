import { describe, expect, it } from "@effect/vitest"
import { initScript } from "../../../../src/layers/host/launcher/PidIsolation.js"
import { type LaunchTools, sandboxAddressSpaceBytes, wrapCommand } from "../../../../src/layers/host/launcher/SandboxArgv.js"

describe("wrapCommand", () => {
  const groupsOnly: LaunchTools = {
    setpriv: "/usr/bin/setpriv",
    prlimit: "/usr/bin/prlimit",
    mount: "/usr/bin/mount",
    ownDirMountPointExists: true,
    shell: "/bin/sh",
    namespaces: undefined,
    root: true,
    bwrap: undefined
  }
  const namespaced: LaunchTools = { ...groupsOnly, namespaces: { unshare: "/usr/bin/unshare", env: "/usr/bin/env", userNamespace: false } }
  const command = { executable: "/bin/sleep", args: ["1"], env: {} }
  const unshare = ["/usr/bin/unshare", "--pid", "--fork", "--kill-child", "--mount-proc", "--"]

  it("wraps every child in setpriv --pdeathsig KILL, and nothing more for sandbox none without namespaces", () => {
    expect(wrapCommand({ ...command, sandbox: "none" }, groupsOnly)).toEqual({
      file: "/usr/bin/setpriv",
      args: ["--pdeathsig", "KILL", "--", "/bin/sleep", "1"],
      namespaced: false
    })
  })

  it("adds no_new_privs, prlimit and a umask 077 shell for module-restricted", () => {
    expect(wrapCommand({ ...command, sandbox: "module-restricted" }, groupsOnly)).toEqual({
      file: "/usr/bin/setpriv",
      args: [
        "--pdeathsig", "KILL", "--no-new-privs", "--",
        "/usr/bin/prlimit", "--nofile=1024:1024", `--as=${sandboxAddressSpaceBytes}`, "--",
        "/bin/sh", "-c", "umask 077; unset PWD; exec \"$@\"", "sh",
        "/bin/sleep", "1"
      ],
      namespaced: false
    })
    expect(sandboxAddressSpaceBytes).toBe(4 * 1024 ** 3)
  })

  it("runs unwrapped without setpriv, and keeps a PWD given in env", () => {
    const none: LaunchTools = { setpriv: undefined, prlimit: undefined, mount: undefined, ownDirMountPointExists: true, shell: "/bin/sh", namespaces: undefined, root: true, bwrap: undefined }
    expect(wrapCommand({ ...command, sandbox: "none" }, none)).toEqual({ file: "/bin/sleep", args: ["1"], namespaced: false })
    expect(wrapCommand({ ...command, env: { PWD: "/x" }, sandbox: "module-restricted" }, none)).toEqual({
      file: "/bin/sh",
      args: ["-c", "umask 077; exec \"$@\"", "sh", "/bin/sleep", "1"],
      namespaced: false
    })
  })

  it("puts every child first in its own PID namespace, under an init, inside setpriv --pdeathsig KILL", () => {
    expect(wrapCommand({ ...command, sandbox: "none" }, namespaced)).toEqual({
      file: "/usr/bin/setpriv",
      args: [
        "--pdeathsig", "KILL", "--",
        ...unshare,
        "/bin/sh", "-c", initScript("/usr/bin/env", "unset PWD; "), "corral-init",
        "/bin/sleep", "1"
      ],
      namespaced: true
    })
  })

  it("module-restricted as another user: its own dir is bound over /media, then the switch (no capabilities, pdeathsig again)", () => {
    const own = { user: { uid: 998, gid: 997 }, ownDir: "/data/work/m" }
    expect(wrapCommand({ ...command, sandbox: "module-restricted", ...own }, namespaced)).toEqual({
      file: "/usr/bin/setpriv",
      args: [
        "--pdeathsig", "KILL", "--no-new-privs", "--",
        ...unshare,
        "/bin/sh", "-c", "/usr/bin/mount --bind -- \"$0\" /media && cd /media && exec \"$@\"", "/data/work/m",
        "/usr/bin/setpriv", "--pdeathsig", "KILL", "--reuid=998", "--regid=997", "--clear-groups", "--inh-caps=-all",
        "--bounding-set=-all", "--",
        "/usr/bin/prlimit", "--nofile=1024:1024", `--as=${sandboxAddressSpaceBytes}`, "--",
        "/bin/sh", "-c", initScript("/usr/bin/env", "umask 077; unset PWD; "), "corral-init",
        "/bin/sleep", "1"
      ],
      namespaced: true
    })
  })

  it("module-isolated: bwrap builds the view as root and is the namespace's PID 1; the switch runs inside it, no init", () => {
    const bwrap = { bwrap: "/usr/bin/bwrap", systemView: ["--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin"], systemRoots: ["/usr"] }
    const own = { user: { uid: 998, gid: 997 }, ownDir: "/data/work/m", moduleDirs: ["/srv/modules/m", "/srv/modules/sdk"] }
    expect(wrapCommand({ ...command, sandbox: "module-isolated", ...own }, { ...namespaced, bwrap })).toEqual({
      file: "/usr/bin/setpriv",
      args: [
        "--pdeathsig", "KILL", "--no-new-privs", "--",
        ...unshare,
        "/usr/bin/bwrap", "--die-with-parent", "--unshare-ipc",
        "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin",
        "--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/tmp",
        "--perms", "0755", "--dir", "/srv", "--perms", "0755", "--dir", "/srv/modules",
        "--ro-bind", "/srv/modules/m", "/srv/modules/m", "--ro-bind", "/srv/modules/sdk", "/srv/modules/sdk",
        "--bind", "/data/work/m", "/media", "--chdir", "/media", "--",
        "/usr/bin/setpriv", "--pdeathsig", "KILL", "--reuid=998", "--regid=997", "--clear-groups", "--inh-caps=-all",
        "--bounding-set=-all", "--",
        "/usr/bin/prlimit", "--nofile=1024:1024", `--as=${sandboxAddressSpaceBytes}`, "--",
        "/bin/sh", "-c", "umask 077; unset PWD; exec \"$@\"", "sh",
        "/bin/sleep", "1"
      ],
      namespaced: true
    })
  })

  it("without namespaces the user switch joins the outer setpriv; a non-root host maps its own user", () => {
    expect(wrapCommand({ ...command, env: { PWD: "/x" }, sandbox: "module-restricted", user: { uid: 998, gid: 997 } }, groupsOnly).args.slice(0, 9))
      .toEqual(["--pdeathsig", "KILL", "--no-new-privs", "--reuid=998", "--regid=997", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--"])
    const user = { ...namespaced, namespaces: { unshare: "/usr/bin/unshare", env: "/usr/bin/env", userNamespace: true } }
    expect(wrapCommand({ ...command, sandbox: "none" }, user).args.slice(3, 10))
      .toEqual(["/usr/bin/unshare", "--user", "--map-current-user", "--pid", "--fork", "--kill-child", "--mount-proc"])
  })
})
