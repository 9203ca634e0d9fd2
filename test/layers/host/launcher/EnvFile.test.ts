import { describe, expect, it } from "@effect/vitest"
import { parseEnvFile } from "../../../../src/layers/host/launcher/EnvFile.js"

describe("env_file parsing", () => {
  it("reads KEY=VALUE lines, skipping blanks and comments, with an optional export and one pair of quotes stripped", () => {
    const text = "# secrets\r\n\n  API_KEY=abc=def\nexport QUOTED=\"two words\"\nSINGLE='x'\nEMPTY=\nKEEP=\"unbalanced\r\n"
    expect(parseEnvFile(text)).toEqual({
      env: { API_KEY: "abc=def", QUOTED: "two words", SINGLE: "x", EMPTY: "", KEEP: "\"unbalanced" }
    })
  })

  it("names a bad line by its number and never quotes it", () => {
    expect(parseEnvFile("A=1\nthis is hunter2\n")).toEqual({
      problem: "line 2: expected KEY=VALUE (KEY: letters, digits and _, not starting with a digit)"
    })
    expect(parseEnvFile("1BAD=hunter2")).toEqual({
      problem: "line 1: expected KEY=VALUE (KEY: letters, digits and _, not starting with a digit)"
    })
    expect(parseEnvFile("NUL=a\0hunter2")).toEqual({ problem: "line 1: the value of NUL contains a NUL byte" })
  })
})
