import { describe, expect, it } from "@effect/vitest"
import { sandboxAddressSpaceBytes, wrapCommand } from "../../../../src/layers/host/launcher/SandboxArgv.js"

describe("wrapCommand", () => {
  const tools = { setpriv: "/usr/bin/setpriv", prlimit: "/usr/bin/prlimit", shell: "/bin/sh" }
  const command = { executable: "/bin/sleep", args: ["1"], env: {} }

  it("wraps every child in setpriv --pdeathsig KILL, and nothing more for sandbox none", () => {
    expect(wrapCommand({ ...command, sandbox: "none" }, tools)).toEqual({
      file: "/usr/bin/setpriv",
      args: ["--pdeathsig", "KILL", "--", "/bin/sleep", "1"]
    })
  })

  it("adds no_new_privs, prlimit and a umask 077 shell for module-restricted", () => {
    expect(wrapCommand({ ...command, sandbox: "module-restricted" }, tools)).toEqual({
      file: "/usr/bin/setpriv",
      args: [
        "--pdeathsig", "KILL", "--no-new-privs", "--",
        "/usr/bin/prlimit", "--nofile=1024:1024", `--as=${sandboxAddressSpaceBytes}`, "--",
        "/bin/sh", "-c", "umask 077; unset PWD; exec \"$@\"", "sh",
        "/bin/sleep", "1"
      ]
    })
    expect(sandboxAddressSpaceBytes).toBe(4 * 1024 ** 3)
  })

  it("runs unwrapped without setpriv, and keeps a PWD given in env", () => {
    const none = { setpriv: undefined, prlimit: undefined, shell: "/bin/sh" }
    expect(wrapCommand({ ...command, sandbox: "none" }, none)).toEqual({ file: "/bin/sleep", args: ["1"] })
    expect(wrapCommand({ ...command, env: { PWD: "/x" }, sandbox: "module-restricted" }, none)).toEqual({
      file: "/bin/sh",
      args: ["-c", "umask 077; exec \"$@\"", "sh", "/bin/sleep", "1"]
    })
  })
})
