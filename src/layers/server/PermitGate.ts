/**
 * Written by hand: Effect's `Semaphore` has no synchronous try-acquire, and the fast 503 must be
 * decided in the socket callback before any fiber exists. Only event-loop callbacks (accept,
 * request, fiber observers) touch it; request fibers never see it.
 */
export class PermitGate {
  private held = 0

  constructor(readonly capacity: number) {}

  /** Takes a permit if one is free, without waiting. */
  tryAcquire(): boolean {
    if (this.held >= this.capacity) return false
    this.held++
    return true
  }

  release(): void {
    if (this.held > 0) this.held--
  }

  get inUse(): number {
    return this.held
  }
}
