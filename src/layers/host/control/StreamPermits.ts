/**
 * The permits of the control API's long-lived answers (event streams, log follows): at most a share of the
 * server's connections, so streams never crowd out operators. A permit outlives the handler that takes it
 * (the answer streams on after the handler returns), so it is tied to the response's life, not a fiber's.
 */
import type { HttpServerRequest } from "@effect/platform"
import { NodeHttpServerRequest } from "@effect/platform-node"

/**
 * Long-lived answers open at once. Counted outside any fiber: a permit is taken when the answer starts and
 * given back when its response closes, however that happens (done, client gone, drain).
 */
export class StreamPermits {
  private held = 0
  constructor(readonly max: number) {}

  /** Takes a permit until `request`'s response closes; false (nothing taken) when none is free. */
  holdUntilClosed(request: HttpServerRequest.HttpServerRequest): boolean {
    if (this.held >= this.max) return false
    const response = NodeHttpServerRequest.toServerResponse(request)
    this.held++
    let released = false
    const release = () => {
      if (released) return
      released = true
      this.held--
    }
    if (response.destroyed) release()
    else response.once("close", release)
    return true
  }
}
