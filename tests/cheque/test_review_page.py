"""Review shows the whole cheque with the amount box outlined: the image route says where each
field was read (`X-Field-Boxes`) and the review page (headless Chromium) draws it over the page."""

from __future__ import annotations

import json
import os
import threading
import time

import httpx
import pytest
import uvicorn

from api.main import create_app
from devtools import services
from recognition.review import ReviewPolicy
from tests.review.conftest import as_, process, submit
from training.cheque_eval import box_matches

pytestmark = pytest.mark.slow


def _submit_cheques(client_post, cheques) -> str:
    files = [("files", (f"cheque{i}.jpg", c.image, "image/jpeg")) for i, c in enumerate(cheques)]
    response = client_post("/jobs?layout=cheque", files=files)
    assert response.status_code == 202, response.text
    return response.json()["id"]


def test_image_route_gives_the_amount_box(client, settings, recognizer, cheques):
    job_id = _submit_cheques(lambda *a, **k: client.post(*a, **k, headers=as_("submitter")),
                             cheques[:3])  # fmt: skip
    process(settings, recognizer, job_id, ReviewPolicy(threshold=1.0))
    items = client.get("/review", headers=as_("r0")).json()["items"]
    assert len(items) == 3
    for item in items:
        response = client.get(item["image_url"], headers=as_("r0"))
        assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
        boxes = json.loads(response.headers["X-Field-Boxes"])
        assert set(boxes) == {"amount"}
        cheque = cheques[int(item["filename"].removeprefix("cheque").split(".")[0])]
        amount = boxes["amount"]
        # The box outlined is the cheque's amount box (page pixels), with the field's own flag.
        assert box_matches(amount, cheque.box) and amount["width"] < 1.3 * cheque.box[2]
        assert isinstance(amount["needs_review"], bool)


def test_digit_jobs_have_no_field_boxes(client, settings, recognizer):
    job_id = submit(client, 1)
    process(settings, recognizer, job_id, ReviewPolicy(threshold=1.0))
    item = client.get("/review", headers=as_("r0")).json()["items"][0]
    image = client.get(item["image_url"], headers=as_("r0"))
    assert json.loads(image.headers["X-Field-Boxes"]) == {}


@pytest.fixture
def platform(settings, recognizer, cheques):
    """The real API (uvicorn, in a thread; open mode) with a cheque job whose amount needs
    review."""
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=services.free_port(),
                       log_level="warning")
    )  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.config.port}"
    deadline = time.monotonic() + 60
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the API did not start"
    try:
        job_id = _submit_cheques(
            lambda path, **k: httpx.post(f"{url}{path}", **k, timeout=60), cheques[:1]
        )
        process(settings, recognizer, job_id, ReviewPolicy(threshold=1.0))
        yield url, cheques[0]
    finally:
        server.should_exit = True
        thread.join(10)


def test_review_page_outlines_the_amount_box_on_the_whole_page(browser, platform):
    url, cheque = platform
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    try:
        page.goto(f"{url}/review/page")
        page.wait_for_selector("#boxes rect.field", timeout=15_000)
        width, height = cheque.spec.template.size
        dpi = cheque.spec.dpi
        # The whole page is shown (the SVG's viewBox is the scan's size), not a crop of it.
        assert page.get_attribute("#boxes", "viewBox") == (
            f"0 0 {round(width * dpi)} {round(height * dpi)}"
        )
        field = page.locator("#boxes rect.field")
        assert field.count() == 1 and field.get_attribute("data-field") == "amount"
        x, _, w, _ = cheque.box
        assert abs(float(field.get_attribute("x")) - x) < 0.1 * w
        assert page.locator("#boxes text.field-name").text_content() == "amount"
        # The digits read inside it are outlined too, within the amount box.
        digits = page.locator("#boxes rect:not(.field)")
        assert digits.count() >= 1
        assert all(float(digits.nth(i).get_attribute("x")) >= x - 0.05 * w
                   for i in range(digits.count()))  # fmt: skip
        if os.environ.get("CHEQUE_REVIEW_SCREENSHOT"):  # docs/cheques/review.png is taken here
            page.screenshot(path=os.environ["CHEQUE_REVIEW_SCREENSHOT"])
    finally:
        page.close()
