/**
 * ModulePool: the host's keep-alive connections to its modules, one small `node:http` pool per module
 * endpoint and launch.
 *
 * A module launch is known by its endpoint and the credential its calls carry (the per-launch token in
 * `Authorization`). A call with a new credential for an endpoint means the module was restarted there:
 * the old launch's pool is destroyed, so no later call is sent on a connection to the old process.
 * Calls without a credential (readiness and health probes) use the endpoint's current pool, and so do
 * late calls that still carry a replaced launch's credential (the host holds the module's socket, so the
 * endpoint stays the same across restarts): the new launch answers them 401, and they must not tear down
 * its pool.
 *
 * Idle sockets are bounded per endpoint in number (`maxIdleSocketsPerEndpoint`, at most the SDK's
 * default idle bound, so the module never has to close one the host still keeps) and in time: a module
 * announces its idle timeout (`Keep-Alive: timeout=N`) and the agent closes an idle socket one second
 * before that (Node's own rule), and after `idleSocketMs` at the latest.
 */
import * as Http from "node:http"

/** Sockets open at most per endpoint; more calls queue in the pool. */
export const defaultMaxSocketsPerEndpoint = 32

/** Idle sockets kept at most per endpoint (the Python SDK keeps up to 32 idle connections). */
export const defaultMaxIdleSocketsPerEndpoint = 16

/** An idle socket is closed after this long even when the module announces a longer timeout. */
export const defaultIdleSocketMs = 4_000

/** Endpoints remembered before pools with no socket left are swept. */
const sweepAbove = 64

/** Bounds of a module pool. */
export interface ModulePoolOptions {
  /** Sockets open at most per endpoint (default `defaultMaxSocketsPerEndpoint`). */
  readonly maxSocketsPerEndpoint?: number
  /** Idle sockets kept at most per endpoint (default `defaultMaxIdleSocketsPerEndpoint`, at most the socket bound). */
  readonly maxIdleSocketsPerEndpoint?: number
  /** Longest a socket is kept idle, in ms (default `defaultIdleSocketMs`). */
  readonly idleSocketMs?: number
}

/** The pool of one endpoint for one launch. */
interface Launch {
  /** The credential its calls carry; undefined until a call carries one. */
  credential: string | undefined
  readonly agent: Http.Agent
  /** Credentials of the endpoint's earlier launches (the last few): never a reason to replace this pool. */
  readonly retired: ReadonlyArray<string>
}

/** Earlier launches' credentials remembered per endpoint. */
const retiredKept = 8

/** Keep-alive pools per module endpoint; `destroy` closes every socket. */
export interface ModulePool {
  /** The agent for a call to `endpoint` carrying `credential` (a new credential retires the old launch's sockets). */
  readonly agentFor: (endpoint: string, credential: string | undefined) => Http.Agent
  /** Closes every socket of every pool. */
  readonly destroy: () => void
}

const hasSockets = (agent: Http.Agent): boolean =>
  [agent.sockets, agent.freeSockets, agent.requests].some((byName) => Object.values(byName).some((list) => (list?.length ?? 0) > 0))

/** Makes the host's module pools. */
export const makeModulePool = (options: ModulePoolOptions = {}): ModulePool => {
  const maxSockets = options.maxSocketsPerEndpoint ?? defaultMaxSocketsPerEndpoint
  const maxFreeSockets = Math.min(maxSockets, options.maxIdleSocketsPerEndpoint ?? defaultMaxIdleSocketsPerEndpoint)
  const timeout = options.idleSocketMs ?? defaultIdleSocketMs
  const launches = new Map<string, Launch>()

  const open = (endpoint: string, credential: string | undefined, retired: ReadonlyArray<string> = []): Launch => {
    if (launches.size >= sweepAbove) {
      for (const [key, launch] of launches) {
        if (!hasSockets(launch.agent)) {
          launch.agent.destroy()
          launches.delete(key)
        }
      }
    }
    // `timeout` also caps the module's announced idle time: Node keeps the smaller of the two.
    const agent = new Http.Agent({ keepAlive: true, maxSockets, maxFreeSockets, timeout, scheduling: "lifo" })
    const launch: Launch = { credential, agent, retired }
    launches.set(endpoint, launch)
    return launch
  }

  return {
    agentFor: (endpoint, credential) => {
      const current = launches.get(endpoint)
      if (current === undefined) return open(endpoint, credential).agent
      if (credential === undefined || credential === current.credential || current.retired.includes(credential)) return current.agent
      if (current.credential === undefined) {
        // The launch's first authenticated call (after its readiness probes): same process, same sockets.
        current.credential = credential
        return current.agent
      }
      // A restart: the old process's connections must never carry the new launch's calls.
      current.agent.destroy()
      return open(endpoint, credential, [current.credential, ...current.retired].slice(0, retiredKept)).agent
    },
    destroy: () => {
      for (const launch of launches.values()) launch.agent.destroy()
      launches.clear()
    }
  }
}
