/**
 * Records, in the page itself, every value a component card's `data-phase` attribute takes, so a test
 * sees short phases (a `starting` that lasts 100 ms) that polling from the test process would miss
 * (playwright's own `waitFor` polls on animation frames, which a headless page may not paint).
 */
import type { Page } from "playwright-core"

/** One phase a card showed, in the order the page showed them. */
export interface ShownPhase {
  readonly component: string
  readonly phase: string
}

// Runs in the page before its own scripts: a MutationObserver on the whole document, reporting each
// change of a card's data-phase to the test through an exposed binding.
const observer = `
new MutationObserver((records) => {
  for (const record of records) {
    const card = record.target
    if (record.type === "attributes" && card.matches("article[data-component]")) {
      window.__corralPhaseShown(card.getAttribute("data-component"), card.getAttribute("data-phase"))
    }
  }
}).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-phase"] })
`

/** Starts recording on `page` (call before its first navigation); returns the live list of shown phases. */
export const recordShownPhases = async (page: Page): Promise<ReadonlyArray<ShownPhase>> => {
  const shown: Array<ShownPhase> = []
  await page.exposeFunction("__corralPhaseShown", (component: unknown, phase: unknown) => {
    shown.push({ component: String(component), phase: String(phase) })
  })
  await page.addInitScript(observer)
  return shown
}

/** The phases `component` showed, with consecutive repeats folded (a re-render of the same phase). */
export const phasesOf = (shown: ReadonlyArray<ShownPhase>, component: string): ReadonlyArray<string> =>
  shown
    .filter((entry) => entry.component === component)
    .map((entry) => entry.phase)
    .filter((phase, index, all) => index === 0 || all[index - 1] !== phase)

/**
 * Waits (at most `timeoutMs`) until `component`'s phases shown after `mark` (an earlier `shown.length`)
 * include every one of `phases` in that order and end with the last of them; returns those phases.
 */
export const waitForShownPhases = async (
  shown: ReadonlyArray<ShownPhase>,
  mark: number,
  component: string,
  phases: ReadonlyArray<string>,
  timeoutMs: number
): Promise<ReadonlyArray<string>> => {
  const reached = (seen: ReadonlyArray<string>): boolean => {
    let next = 0
    for (const phase of seen) if (phase === phases[next]) next++
    return next === phases.length && seen[seen.length - 1] === phases[phases.length - 1]
  }
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const seen = phasesOf(shown.slice(mark), component)
    if (reached(seen)) return seen
    if (Date.now() > deadline) {
      throw new Error(`${component} did not show ${phases.join(" → ")} within ${timeoutMs} ms; it showed: ${seen.join(" → ") || "nothing"}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}
