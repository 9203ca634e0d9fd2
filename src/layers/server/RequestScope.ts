/**
 * The `Scope` a mounted app's request runs in, made real only when the app uses it. The platform opens
 * a scope for every request and closes it after the response; most requests (a hello, a JSON answer)
 * never add a finalizer, so this one costs an object until the first `addFinalizer` or `fork`, and
 * closing an unused one is free. Once used it is an ordinary `Scope.make()` scope.
 */
import { Effect, ExecutionStrategy, type Exit, GlobalValue, Pipeable, Scope } from "effect"

// The set `HttpApp.ejectDefaultScopeClose` adds to (a global value of @effect/platform): a scope in it is
// closed by whoever ejected it (a streamed body, say), not when the request ends.
const ejectedScopes = GlobalValue.globalValue("@effect/platform/HttpApp/ejectedScopes", () => new WeakSet<Scope.Scope>())

/** A request's scope: lazily backed by a real one; `closeAfterRequest` closes it unless it was ejected. */
export class RequestScope extends Pipeable.Class() implements Scope.CloseableScope {
  readonly [Scope.ScopeTypeId]: Scope.ScopeTypeId = Scope.ScopeTypeId
  readonly [Scope.CloseableScopeTypeId]: Scope.CloseableScopeTypeId = Scope.CloseableScopeTypeId
  readonly strategy: ExecutionStrategy.ExecutionStrategy = ExecutionStrategy.sequential
  private real: Scope.CloseableScope | undefined
  private closedWith: Exit.Exit<unknown, unknown> | undefined

  /** Whether anything was added to it (only then does closing it run anything). */
  get used(): boolean {
    return this.real !== undefined
  }

  private get backing(): Effect.Effect<Scope.CloseableScope> {
    return Effect.suspend(() => {
      if (this.real !== undefined) return Effect.succeed(this.real)
      return Effect.tap(Scope.make(this.strategy), (scope) => {
        this.real = scope
        // Closed before it was used: a late finalizer runs at once, as on a closed scope.
        return this.closedWith === undefined ? Effect.void : Scope.close(scope, this.closedWith)
      })
    })
  }

  /** Called by Effect's `Scope.fork`. */
  fork(strategy: ExecutionStrategy.ExecutionStrategy): Effect.Effect<Scope.CloseableScope> {
    return Effect.flatMap(this.backing, (scope) => Scope.fork(scope, strategy))
  }

  /** Called by Effect's `Scope.addFinalizer`/`addFinalizerExit`. */
  addFinalizer(finalizer: Scope.Scope.Finalizer): Effect.Effect<void> {
    return Effect.flatMap(this.backing, (scope) => Scope.addFinalizerExit(scope, finalizer))
  }

  /** Called by Effect's `Scope.close`. */
  close(exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (this.closedWith === undefined) this.closedWith = exit
      return this.real === undefined ? Effect.void : Scope.close(this.real, exit)
    })
  }

  /** The close the platform does when a request ends: nothing if unused or ejected. */
  closeAfterRequest(exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> | undefined {
    if (this.real === undefined) {
      this.closedWith ??= exit
      return undefined
    }
    return ejectedScopes.has(this) ? undefined : this.close(exit)
  }
}
