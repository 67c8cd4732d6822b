"""What a new user meets on the canvas page: an uploaded blank scan is called blank (not "draw a
digit") and its preview stays; the old answer's model line goes; the main action looks like one;
the idle answer is not a dash; the review badge does not move the page."""

import io

import pytest
from PIL import Image

from tests.jobs.support import scans

pytestmark = pytest.mark.browser


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def upload(page, name: str, data: bytes) -> None:
    page.set_input_files("[data-testid=upload]", files=[
        {"name": name, "mimeType": "image/png", "buffer": data}
    ])  # fmt: skip


def test_blank_scan_is_called_blank_and_keeps_its_preview(page):
    [(name, data, label)] = scans(1, start=3)
    upload(page, name, data)
    page.locator("[data-testid=confidence]").filter(has_text="%").wait_for()
    assert page.locator("#model").inner_text().startswith("Model ")

    upload(page, "blank.png", png(Image.new("L", (120, 120), 245)))
    error = page.locator("#error")
    error.wait_for(state="visible")
    assert "blank" in error.inner_text().lower()
    assert "draw" not in error.inner_text().lower()
    assert page.locator("#preview").is_visible()
    assert page.locator("#model").inner_text() == ""
    assert page.locator("[data-testid=prediction]").inner_text() != str(label)


def test_upload_is_the_main_action_and_clear_the_secondary_one(page):
    colours = page.evaluate(
        """() => ["label[for=upload]", "#clear"].map(
             (s) => getComputedStyle(document.querySelector(s)).backgroundColor)"""
    )
    assert colours == ["rgb(17, 24, 39)", "rgb(255, 255, 255)"]


def test_idle_answer_is_not_a_dash_and_the_badge_keeps_its_place(page):
    idle = page.locator("[data-testid=prediction]").inner_text()
    assert idle not in {"–", "-", "—"}
    before = page.locator("#bars").bounding_box()["y"]
    page.evaluate("document.getElementById('review').hidden = false")
    assert page.locator("#bars").bounding_box()["y"] == before
