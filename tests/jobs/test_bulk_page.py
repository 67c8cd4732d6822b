"""`digitflow run` on the embedded defaults, driven through the bulk upload page in Chromium:
drop files, watch the job finish, browse and filter the results, the same by keyboard alone
(with an axe-core audit of each state); then Ctrl-C stops it all. The tests run in file order:
the first one sees an empty install."""

import base64
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from devtools.services import free_port
from tests.jobs.support import MODEL_DIR, REPO, scans
from tests.support.axe import audit, describe, invisible_focus, tab_walk

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def platform_url(tmp_path_factory):
    """`digitflow run` (migrations, API, worker with beat) in a temporary data directory."""
    data = tmp_path_factory.mktemp("var")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env |= {"DATA_DIR": str(data), "MODEL_DIR": str(MODEL_DIR)}
    log = data / "run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "digitflow.cli", "run", "--port", str(port)],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url + "/ready", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.2)
    yield url
    proc.send_signal(signal.SIGINT)  # Ctrl-C
    try:
        code = proc.wait(40)
    except subprocess.TimeoutExpired as exc:
        os.killpg(proc.pid, signal.SIGKILL)
        tail = log.read_text()[-3000:]
        raise AssertionError(f"digitflow run did not stop on Ctrl-C:\n{tail}") from exc
    assert code == 0, log.read_text()[-3000:]


FINISHED = "[data-testid=status][data-finished=true]"


def test_empty_install_says_no_jobs_yet(browser, platform_url):
    page = browser.new_page()
    try:
        page.goto(platform_url + "/bulk")
        state = page.locator("[data-testid=recent-state]")
        state.filter(has_text="No jobs yet").wait_for(timeout=10_000)
        assert page.locator("[data-testid=recent] li").count() == 0
        assert page.locator("[data-testid=job]").is_hidden()
        assert page.locator("[data-testid=upload-button]").is_disabled()
        assert not audit(page)
    finally:
        page.close()


def test_phones_are_told_to_choose_files(browser, platform_url):
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    try:
        page = context.new_page()
        page.goto(platform_url + "/bulk")
        title = page.locator(".dropzone-title").inner_text()
        assert title == "Choose files"
        assert "Drop" not in title
    finally:
        context.close()
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    try:
        page.goto(platform_url + "/bulk")
        assert page.locator(".dropzone-title").inner_text().startswith("Drop files here")
    finally:
        page.close()


# Only flagged rows, or the one-line "No result needs review." once the filtered page is in.
FILTERED_TO_REVIEW = """() => {
  const body = document.querySelector("[data-testid=results] tbody");
  const other = body.querySelectorAll("tr:not(.review):not(.message-row)").length;
  const text = body.textContent;
  return other === 0 && !text.includes("Loading") && (body.querySelector("tr.review") !== null
    || text.includes("No result needs review"));
}"""

DROP_FILES = """(files) => {
  const transfer = new DataTransfer();
  for (const [name, data] of files) {
    const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
    transfer.items.add(new File([bytes], name, { type: "image/png" }));
  }
  return transfer;
}"""


def test_drop_upload_progress_and_results(browser, platform_url, tmp_path):
    items = scans(12)
    files = [[name, base64.b64encode(data).decode()] for name, data, _ in items]
    files.append(["notes.png", base64.b64encode(b"not an image").decode()])
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    try:
        page.goto(platform_url + "/bulk")
        transfer = page.evaluate_handle(DROP_FILES, files)
        page.dispatch_event("[data-testid=dropzone]", "drop", {"dataTransfer": transfer})
        page.click("[data-testid=upload-button]")
        page.locator(FINISHED).wait_for(timeout=30_000)
        assert float(page.locator("[data-testid=progress]").get_attribute("value")) == 1
        # One file refused: a partial success, said in words and colour, the reason in view.
        status = page.locator("[data-testid=status]")
        assert status.get_attribute("data-state") == "partial"
        assert status.inner_text() == "Partly succeeded"
        assert page.locator("[data-testid=rejected]").is_visible()
        assert "notes.png" in page.locator("[data-testid=rejected]").inner_text()
        job_id = page.locator("[data-testid=job-id]").inner_text()
        heading = page.locator("[data-testid=job-heading]").inner_text()
        assert heading == "scan_00000.png and 11 more"
        assert "1 file refused at upload" in page.locator("[data-testid=counts]").inner_text()

        rows = page.locator("[data-testid=results] tbody tr")
        rows.nth(11).wait_for()
        assert rows.count() == 12
        read = [rows.nth(i).locator("td.text").inner_text() for i in range(12)]
        expected = [str(label) for _, _, label in items]
        assert sum(a == b for a, b in zip(read, expected, strict=True)) >= 11

        page.select_option("[data-testid=filter]", "true")
        page.wait_for_function(FILTERED_TO_REVIEW)
        csv_link = page.locator("[data-testid=csv-link]")
        href = csv_link.get_attribute("href")
        assert href.endswith("format=csv&needs_review=true")
        assert csv_link.inner_text() == "Download CSV (needs review only)"
        filtered = httpx.get(platform_url + href)
        disposition = filtered.headers["content-disposition"]
        assert disposition == f'attachment; filename="job-{job_id}-needs-review.csv"'
        csv = httpx.get(platform_url + href.replace("&needs_review=true", ""))
        assert len(csv.text.strip().splitlines()) == 13
        assert csv.headers["content-disposition"].endswith(f'job-{job_id}.csv"')
        recent = page.locator("[data-testid=recent] li").filter(has_text=heading)
        # Recent jobs are reloaded when the job ends: wait for that answer, not the first one.
        recent.locator(".status-badge[data-state=partial]").wait_for(timeout=10_000)
        assert "12 documents read" in recent.inner_text()
        assert not audit(page)
    except Exception:
        page.screenshot(path=str(tmp_path / "bulk-page.png"), full_page=True)
        print(f"screenshot of the failure: {tmp_path / 'bulk-page.png'}")
        raise
    finally:
        context.close()


def test_polling_survives_failed_requests(browser, platform_url):
    """A poll that fails (server restarting, network blip) says so and retries, and the page
    still follows the job to its end."""
    items = scans(3)
    files = [[name, base64.b64encode(data).decode()] for name, data, _ in items]
    context = browser.new_context()
    page = context.new_page()
    # Polls fail until the test has seen the page say so (a fixed count of failures raced the
    # page's retries on a busy CI machine).
    server = {"down": True}

    def flaky(route):
        if server["down"]:
            return route.fulfill(status=503, body='{"detail": "restarting"}')
        return route.continue_()

    try:
        page.route("**/jobs/*-*-*-*-*", flaky)  # GET /jobs/{id}: polling, not the upload
        page.goto(platform_url + "/bulk")
        transfer = page.evaluate_handle(DROP_FILES, files)
        page.dispatch_event("[data-testid=dropzone]", "drop", {"dataTransfer": transfer})
        page.click("[data-testid=upload-button]")
        page.locator("#error").filter(has_text="retrying").wait_for(timeout=10_000)
        # Not finished as far as the page knows: no CSV link pointing nowhere yet.
        assert page.locator("[data-testid=csv-link]").is_hidden()
        assert "once the job has finished" in page.locator("[data-testid=csv-wait]").inner_text()
        server["down"] = False
        page.locator(FINISHED).wait_for(timeout=30_000)
        assert page.locator("[data-testid=csv-link]").is_visible()
        assert page.locator("[data-testid=status]").get_attribute("data-state") in {
            "success",
            "review",
        }
        assert "3 documents read" in page.locator("[data-testid=counts]").inner_text()
        assert page.locator("#error").is_hidden()
        assert page.evaluate(
            "typeof window.openJob === 'undefined' && typeof window.poll === 'undefined'"
        )
    finally:
        context.close()


def scan_files(items) -> list[dict]:
    return [{"name": name, "mimeType": "image/png", "buffer": data} for name, data, _ in items]


def tab_to(page, testid: str, limit: int = 40) -> None:
    """Press Tab until the element with this data-testid has the focus."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.dataset.testid || ''") == testid:
            return
    raise AssertionError(f"Tab never reached {testid}")


def choose_by_keyboard(page, files) -> None:
    # A key pressed while the page still loads its lists can miss the chooser (Chromium).
    page.wait_for_load_state("networkidle")
    tab_to(page, "file-input")
    # Chromium can still drop the key that opens the chooser on a busy machine: press again.
    for attempt in range(3):
        try:
            with page.expect_file_chooser(timeout=10_000) as chooser:
                page.keyboard.press("Space")
            break
        except PlaywrightTimeoutError:
            if attempt == 2:
                raise
    chooser.value.set_files(files)


def test_refused_upload_by_keyboard_lists_every_reason(browser, platform_url):
    """Only unreadable files: 422, no job, every file's reason in view, focus on the message."""
    before = httpx.get(platform_url + "/jobs").json()["items"]
    page = browser.new_page()
    try:
        page.goto(platform_url + "/bulk")
        junk = [
            {"name": f"junk-{i}.txt", "mimeType": "text/plain", "buffer": b"x"} for i in range(8)
        ]
        choose_by_keyboard(page, [
            {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"a shopping list"},
            {"name": "broken.png", "mimeType": "image/png", "buffer": b"\x89PNG\r\n\x1a\nxx"},
            *junk,
        ])  # fmt: skip
        assert page.locator("[data-testid=chosen]").inner_text().startswith("10 files chosen")
        tab_to(page, "upload-button")
        page.keyboard.press("Enter")
        error = page.locator("[data-testid=error]")
        error.wait_for(state="visible", timeout=10_000)
        assert "No job created: none of the 10 files could be read" in error.inner_text()
        reasons = page.locator("[data-testid=error-files] li").all_inner_texts()
        names = ["notes.txt", "broken.png", *(f["name"] for f in junk)]
        assert [r.split(":")[0] for r in reasons] == names
        # A long list scrolls in its own box, which the keyboard can reach.
        assert page.locator("[data-testid=error-files]").get_attribute("tabindex") == "0"
        assert all(len(r.split(": ", 1)[1]) > 10 for r in reasons)
        assert page.evaluate("document.activeElement.id") == "error-title"
        assert page.locator("[data-testid=job]").is_hidden()
        assert httpx.get(platform_url + "/jobs").json()["items"] == before
        assert not audit(page), describe(audit(page))
    finally:
        page.close()


def test_keyboard_only_upload_results_and_load_more(browser, platform_url):
    """A whole job by keyboard: choose 205 scans, upload, focus lands on the job, every control
    after it is reachable and visibly focused, "Load more" is in view below a bounded table."""
    items = scans(205, start=100)
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    blocked = []  # the page works under its CSP (no inline script or style)
    page.on("console", lambda m: blocked.append(m.text) if "Content Security" in m.text else None)
    try:
        page.goto(platform_url + "/bulk")
        choose_by_keyboard(page, scan_files(items))
        tab_to(page, "upload-button")
        page.keyboard.press("Enter")
        page.wait_for_function("() => document.activeElement.id === 'job-heading'", timeout=30_000)
        page.locator(FINISHED).wait_for(timeout=60_000)
        assert page.locator("[data-testid=job-heading]").inner_text() == (
            "scan_00100.png and 204 more"
        )
        page.locator("[data-testid=shown]").filter(has_text="Showing 200 of 205").wait_for()
        assert not audit(page), describe(audit(page))

        # The table scrolls inside its own box; "Load more" sits right under it, in view.
        table = page.locator("#table-wrap").bounding_box()
        assert table["height"] <= 0.6 * 800 + 1
        page.focus("[data-testid=job-heading]")
        states = []
        for _ in range(8):
            page.keyboard.press("Tab")
            states.append(
                page.evaluate("document.activeElement.dataset.testid || document.activeElement.id")
            )
        for expected in ["copy-id", "filter", "csv-link", "table-wrap", "more"]:
            assert expected in states, states
        assert states.index("table-wrap") < states.index("more")
        tab_to(page, "more")
        more = page.locator("[data-testid=more]").bounding_box()
        assert 0 <= more["y"] and more["y"] + more["height"] <= 800  # in the viewport
        page.keyboard.press("Enter")
        page.locator("[data-testid=shown]").filter(has_text="Showing 205 of 205").wait_for()
        assert page.locator("[data-testid=more]").is_hidden()
        assert page.evaluate("document.activeElement.id") == "table-wrap"
        assert page.locator("[data-testid=results] tbody tr").count() == 205

        walk = tab_walk(page)
        assert not invisible_focus(walk), invisible_focus(walk)
        assert blocked == []
    finally:
        page.close()


def test_one_document_job_reads_in_the_singular(browser, platform_url):
    [(name, data, _)] = scans(1, start=400)
    response = httpx.post(platform_url + "/jobs", files=[("files", (name, data, "image/png"))])
    job_id = response.json()["id"]
    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    try:
        page.goto(f"{platform_url}/bulk#job={job_id}")
        page.locator(FINISHED).wait_for(timeout=30_000)
        assert page.locator("[data-testid=job-heading]").inner_text() == name
        counts = page.locator("[data-testid=counts]").inner_text()
        assert counts.startswith("1 document read")
        recent = page.locator("[data-testid=recent] li").filter(has_text=name)
        recent.wait_for()
        assert "1 document read" in recent.inner_text() and "1 documents" not in recent.inner_text()
        assert page.locator("[data-testid=job-id]").inner_text() == job_id
        page.click("[data-testid=copy-id]")
        assert page.evaluate("navigator.clipboard.readText()") == job_id
        # Opening a job from the list by keyboard puts the focus on that job.
        page.goto(platform_url + "/bulk")
        recent.locator("a").focus()
        page.keyboard.press("Enter")
        page.wait_for_function("() => document.activeElement.id === 'job-heading'")
        # The heading says "Loading the job…" until the job's answer comes back.
        page.locator("[data-testid=job-heading]", has_text=name).wait_for(timeout=10_000)
        assert page.locator("[data-testid=job-heading]").inner_text() == name
    finally:
        context.close()
