// A seeded pseudo-random source (mulberry32) for the fault campaign: the same --seed picks the same
// faults in the same order, so a run's choices can be repeated (its timing, on a real machine, cannot).

/** `{ next() ∈ [0,1), int(n) ∈ [0,n), pick(array), bytes(n) }` from a 32-bit `seed`. */
export const seeded = (seed) => {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const int = (n) => Math.floor(next() * n)
  return {
    next,
    int,
    pick: (array) => array[int(array.length)],
    bytes: (n) => Buffer.from(Array.from({ length: n }, () => int(256)))
  }
}
