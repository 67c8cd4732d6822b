"""Screenshots of every page at desktop (1280x800) and phone (390x844) width, for the docs.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots]

Starts `digitflow run` on a free port on the embedded defaults (a throwaway data folder), takes
the bulk page of the new install, uploads two small jobs of MNIST test digits rendered as scans
(one with a file the upload refuses) so the bulk page has results, draws a digit on the canvas,
and saves full-page PNGs with Debian's Chromium (scripts/setup-test-env.sh installs it). Nothing
here is faked: the pictures show what the platform answered.
"""

from __future__ import annotations

import argparse
import io
import os
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from devtools.services import free_port  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
WIDTHS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
STROKE_SEVEN = [(0.25, 0.22), (0.75, 0.22), (0.45, 0.82)]  # a "7", in canvas fractions


@contextmanager
def platform(data_dir: Path):
    """`digitflow run` on a free port; its URL while running, stopped with Ctrl-C after."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env |= {"DATA_DIR": str(data_dir), "MODEL_DIR": str(REPO / "models/default")}
    log = (data_dir / "run.log").open("wb")
    command = [sys.executable, "-m", "digitflow.cli", "run", "--port", str(port)]
    proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc, data_dir / "run.log")
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(40)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"digitflow run exited:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(url + "/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"digitflow run was not ready after {timeout:.0f} s")


def digit_scans(count: int, start: int) -> list[tuple[str, bytes]]:
    """MNIST test digits as scans (dark ink on grey paper), PNG-encoded."""
    from training.data import IDX_FILES, default_data_dir, read_idx

    images = read_idx(default_data_dir() / IDX_FILES["test_images"])
    out = []
    for i in range(start, start + count):
        pixels = (235 - images[i].astype("float32") * 215 / 255).round().astype("uint8")
        image = Image.fromarray(pixels, "L").resize((56, 56), Image.Resampling.BILINEAR)
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        out.append((f"cheque_{i:04d}.png", buffer.getvalue()))
    return out


def upload(url: str, files: list[tuple[str, bytes]]) -> str:
    parts = [("files", (name, data, "application/octet-stream")) for name, data in files]
    response = httpx.post(url + "/jobs", files=parts, data={"layout": "digit"}, timeout=60)
    response.raise_for_status()
    job_id = response.json()["id"]
    deadline = time.monotonic() + 60
    while httpx.get(f"{url}/jobs/{job_id}").json()["finished_at"] is None:
        if time.monotonic() > deadline:
            raise SystemExit(f"job {job_id} did not finish in 60 s")
        time.sleep(0.3)
    return job_id


def draw_seven(page) -> None:
    box = page.locator("#canvas").bounding_box()
    x, y, w, h = box["x"], box["y"], box["width"], box["height"]
    points = [(x + fx * w, y + fy * h) for fx, fy in STROKE_SEVEN]
    page.mouse.move(*points[0])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(x, y, steps=12)
    page.mouse.up()
    page.locator("[data-testid=confidence]").filter(has_text="%").wait_for(timeout=10_000)


def refuse_upload(page) -> None:
    page.set_input_files("#files", files=[
        {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not a scan"},
        {"name": "photo.png", "mimeType": "image/png", "buffer": b"\x89PNG\r\n\x1a\n broken"},
    ])  # fmt: skip
    page.click("#start")
    page.locator("#error").wait_for(state="visible")


def shoot(browser, url: str, out: Path, views: list) -> list[Path]:
    """Each (name, path, prepare) view at each width: docs/screenshots/<name>-<width>.png."""
    shots = []
    for width, viewport in WIDTHS.items():
        phone = width == "phone"
        context = browser.new_context(viewport=viewport, device_scale_factor=1,
                                      is_mobile=phone, has_touch=phone)  # fmt: skip
        for name, path, prepare in views:
            page = context.new_page()  # a fresh page each: /bulk#job= would not reload /bulk
            page.goto(url + path)
            page.wait_for_load_state("networkidle")
            if prepare:
                prepare(page)
            page.evaluate("document.activeElement && document.activeElement.blur()")
            shot = out / f"{name}-{width}.png"
            page.screenshot(path=str(shot), full_page=True, animations="disabled")
            compact(shot)
            shots.append(shot)
            page.close()
        context.close()
    return shots


def compact(path: Path) -> None:
    """256 colours are plenty for flat UI pictures: about a third of the bytes in the repository."""
    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


def pages(job_id: str | None):
    """(name, path, prepare) of every page; the bulk page once with a finished job open."""
    from api.pages.router import NAV

    def job_open(page):
        page.locator("[data-testid=status][data-finished=true]").wait_for(timeout=30_000)
        page.locator("[data-testid=shown]").filter(has_text="Showing").wait_for(timeout=30_000)

    prepare = {"/": draw_seven, "/bulk": None}
    for path, _label in NAV:
        if path == "/docs":
            continue  # the OpenAPI reference is Swagger UI's page, not ours
        name = "draw" if path == "/" else path.strip("/").replace("/", "-")
        yield name, path, prepare.get(path)
    yield "bulk-job", f"/bulk#job={job_id}", job_open
    yield "bulk-refused", "/bulk", refuse_upload


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs/screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as data, platform(Path(data)) as url:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
            )
            shots = shoot(browser, url, args.out, [("bulk-empty", "/bulk", None)])  # a new install
            upload(url, digit_scans(3, 100))
            job_id = upload(url, [*digit_scans(60, 0), ("notes.txt", b"not a scan")])
            shots += shoot(browser, url, args.out, list(pages(job_id)))
            browser.close()
    for shot in shots:
        print(shot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
