/**
 * The status page against a stand-in API (test/support/statusPageStub.ts) serving data a real host
 * would not produce: markup in errors, names and logs must show as text and never run; a refused
 * action shows the host's message; the page sends its CSRF header and never a token; a narrow window
 * needs no sideways scrolling.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { chromiumMissing, collectPageErrors, launchBrowser } from "../support/browser.js"
import { recordShownPhases, waitForShownPhases } from "../support/pagePhases.js"
import { startStatusPageStub, stubPageKey } from "../support/statusPageStub.js"

const hostileError = `<img src=x onerror="window.__pwned = 1">module exited with code 1`
const hostileDescription = `<script>window.__pwned = 2</script>validates`
const startedAt = new Date(Date.now() - 65_000).toISOString()

const view = (id: string, overrides: Record<string, unknown>): Record<string, unknown> => ({
  id,
  kind: "http_local_json",
  phase: "ready",
  pid: 111,
  endpoint: "http://127.0.0.1:9",
  restarts: { used: 1, left: 4 },
  next_attempt_at: null,
  last_readiness: null,
  last_health: { at: startedAt, ok: true, detail: "ok" },
  last_error: null,
  report: null,
  recent_log: [],
  isolation: "process-group-only",
  started_at: startedAt,
  depends_on: [],
  ...overrides
})

const stubData = {
  components: [
    view("middleware.arca", { phase: "failed", pid: null, started_at: null, depends_on: ["middleware.dator"], last_error: hostileError }),
    view("middleware.dator", {
      report: {
        name: "dator",
        description: hostileDescription,
        capabilities: ["validate"],
        middleware_contract_version: "1",
        host_api_version: "1",
        output_contracts: []
      }
    })
  ],
  events: [{
    id: 7,
    event: {
      _tag: "invocation",
      at: startedAt,
      hook: "ingress",
      envelope_id: "env-1",
      subject: "<b>alice</b>",
      decision: { decision: "deny", reason: "<i>bad</i>" },
      steps: [{ component: "middleware.dator", outcome: "deny", duration_ms: 3 }],
      duration_ms: 4
    }
  }],
  broker: {
    accepting: true,
    demoted: false,
    connections_open: 0,
    counters: { hellos: 1, launches: 1 },
    backends: [{ service: "<svg onload=\"window.__pwned = 3\">", version: "1.0.0", state: "ready", pid: 5, started_at: startedAt, last_hello_at: null, last_error: null }]
  },
  log: "line <b>one</b>\nline two\n"
}

describe("status page (against a stand-in API)", () => {
  if (chromiumMissing !== undefined) console.warn(`SKIPPED: ${chromiumMissing}`)

  it.scopedLive.skipIf(chromiumMissing !== undefined)(
    "shows hostile text as text, reports a refused action, sends its page key and no token, and fits a narrow window",
    () =>
      Effect.gen(function*() {
        const stub = yield* startStatusPageStub(stubData)
        const browser = yield* launchBrowser({ width: 360, height: 800 })
        const page = browser.pages()[0] ?? (yield* Effect.promise(() => browser.newPage()))
        const shown = yield* Effect.promise(() => recordShownPhases(page))
        const pageErrors = collectPageErrors(page)
        yield* Effect.promise(async () => {
          await page.goto(stub.url)
          await page.getByLabel("Control token").fill("not-the-token")
          await page.getByRole("button", { name: "Log in" }).click()
          await page.getByText("That token was not accepted.").waitFor()
          expect(await page.locator("[data-component]").count()).toBe(0)

          await page.getByLabel("Control token").fill(stub.token)
          await page.getByRole("button", { name: "Log in" }).click()
          const arca = page.locator('[data-component="middleware.arca"]')
          const dator = page.locator('[data-component="middleware.dator"]')
          await dator.waitFor()
          expect(await arca.getAttribute("data-phase")).toBe("failed")
          expect(await dator.getAttribute("data-phase")).toBe("ready")

          // Markup from the host is text: the exact characters show, and no element was made from it.
          expect(await arca.locator(".last-error pre").textContent()).toBe(hostileError)
          expect(await dator.locator(".report").textContent()).toContain(hostileDescription)
          await page.getByText("<b>alice</b>").waitFor()
          await page.getByText("<svg onload=\"window.__pwned = 3\">").waitFor()
          expect(await page.locator("main img, main svg, main b, main i, main script").count()).toBe(0)
          expect(await page.evaluate("window.__pwned")).toBeUndefined()
          expect(await arca.textContent()).toContain("middleware.dator") // depends_on
          expect(await dator.textContent()).toContain("1 used, 4 left")

          await dator.getByText("Log tail").click()
          await dator.getByText("line <b>one</b>").waitFor()

          await arca.getByRole("button", { name: "Stop middleware.arca" }).click()
          await page.getByText("middleware.arca: stop refused: cannot stop <b>now</b>").waitFor()

          await page.evaluate("window.__sameDocument = true")
          const mark = shown.length
          await dator.getByRole("button", { name: "Restart middleware.dator" }).click()
          expect(await waitForShownPhases(shown, mark, "middleware.dator", ["stopping", "starting", "ready"], 5_000))
            .toEqual(["ready", "stopping", "starting", "ready"])
          expect(await dator.getAttribute("data-phase")).toBe("ready")
          expect(await page.evaluate("window.__sameDocument")).toBe(true)
          expect(await dator.textContent()).toContain("4242")

          // A phone-width window scrolls only down.
          expect(await page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")).toBe(true)
        })

        const apiCalls = stub.requests.filter((r) => r.path.startsWith("/v1/"))
        expect(apiCalls.filter((r) => r.headers.authorization !== undefined)).toEqual([])
        const posts = apiCalls.filter((r) => r.method !== "GET")
        expect(posts.map((r) => `${r.method} ${r.path}`)).toEqual([
          "POST /v1/session",
          "POST /v1/session",
          "POST /v1/components/middleware.arca/stop",
          "POST /v1/components/middleware.dator/restart"
        ])
        // After the login every call carries the session's page key: the header, or the query on the event stream.
        const lastLogin = apiCalls.map((r) => r.path).lastIndexOf("/v1/session")
        const afterLogin = apiCalls.slice(lastLogin + 1)
        expect(afterLogin.length).toBeGreaterThan(3)
        expect(afterLogin.filter((r) => r.headers["x-corral-page"] !== stubPageKey && r.path !== `/v1/events?page_key=${stubPageKey}`))
          .toEqual([])
        expect(afterLogin.some((r) => r.path === `/v1/events?page_key=${stubPageKey}`)).toBe(true)
        expect(apiCalls.some((r) => r.path === "/v1/components/middleware.dator/logs?tail=50")).toBe(true)
        expect(pageErrors).toEqual([])
      }),
    20_000
  )
})
