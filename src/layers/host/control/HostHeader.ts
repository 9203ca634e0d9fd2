/**
 * The DNS-rebinding guard of the control API: a browser page on `evil.example`, whose name an attacker
 * re-points at 127.0.0.1, reaches the loopback server as the same origin as itself, and its requests say
 * `Host: evil.example:<port>`. Only names that cannot be re-pointed are served: `localhost` and loopback
 * addresses. The port is not checked, so an SSH tunnel (`localhost:9000` → the host's port) still works.
 */
import { isLoopbackHost } from "../../../services/host/HostConfig.js"

/** The host name of a `Host` header (`127.0.0.1:41234` → `127.0.0.1`, `[::1]:80` → `::1`), lower-cased. */
export const hostNameOf = (header: string): string => {
  const value = header.trim().toLowerCase()
  if (value.startsWith("[")) {
    const close = value.indexOf("]")
    return close === -1 ? value : value.slice(1, close)
  }
  const colon = value.lastIndexOf(":")
  return colon === -1 ? value : value.slice(0, colon)
}

/**
 * Whether a request's `Host` header names this machine's loopback interface. A request without one is
 * let through: every browser sends it, so only a non-browser client (HTTP/1.0) leaves it out.
 */
export const isLoopbackHostHeader = (header: string | ReadonlyArray<string> | undefined): boolean => {
  const value = typeof header === "string" ? header : header?.[0]
  return value === undefined || isLoopbackHost(hostNameOf(value))
}

/** The error code and message of a refused `Host`. */
export const badHost = {
  error: "bad_host",
  message: "the Host header must be localhost or a loopback address (another name pointing at 127.0.0.1 is how " +
    "DNS rebinding reaches a loopback server): use the URL in run/control.json"
} as const
