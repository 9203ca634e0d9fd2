/**
 * ForwardedJson: the bytes a value arrived as, for values the host only forwards. The control API
 * records the request body of an envelope it decoded unchanged; the module client sends those bytes
 * instead of encoding the same object again (`JSON.stringify` per step). Keyed weakly by the object
 * itself, so a `modify` step's new envelope (a new object) is always encoded afresh.
 */

const known = new WeakMap<object, Uint8Array>()

/**
 * Records that `bytes` is a JSON encoding of `value`. Only call it when decoding `bytes` gives back
 * exactly `value`'s keys and values (no key added, dropped or transformed).
 */
export const rememberJson = (value: object, bytes: Uint8Array): void => {
  known.set(value, bytes)
}

/** The bytes `value` arrived as, when recorded; otherwise `undefined` (encode it). */
export const forwardedJson = (value: unknown): Uint8Array | undefined =>
  typeof value === "object" && value !== null ? known.get(value) : undefined
