"""The canvas page in a real browser: digits drawn with the mouse are recognised.

Starts the real API (uvicorn, the default model) on a free port and drives Debian's Chromium
through Playwright. Digits are drawn as human-like polylines at several sizes and off-centre
positions; the page must show the right digit after the last stroke, with no button pressed.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

# Strokes in a unit box (x right, y down), roughly as people write them.
DIGITS: dict[int, list[list[tuple[float, float]]]] = {
    0: [[(0.5, 0.02), (0.22, 0.12), (0.06, 0.4), (0.1, 0.75), (0.35, 0.97), (0.65, 0.97),
         (0.9, 0.75), (0.94, 0.4), (0.78, 0.12), (0.5, 0.02), (0.42, 0.06)]],
    1: [[(0.3, 0.2), (0.55, 0.02), (0.55, 0.98)]],
    2: [[(0.1, 0.28), (0.25, 0.08), (0.5, 0.02), (0.75, 0.1), (0.85, 0.3), (0.72, 0.52),
         (0.42, 0.76), (0.08, 0.97), (0.92, 0.97)]],
    3: [[(0.12, 0.12), (0.45, 0.02), (0.8, 0.12), (0.82, 0.32), (0.45, 0.48), (0.85, 0.62),
         (0.88, 0.84), (0.55, 0.98), (0.1, 0.88)]],
    4: [[(0.6, 0.02), (0.06, 0.66), (0.95, 0.66)], [(0.68, 0.3), (0.68, 0.98)]],
    5: [[(0.85, 0.03), (0.25, 0.03), (0.18, 0.45), (0.55, 0.38), (0.85, 0.55), (0.85, 0.8),
         (0.55, 0.97), (0.12, 0.88)]],
    7: [[(0.05, 0.04), (0.95, 0.04), (0.45, 0.98)]],
}

# (digit, height as a share of the canvas, top-left corner of the digit's box as shares).
DRAWINGS = [
    (0, 0.7, (0.25, 0.15)),
    (1, 0.45, (0.1, 0.08)),
    (2, 0.8, (0.2, 0.1)),
    (3, 0.4, (0.52, 0.5)),
    (4, 0.6, (0.05, 0.35)),
    (5, 0.55, (0.45, 0.05)),
    (7, 0.35, (0.1, 0.6)),
]


def draw(page, strokes, height: float, corner: tuple[float, float]) -> None:
    """Draw strokes with the mouse; the digit's box is `height` of the canvas, 0.6 as wide."""
    box = page.get_by_test_id("canvas").bounding_box()
    side = box["height"]
    left = box["x"] + corner[0] * box["width"]
    top = box["y"] + corner[1] * side
    width = 0.6 * height * side
    for stroke in strokes:
        points = [(left + x * width, top + y * height * side) for x, y in stroke]
        page.mouse.move(*points[0])
        page.mouse.down()
        for point in points[1:]:
            page.mouse.move(*point, steps=6)
        if stroke is strokes[-1]:
            with page.expect_response("**/predict-drawing") as answer:
                page.mouse.up()
            assert answer.value.status == 200
        else:
            page.mouse.up()


def shown_prediction(page) -> str:
    page.wait_for_selector("#result[data-state=done]")
    return page.get_by_test_id("prediction").inner_text().strip()


@pytest.mark.parametrize(
    ("digit", "height", "corner"), DRAWINGS, ids=[f"digit{d}" for d, *_ in DRAWINGS]
)
def test_drawn_digit_is_recognised_after_the_last_stroke(page, digit, height, corner):
    draw(page, DIGITS[digit], height, corner)
    assert shown_prediction(page) == str(digit)
    bars = page.get_by_test_id("bars").locator("li")
    assert bars.count() == 10
    assert page.locator("[aria-live=polite]").inner_text().startswith(f"Predicted {digit}")


@pytest.mark.parametrize(
    "digits", [(1, 2), (7, 0, 5), (3, 4)], ids=lambda d: "".join(map(str, d))
)
def test_digits_drawn_side_by_side_are_read_as_a_string(page, digits):
    """Several digits on one canvas: the string, and one confidence per digit."""
    width = 0.8 / len(digits)  # share of the canvas width for each digit
    for k, digit in enumerate(digits):
        draw(page, DIGITS[digit], 0.5, (0.06 + k * width, 0.22))
    expected = "".join(map(str, digits))
    page.wait_for_function(
        "n => document.querySelectorAll('[data-testid=digits] li').length === n", arg=len(digits)
    )
    assert shown_prediction(page) == expected
    items = page.get_by_test_id("digits").locator("li")
    for k, digit in enumerate(digits):
        text = items.nth(k).inner_text()
        assert text.startswith(str(digit)) and text.strip().endswith("%")
    assert page.locator("[aria-live=polite]").inner_text().startswith(f"Predicted {expected}")


def test_clear_empties_the_canvas_and_the_answer(page):
    draw(page, DIGITS[7], 0.6, (0.2, 0.2))
    assert shown_prediction(page) == "7"
    page.get_by_test_id("clear").click()
    assert page.get_by_test_id("prediction").inner_text().strip() == "?"
    # A cleared canvas holds no ink: its pixels are all transparent again.
    ink = page.evaluate(
        "() => { const c = document.querySelector('[data-testid=canvas]');"
        " return c.getContext('2d').getImageData(0, 0, c.width, c.height).data"
        ".reduce((sum, v, i) => i % 4 === 3 ? sum + v : sum, 0); }"
    )
    assert ink == 0
    draw(page, DIGITS[1], 0.6, (0.4, 0.2))
    assert shown_prediction(page) == "1"


def test_uploaded_scan_is_recognised(page, tmp_path):
    from PIL import Image, ImageDraw

    scan = Image.new("L", (200, 260), 235)
    pen = ImageDraw.Draw(scan)
    pen.line([(40, 30), (170, 30), (90, 240)], fill=20, width=14, joint="curve")
    path = tmp_path / "seven.png"
    scan.save(path)
    with page.expect_response("**/predict") as answer:
        page.get_by_test_id("upload").set_input_files(str(path))
    assert answer.value.status == 200
    assert shown_prediction(page) == "7"


def test_page_fits_a_phone_screen(browser, server_url):
    """Phone width: nothing overflows sideways, and touch drags draw instead of scrolling."""
    context = browser.new_context(viewport={"width": 375, "height": 740}, has_touch=True)
    page = context.new_page()
    try:
        page.goto(server_url + "/")
        canvas = page.get_by_test_id("canvas").bounding_box()
        assert canvas["x"] >= 0 and canvas["x"] + canvas["width"] <= 375
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        touch = page.get_by_test_id("canvas").evaluate("c => getComputedStyle(c).touchAction")
        assert touch == "none"
    finally:
        context.close()
