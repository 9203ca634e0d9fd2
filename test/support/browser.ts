/**
 * A headless Debian chromium driven by playwright-core, for the status page's browser tests: a fresh
 * profile directory per launch, removed with the scope. Chromium is a system package (`.ci/run`
 * installs it as root); where it is absent, `chromiumMissing` says why and the tests skip, saying so.
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { Effect } from "effect"
import type { Scope } from "effect"
import { chromium, type BrowserContext, type Page } from "playwright-core"

/** Where Debian's chromium package puts the browser. */
export const chromiumPath = "/usr/bin/chromium"

/** Why the browser tests cannot run here, or `undefined` when they can. */
export const chromiumMissing: string | undefined = Fs.existsSync(chromiumPath)
  ? undefined
  : `${chromiumPath} is missing (Debian package "chromium"; .ci/run installs it as root): the status page browser tests are skipped`

// No GPU, no QUIC, and none of the background traffic (updates, sync, first-run pages) a test must not make.
const chromiumArgs = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync"
]

/** Launches chromium on a fresh profile directory; the scope's end closes it and removes the profile. */
export const launchBrowser = (
  viewport: { readonly width: number; readonly height: number } = { width: 1100, height: 900 }
): Effect.Effect<BrowserContext, Error, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: async () => {
        const profile = Fs.mkdtempSync(Path.join(Os.tmpdir(), "corral-chromium-"))
        // playwright passes the profile as --user-data-dir itself (it refuses the flag in `args`).
        const context = await chromium.launchPersistentContext(profile, {
          executablePath: chromiumPath,
          headless: true,
          args: chromiumArgs,
          viewport,
          timeout: 20_000
        })
        context.setDefaultTimeout(10_000)
        return { context, profile }
      },
      catch: (cause) => new Error(`could not launch ${chromiumPath}: ${String(cause)}`)
    }),
    ({ profile, context }) =>
      Effect.promise(() => context.close().catch(() => undefined)).pipe(
        Effect.timeout("10 seconds"),
        Effect.ignore,
        Effect.andThen(Effect.sync(() => Fs.rmSync(profile, { recursive: true, force: true })))
      )
  ).pipe(Effect.map(({ context }) => context))

/** Collects every uncaught error of `page`'s scripts (a test asserts there were none). */
export const collectPageErrors = (page: Page): ReadonlyArray<string> => {
  const errors: Array<string> = []
  page.on("pageerror", (error) => errors.push(error.message))
  return errors
}
