import { describe, expect, it } from "vitest"
import { isSecretKey, redactedMarker, redactSecrets } from "../../../src/services/host/Redaction.js"

describe("Redaction", () => {
  it("reads secret-looking keys by their words", () => {
    for (const key of ["API_KEY", "dbPassword", "auth_token", "SECRET", "client-secret", "SESSION_COOKIE", "pwd"]) {
      expect(isSecretKey(key), key).toBe(true)
    }
    for (const key of ["keep", "monkey", "max_bytes", "PATH", "HOME", "tokenizer_model", "authorship"]) {
      expect(isSecretKey(key), key).toBe(false)
    }
  })

  it("replaces secret values anywhere, leaving the rest and the input untouched", () => {
    const config = { components: { web: { launch: { env: { API_KEY: "s3cret", PATH: "/usr/bin" } } } }, modules: { m: { db: { password: 7, hosts: ["a"] } } } }
    expect(redactSecrets(config)).toEqual({
      components: { web: { launch: { env: { API_KEY: redactedMarker, PATH: "/usr/bin" } } } },
      modules: { m: { db: { password: redactedMarker, hosts: ["a"] } } }
    })
    expect(config.components.web.launch.env.API_KEY).toBe("s3cret")
  })
})
