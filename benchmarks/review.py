"""The review queue under load: 8 reviewers working one queue at once, and the page's pace.

Starts a throwaway Postgres 15 (devtools/services.py), applies the migrations, starts the
API (one uvicorn process; reviewers are told apart by a benchmark-only header, as API keys
would), uploads MNIST test digits rendered as scans and reads them in-process with
worker.batch under a policy that sends every one to review. Then:

- `api`:  8 reviewer threads each loop "claim 10, decide each" until the queue is empty;
  reports decisions/s, claim and decision latency (p50/p95), and checks that no document was
  decided twice (each must be claimed by exactly one reviewer);
- `page`: a scripted keyboard-only reviewer in headless Chromium presses Enter through
  `--page-items` items; reports the time from the key press to the next scan painted, from the
  page's own `performance.measure("next-item")` entries.

Writes the "Review queue" section of docs/benchmarks.md.

    .venv/bin/python benchmarks/review.py [--items 1000] [--page-items 200]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from devtools import services  # noqa: E402
from devtools.report import write_section  # noqa: E402

REVIEWERS = 8
HEADER = "X-Bench-Reviewer"


def bench_app():
    """The API with reviewers named by a header (benchmark only: real deployments use keys)."""
    from fastapi import Request

    from api.auth.dependencies import current_principal
    from api.main import create_app
    from digitflow.auth import Principal, Role

    def principal(request: Request) -> Principal:
        who = request.headers.get(HEADER)
        if who is None:
            return Principal("bench", Role.admin, key_id="admin", name="admin")
        return Principal("bench", Role.reviewer, key_id=who, name=who)

    app = create_app()
    app.dependency_overrides[current_principal] = principal
    return app


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


def prepare_queue(url: str, database_url: str, data_dir: Path, count: int) -> str:
    from sqlalchemy import select

    from devtools import MODEL_DIR
    from devtools.scans import scans
    from digitflow.db import Document, make_sessionmaker
    from digitflow.storage import LocalStorage
    from recognition import Recognizer
    from recognition.review import ReviewPolicy
    from worker.batch import Runtime, process_batch

    files = [("files", (n, d, "image/png")) for n, d, _ in scans(count)]
    job_id = httpx.post(f"{url}/jobs", files=files, timeout=300).json()["id"]
    sessions = make_sessionmaker(database_url)
    with sessions() as session:
        ids = list(session.scalars(select(Document.id).where(Document.job_id == uuid.UUID(job_id))))
    runtime = Runtime(
        Recognizer(MODEL_DIR), sessions, LocalStorage(data_dir / "storage"), 40_000_000,
        review=ReviewPolicy(threshold=1.0),
    )  # fmt: skip
    for start in range(0, len(ids), 512):
        process_batch(runtime, uuid.UUID(job_id), ids[start : start + 512])
    return job_id


def reviewer(url: str, who: str, claims: list, decisions: list, decided: list) -> None:
    with httpx.Client(base_url=url, headers={HEADER: who}, timeout=30) as client:
        while True:
            started = time.perf_counter()
            items = client.post("/review/claim", json={"limit": 10}).json()["items"]
            claims.append(time.perf_counter() - started)
            if not items:
                return
            for item in items:
                started = time.perf_counter()
                response = client.post(f"/review/{item['document_id']}", json={"action": "accept"})
                decisions.append(time.perf_counter() - started)
                if response.status_code == 200:
                    decided.append(item["document_id"])


def run_api(url: str) -> dict:
    claims, decisions, decided = [], [], []
    threads = [
        threading.Thread(target=reviewer, args=(url, f"r{i}", claims, decisions, decided))
        for i in range(REVIEWERS)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    return {
        "decided": len(decided),
        "unique": len(set(decided)),
        "per_second": len(decided) / wall,
        "claim_ms": (1000 * statistics.median(claims), 1000 * percentile(claims, 95)),
        "decide_ms": (1000 * statistics.median(decisions), 1000 * percentile(decisions, 95)),
    }


def run_page(url: str, items: int) -> list[float]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(services.CHROMIUM), args=services.CHROMIUM_ARGS, headless=True
        )
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{url}/review/page")
        wait = "prev => { const id = document.getElementById('stage').dataset.documentId;" \
               " return id && id !== prev; }"  # fmt: skip
        page.wait_for_function(wait, arg=None)
        for _ in range(items):
            current = page.get_attribute("#stage", "data-document-id")
            page.keyboard.press("Enter")
            page.wait_for_function(wait, arg=current, timeout=10_000)
        durations = page.evaluate(
            "() => performance.getEntriesByName('next-item').map(e => e.duration)"
        )
        browser.close()
    return durations


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=1000, help="documents for the API run")
    parser.add_argument("--page-items", type=int, default=200)
    parser.add_argument("--no-write", action="store_true", help="print, do not edit docs/")
    args = parser.parse_args(argv)

    from digitflow.db.migrations import upgrade

    load_before = os.getloadavg()[0]
    with services.start_postgres() as postgres, tempfile.TemporaryDirectory() as tmp:
        database_url = postgres.create_database("bench_review")
        upgrade(database_url)
        port = services.free_port()
        env = {**os.environ, "DATABASE_URL": database_url, "DATA_DIR": tmp,
               "MODEL_DIR": str(REPO / "models" / "default")}  # fmt: skip
        env.pop("REDIS_URL", None)
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "benchmarks.review:bench_app",
             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            cwd=REPO, env=env,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            services.wait_until(
                lambda: services.http_answers("127.0.0.1", port, "/health"),
                what="api", proc=server, log=Path(tmp) / "none", timeout=60,
            )  # fmt: skip
            prepare_queue(url, database_url, Path(tmp), args.items)
            api = run_api(url)
            prepare_queue(url, database_url, Path(tmp), args.page_items + 20)
            page = run_page(url, args.page_items)
        finally:
            server.terminate()
            server.wait(10)

    page_p50, page_p95 = statistics.median(page), percentile(page, 95)
    rows = [
        (f"{REVIEWERS} reviewers claiming 10 at a time and accepting, {args.items} documents",
         f"{api['per_second']:.0f} decisions/s; {api['decided']} decided,"
         f" {api['unique']} distinct (none twice)"),
        ("claim of 10 items under that contention",
         f"p50 {api['claim_ms'][0]:.1f} ms, p95 {api['claim_ms'][1]:.1f} ms"),
        ("one decision", f"p50 {api['decide_ms'][0]:.1f} ms, p95 {api['decide_ms'][1]:.1f} ms"),
        (f"review page, key press to the next scan painted ({len(page)} items, headless"
         " Chromium)", f"p50 {page_p50:.1f} ms, p95 {page_p95:.1f} ms"),
    ]  # fmt: skip
    body = "\n".join(
        [
            "`benchmarks/review.py`: one API process on Postgres 15, the client on the same"
            f" 2 cores; load average during the run {load_before:.1f} -> {os.getloadavg()[0]:.1f}"
            " (the machine is shared: figures scale with it).",
            "",
            "| what | figure |",
            "| --- | --- |",
            *(f"| {what} | {figure} |" for what, figure in rows),
        ]
    )
    print(body)
    assert api["decided"] == api["unique"] == args.items, "a document was decided twice or lost"
    if not args.no_write:
        write_section("review", "Review queue", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
