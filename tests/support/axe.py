"""Accessibility checks for the browser tests: an axe-core audit (the npm package, installed into
.cache/ by scripts/setup-test-env.sh) and keyboard helpers (Tab walks, visible focus).

    violations = audit(page)          # [] when the page meets WCAG 2.1 A and AA as axe sees it
    assert not violations, describe(violations)
"""

from __future__ import annotations

import os

import pytest

from devtools.services import REPO, SETUP_HINT

AXE_JS = REPO / ".cache/axe-core/node_modules/axe-core/axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def require_axe() -> None:
    if AXE_JS.exists():
        return
    message = f"{AXE_JS.relative_to(REPO)} not found (npm axe-core); {SETUP_HINT}"
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def audit(page) -> list[dict]:
    """axe-core's WCAG 2.1 A/AA violations on the page as it is now. The library is evaluated
    in the page (not added as an inline <script>, which a strict CSP would block)."""
    require_axe()
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(AXE_JS.read_text(encoding="utf-8"))
    return page.evaluate(
        """async (tags) => {
          const result = await axe.run(document, { runOnly: { type: "tag", values: tags } });
          return result.violations.map((v) => ({
            id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map((n) => n.target.join(" ") + " — " + n.failureSummary),
          }));
        }""",
        WCAG_TAGS,
    )


def describe(violations: list[dict]) -> str:
    lines = []
    for v in violations:
        lines.append(f"[{v['impact']}] {v['id']}: {v['help']}")
        lines += [f"    {node}" for node in v["nodes"][:5]]
    return "\n".join(lines)


# Where the keyboard focus is and whether a sighted user can see it: the focused element, or the
# label that stands for a visually hidden input, must be on screen and draw an outline or shadow.
FOCUS_STATE = """() => {
  const el = document.activeElement;
  if (!el || el === document.body || el === document.documentElement) return null;
  const shows = (node) => {
    const box = node.getBoundingClientRect();
    if (box.width < 4 || box.height < 4) return false;
    const style = getComputedStyle(node);
    const outline = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0;
    return outline || style.boxShadow !== "none";
  };
  const candidates = [el, ...(el.labels || [])];
  const name = el.getAttribute("aria-label") || el.id || (el.textContent || "").trim().slice(0, 40);
  return { tag: el.tagName.toLowerCase(), id: el.id, testid: el.dataset.testid || "", name,
           visible: candidates.some(shows) };
}"""


def focus_state(page) -> dict | None:
    return page.evaluate(FOCUS_STATE)


def tab_walk(page, limit: int = 60) -> list[dict]:
    """Press Tab from the top of the page until focus leaves the page or comes round again; the
    focus state after each press."""
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.evaluate("window.scrollTo(0, 0)")
    seen, states = set(), []
    for _ in range(limit):
        page.keyboard.press("Tab")
        state = focus_state(page)
        if state is None:
            break
        key = page.evaluate(
            "() => { const e = document.activeElement; e.dataset.walk ??= String(Math.random());"
            " return e.dataset.walk; }"
        )
        if key in seen:
            break
        seen.add(key)
        states.append(state)
    return states


def invisible_focus(states: list[dict]) -> list[dict]:
    return [s for s in states if not s["visible"]]
