"""Mixed load on the embedded defaults: canvas requests and bulk jobs together, for minutes.

Starts `digitflow run` (SQLite, the embedded Redis, local storage; one API process per core) in
a fresh data folder, then for `--minutes` keeps `--canvas-clients` clients posting canvas
drawings to /predict-drawing and submits a bulk job of `--job-size` scans every
`--job-every` seconds. At the end it checks that no child process died (the supervisor's
restart lines), that every canvas request was answered 200, and that every job finished with
exactly one result per accepted document (no message lost), then writes the
"Mixed load" section of docs/reliability.md.

    .venv/bin/python benchmarks/mixed_load.py [--minutes 10]
"""

import argparse
import base64
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from devtools.mnist import mnist_sample as mnist_test  # noqa: E402
from devtools.report import write_section  # noqa: E402
from devtools.scans import canvas_png, scans  # noqa: E402
from devtools.services import free_port  # noqa: E402

RELIABILITY_MD = REPO / "docs" / "reliability.md"
RELIABILITY_HEADER = "# Reliability\n\nSee the sections below; each is rewritten by its script.\n"


def start_platform(data_dir: Path, port: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "DATA_DIR": str(data_dir), "SWEEP_AFTER_SECONDS": "60"}
    for name in ("DATABASE_URL", "REDIS_URL"):
        env.pop(name, None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "digitflow.cli", "run", "--port", str(port)],
        cwd=REPO, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 180
    while b"ready at" not in log.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"digitflow run did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.5)
    return proc


class Canvas(threading.Thread):
    def __init__(self, base: str, bodies: list[bytes], stop: threading.Event):
        super().__init__(daemon=True)
        self.base, self.bodies, self.stop = base, bodies, stop
        self.ok = self.bad = 0
        self.errors: list[str] = []

    def run(self) -> None:
        headers = {"Content-Type": "application/json"}
        with httpx.Client(base_url=self.base, timeout=30) as client:
            i = 0
            while not self.stop.is_set():
                try:
                    answer = client.post("/predict-drawing", content=self.bodies[i % 50],
                                         headers=headers)  # fmt: skip
                    ok = answer.status_code == 200
                except httpx.HTTPError as exc:
                    ok = False
                    self.errors.append(type(exc).__name__)
                self.ok, self.bad = self.ok + ok, self.bad + (not ok)
                i += 1


def submit_job(base: str, items: list[tuple[str, bytes, int]]) -> dict:
    files = [("files", (name, data, "image/png")) for name, data, _ in items]
    answer = httpx.post(f"{base}/jobs", files=files, timeout=120)
    answer.raise_for_status()
    return answer.json()


def wait_jobs(base: str, ids: list[str], timeout: float = 600) -> list[dict]:
    deadline, done = time.monotonic() + timeout, {}
    while len(done) < len(ids) and time.monotonic() < deadline:
        for job_id in ids:
            if job_id not in done:
                job = httpx.get(f"{base}/jobs/{job_id}", timeout=30).json()
                if job["finished_at"]:
                    done[job_id] = job
        time.sleep(1)
    return [done.get(job_id) or {"id": job_id, "finished_at": None} for job_id in ids]


def database_counts(data_dir: Path) -> tuple[int, int, int]:
    with sqlite3.connect(data_dir / "digitflow.db") as db:
        documents = db.execute("select count(*) from documents").fetchone()[0]
        predictions = db.execute("select count(*) from predictions").fetchone()[0]
        distinct = db.execute("select count(distinct document_id) from predictions").fetchone()[0]
    return documents, predictions, distinct


def run_load(base: str, args) -> tuple[list[Canvas], list[str], int]:
    images, _ = mnist_test(50, seed=3)
    rng = np.random.default_rng(3)
    bodies = [
        json.dumps({"image": "data:image/png;base64,"
                    + base64.b64encode(canvas_png(d, rng, 280)).decode()}).encode()
        for d in images
    ]  # fmt: skip
    stop = threading.Event()
    clients = [Canvas(base, bodies, stop) for _ in range(args.canvas_clients)]
    for client in clients:
        client.start()
    jobs, sent, items = [], 0, scans(args.job_size)
    end = time.monotonic() + args.minutes * 60
    while time.monotonic() < end:
        jobs.append(submit_job(base, items)["id"])
        sent += len(items)
        time.sleep(max(0.0, min(args.job_every, end - time.monotonic())))
    stop.set()
    for client in clients:
        client.join()
    return clients, jobs, sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--canvas-clients", type=int, default=4)
    parser.add_argument("--job-size", type=int, default=500)
    parser.add_argument("--job-every", type=float, default=15)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="digitflow-mixed-"))
    port, log = free_port(), data_dir / "run.log"
    proc = start_platform(data_dir, port, log)
    base = f"http://127.0.0.1:{port}"
    try:
        clients, jobs, sent = run_load(base, args)
        finished = wait_jobs(base, jobs)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(60)
    documents, predictions, distinct = database_counts(data_dir)
    restarts = [line for line in log.read_text().splitlines() if "exited with code" in line]
    result = {
        "minutes": args.minutes, "canvas_ok": sum(c.ok for c in clients),
        "canvas_failed": sum(c.bad for c in clients), "jobs": len(jobs), "documents_sent": sent,
        "jobs_finished": sum(1 for j in finished if j["finished_at"]),
        "documents_succeeded": sum(j.get("succeeded", 0) for j in finished),
        "documents_failed": sum(j.get("failed", 0) for j in finished),
        "documents_in_database": documents, "predictions": predictions,
        "distinct_results": distinct, "process_restarts": restarts,
    }  # fmt: skip
    print(json.dumps(result, indent=2))
    write_section(
        "mixed-load", "Mixed load on the embedded defaults", report(result, args), RELIABILITY_MD,
        RELIABILITY_HEADER,
    )  # fmt: skip


def report(result: dict, args) -> str:
    lost = result["documents_sent"] - result["documents_succeeded"] - result["documents_failed"]
    return (
        f"`benchmarks/mixed_load.py --minutes {args.minutes:g}`: `digitflow run` on the embedded "
        f"defaults; {args.canvas_clients} clients posting 280x280 canvas drawings without pause, "
        f"and a {args.job_size}-scan bulk job every {args.job_every:g} s, together.\n\n"
        "| what | figure |\n| --- | --- |\n"
        f"| canvas requests answered 200 / failed | {result['canvas_ok']} / "
        f"{result['canvas_failed']} |\n"
        f"| bulk jobs submitted / finished | {result['jobs']} / {result['jobs_finished']} |\n"
        f"| documents sent / succeeded / failed / lost | {result['documents_sent']} / "
        f"{result['documents_succeeded']} / {result['documents_failed']} / {lost} |\n"
        f"| predictions / distinct documents with a result | {result['predictions']} / "
        f"{result['distinct_results']} |\n"
        f"| child processes that died (supervisor restarts) | {len(result['process_restarts'])} |\n"
    )


if __name__ == "__main__":
    main()
