/**
 * The status page in a real browser (Debian's chromium via playwright-core) against a real host on its
 * bundled default config (Dator and Arca): log in with the token, see both components ready, restart
 * Dator and watch it go through starting to ready without a reload, see a hook invocation arrive live,
 * log out, and log in again through a one-time link. Saves a screenshot under test-artifacts/.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { chromiumMissing, collectPageErrors, launchBrowser } from "../support/browser.js"
import { control, makeDataDir, removeDataDirs, startHost } from "../support/hostProcess.js"
import { recordShownPhases, waitForShownPhases } from "../support/pagePhases.js"

const screenshotPath = Path.resolve(import.meta.dirname, "../../test-artifacts/status-page.png")
const dator = '[data-component="middleware.dator"]'
const arca = '[data-component="middleware.arca"]'

/** A field of a JSON body, or a failed test naming it. */
const field = (body: unknown, name: string): unknown => {
  if (typeof body !== "object" || body === null || !(name in body)) throw new Error(`expected "${name}" in ${JSON.stringify(body)}`)
  return Object.entries(body).find(([key]) => key === name)?.[1]
}

afterAll(removeDataDirs)

describe("status page (in chromium, against a real host)", () => {
  if (chromiumMissing !== undefined) console.warn(`SKIPPED: ${chromiumMissing}`)

  it.scopedLive.skipIf(chromiumMissing !== undefined)(
    "logs in, shows both bundled components ready, shows Dator going through starting to ready after Restart without a reload, and takes a one-time link (a new tab logs in again)",
    () =>
      Effect.gen(function*() {
        // The host's modules and the browser start side by side: each takes a second or more.
        const [host, browser] = yield* Effect.all([startHost(makeDataDir()), launchBrowser()], { concurrency: 2 })
        const page = browser.pages()[0] ?? (yield* Effect.promise(() => browser.newPage()))
        const shown = yield* Effect.promise(() => recordShownPhases(page))
        const pageErrors = collectPageErrors(page)
        yield* Effect.promise(async () => {
          // Before a login: the form, and nothing about the components.
          await page.goto(host.url)
          await page.getByLabel("Control token").waitFor()
          expect(await page.locator("[data-component]").count()).toBe(0)

          await page.getByLabel("Control token").fill(host.token)
          await page.getByRole("button", { name: "Log in" }).click()
          await page.locator(`${dator}[data-phase="ready"]`).waitFor()
          await page.locator(`${arca}[data-phase="ready"]`).waitFor()
          const pidBefore = field((await control(host, "GET", "/v1/components/middleware.dator")).body, "pid")
          expect(await page.locator(dator).textContent()).toContain(String(pidBefore))
          await page.locator("#connection[data-state=live]").waitFor()

          // Restart, pressed on the page: the card shows starting, then ready, in the same document.
          await page.evaluate("window.__sameDocument = true")
          const mark = shown.length
          await page.getByRole("button", { name: "Restart middleware.dator" }).click()
          const phases = await waitForShownPhases(shown, mark, "middleware.dator", ["starting", "ready"], 15_000)
          console.log(`Dator's card showed: ${phases.join(" → ")}`)
          expect(await page.locator(dator).getAttribute("data-phase")).toBe("ready")
          expect(await page.evaluate("window.__sameDocument")).toBe(true)
          const pidAfter = field((await control(host, "GET", "/v1/components/middleware.dator")).body, "pid")
          expect(pidAfter).not.toBe(pidBefore)
          await page.locator(dator).getByText(String(pidAfter), { exact: true }).waitFor()

          // A hook run arrives live, with its steps.
          const invoked = await control(host, "POST", "/v1/hooks/ingress/invoke", { id: "page-1", hook: "ingress", subject: "alice", payload: { text: "hi" } })
          expect(invoked.status).toBe(200)
          const invocation = page.locator('#invocations > li[data-hook="ingress"]').first()
          await invocation.getByText("middleware.dator: allow").waitFor()
          await invocation.getByText("middleware.arca: allow").waitFor()

          await page.locator(dator).getByText("Log tail").click()
          await page.locator(`${dator} .log-text`).filter({ hasNotText: "Could not read" }).filter({ hasText: /\S/ }).waitFor()
          expect(await page.locator("#broker").textContent()).toContain("Accepting")
          await page.locator("#pressure").getByText("Open fds").waitFor()

          Fs.mkdirSync(Path.dirname(screenshotPath), { recursive: true })
          await page.screenshot({ path: screenshotPath, fullPage: true })
          console.log(`status page screenshot: ${screenshotPath}`)

          // Log out: the form again, and the cookie no longer opens the page.
          await page.getByRole("button", { name: "Log out" }).click()
          await page.getByLabel("Control token").waitFor()
          await page.reload()
          await page.getByLabel("Control token").waitFor()
          expect(await page.locator("[data-component]").count()).toBe(0)

          // The one-time link `corral open` prints logs the browser in by itself.
          const link = await control(host, "POST", "/v1/login-links")
          expect(link.status).toBe(201)
          // It lands on /#key=<page key>: the page keeps the key and takes it out of the address bar.
          await page.goto(String(field(link.body, "url")))
          await page.locator(`${dator}[data-phase="ready"]`).waitFor()
          await page.locator(`${arca}[data-phase="ready"]`).waitFor()
          expect(page.url()).toBe(`${host.url}/`)
          expect(await page.evaluate("sessionStorage.getItem('corral.pageKey')")).toMatch(/^[A-Za-z0-9_-]{43}$/)

          // A new tab has the cookie but not the key: it shows the login form.
          const tab = await page.context().newPage()
          await tab.goto(host.url)
          await tab.getByLabel("Control token").waitFor()
          expect(await tab.locator("[data-component]").count()).toBe(0)
          await tab.close()
        })
        expect(pageErrors).toEqual([])
      }),
    45_000
  )
})
