"""`digitflow run` on the embedded defaults, driven through the bulk upload page in Chromium:
drop files, watch the job finish, browse and filter the results; then Ctrl-C stops it all."""

import base64
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from tests.jobs.support import MODEL_DIR, REPO, scans
from tests.support.services import free_port

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
        status = page.locator("[data-testid=status]")
        status.filter(has_text="succeeded").wait_for(timeout=30_000)
        assert float(page.locator("[data-testid=progress]").get_attribute("value")) == 1
        assert "notes.png" in page.locator("[data-testid=rejected]").text_content()

        rows = page.locator("[data-testid=results] tbody tr")
        rows.nth(11).wait_for()
        assert rows.count() == 12
        read = [rows.nth(i).locator("td.text").inner_text() for i in range(12)]
        expected = [str(label) for _, _, label in items]
        assert sum(a == b for a, b in zip(read, expected, strict=True)) >= 11

        page.select_option("[data-testid=filter]", "true")
        page.wait_for_function(
            "document.querySelectorAll('[data-testid=results] tbody tr:not(.review)').length === 0"
        )
        href = page.locator("[data-testid=csv-link]").get_attribute("href")
        assert href.endswith("format=csv&needs_review=true")
        csv = httpx.get(platform_url + href.replace("&needs_review=true", ""))
        assert len(csv.text.strip().splitlines()) == 13
        assert page.locator("[data-testid=recent] li").count() >= 1
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
    failures = {"left": 2}

    def flaky(route):
        if failures["left"]:
            failures["left"] -= 1
            return route.fulfill(status=503, body='{"detail": "restarting"}')
        return route.continue_()

    try:
        page.route("**/jobs/*-*-*-*-*", flaky)  # GET /jobs/{id}: polling, not the upload
        page.goto(platform_url + "/bulk")
        transfer = page.evaluate_handle(DROP_FILES, files)
        page.dispatch_event("[data-testid=dropzone]", "drop", {"dataTransfer": transfer})
        page.click("[data-testid=upload-button]")
        page.locator("#error").filter(has_text="retrying").wait_for(timeout=10_000)
        page.locator("[data-testid=status]").filter(has_text="succeeded").wait_for(timeout=30_000)
        assert failures["left"] == 0
        assert page.locator("#error").is_hidden()
        assert page.evaluate(
            "typeof window.openJob === 'undefined' && typeof window.poll === 'undefined'"
        )
    finally:
        context.close()
