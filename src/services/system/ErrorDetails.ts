/** Reading what a thrown value says: its message and its errno-style `code`. */

/** The message of a thrown value. */
export const errorText = (error: unknown): string => (error instanceof Error ? error.message : String(error))

/** The `code` of a Node error (`ENOENT`, `EMFILE`…), or `undefined`. */
export const errorCode = (error: unknown): string | undefined =>
  typeof error === "object" && error !== null && "code" in error && typeof error.code === "string" ? error.code : undefined
