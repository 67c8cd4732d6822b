"""Whole cheques through the real platform: the issue's bars, on cheques generated afresh.

Cheques come from `training.cheques` with a seed used nowhere else, made of the official MNIST
TEST digits (every template, currency, amount style, distractor and scan effect: 150-300 dpi,
rotation, noise, uneven light, blur, JPEG). Starts throwaway Postgres 15 and Redis, the API (one
uvicorn process) and ONE Celery worker (prefork, 2 processes), then measures:

- accuracy: every cheque sent to `POST /predict?layout=cheque` (4 clients at a time): the share
  of amounts read exactly, the share flagged for review, the error among amounts not flagged,
  the box-found rate;
- bulk: the same cheques as one ZIP (or, with `--upload files`, as 1,000 files of one
  multipart upload) to `POST /jobs?layout=cheque`: cheques/s from upload start to the job's
  `finished_at`, the CPU the API and the worker spent a cheque, and the stored amounts'
  accuracy. Either way the API stores, commits and queues the cheques every `--batch-size`
  (32: a cheque costs the worker ~13 ms, so a task is ~0.4 s of one core and the last one
  does not leave the other core idle for long) while the upload is still arriving.

Writes the "Cheques" section of docs/benchmarks.md.

    .venv/bin/python benchmarks/cheques.py [--count 1000] [--upload zip|files] [--batch-size 32]
                                           [--bulk-only] [--no-write]
"""

import argparse
import asyncio
import io
import os
import sys
import time
import zipfile
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from benchmarks.bulk_throughput import (  # noqa: E402
    multipart,
    platform_env,
    run_job,
    start_api,
)
from devtools import services  # noqa: E402
from devtools.celery_worker import celery_worker  # noqa: E402
from devtools.report import publish  # noqa: E402
from training.cheques import cheques  # noqa: E402
from training.data import load_mnist  # noqa: E402

SEED = 4242  # used by nothing else: these cheques are new to the reader
BATCH_SIZE = 32  # cheques a worker task (and an intake commit): JOB_PAGE_BATCH_SIZE
UPLOADS = {"zip": "one ZIP", "files": "one upload of single files"}


async def predict_all(port: int, items: list, concurrency: int = 4) -> list[dict]:
    queue = list(enumerate(items))
    out: list[dict | None] = [None] * len(items)

    async def client_loop(client: httpx.AsyncClient):
        while queue:
            i, item = queue.pop()
            files = {"file": (f"cheque{i}.jpg", item.image, "application/octet-stream")}
            response = await client.post("/predict?layout=cheque", files=files)
            out[i] = response.json() if response.status_code == 200 else {"error": response.text}

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
        await asyncio.gather(*(client_loop(client) for _ in range(concurrency)))
    return out


def accuracy(items: list, answers: list[dict]) -> dict:
    n = len(items)
    exact = flagged = wrong_unflagged = found = 0
    for item, answer in zip(items, answers, strict=True):
        amount = answer.get("fields", {}).get("amount", {})
        right = answer.get("text") == item.amount
        exact += right
        found += amount.get("box") is not None
        if answer.get("needs_review", True):
            flagged += 1
        elif not right:
            wrong_unflagged += 1
    accepted = n - flagged
    return {
        "cheques": n,
        "exact": exact / n,
        "flagged": flagged / n,
        "box_found": found / n,
        "wrong_unflagged": wrong_unflagged,
        "error_unflagged": wrong_unflagged / accepted if accepted else 0.0,
    }


def zip_body(items: list) -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:  # JPEG is compressed already
        for i, item in enumerate(items):
            zf.writestr(f"cheque_{i:05d}.jpg", item.image)
    return multipart([("cheques.zip", archive.getvalue(), "application/zip")])


def files_body(items: list) -> bytes:
    """Every cheque a file of its own in one multipart upload: stored and queued batch by batch
    while the upload streams in (a ZIP is opened only once it has all arrived)."""
    return multipart(
        [(f"cheque_{i:05d}.jpg", item.image, "application/octet-stream")
         for i, item in enumerate(items)]
    )  # fmt: skip


def measure(
    items: list, model_dir: Path, sync_pass: bool = True, upload: str = "zip",
    batch_size: int = BATCH_SIZE,
) -> tuple[dict, dict]:  # fmt: skip
    with services.start_postgres() as postgres, services.start_redis() as redis:
        shared, env, work = platform_env(
            postgres, redis, "cheques", model_dir=model_dir, job_page_batch_size=batch_size
        )
        port = services.free_port()
        api = start_api(env, port, work / "api.log")
        try:
            sync = {}
            if sync_pass:
                sync = accuracy(items, asyncio.run(predict_all(port, items)))
                print(f"POST /predict?layout=cheque: {sync}", flush=True)
            names = [f"cheque_{i:05d}.jpg" for i in range(len(items))]
            body = zip_body(items) if upload == "zip" else files_body(items)
            with celery_worker(work / "worker.log", concurrency=2, **shared) as worker:
                bulk = run_job(f"http://127.0.0.1:{port}", body, worker.proc.pid, api.pid,
                               [c.amount for c in items], names, layout="cheque")  # fmt: skip
            bulk["load_after"], bulk["upload"] = os.getloadavg()[0], upload
            bulk["batch_size"] = batch_size
            print(f"bulk: {bulk}", flush=True)
        finally:
            services.stop(api)
    return sync, bulk


STAGES = ("decode", "locate", "cut", "segment", "read")


def stage_cpu(items: list, model_dir: Path) -> dict:
    """CPU ms a cheque for each step the worker takes with a cheque, in this process (OpenCV on
    one thread, as in the worker): decode, locate the box, cut the amount, segment it, and the
    model reading every amount in one call. Decoding is also split by file format."""
    import cv2

    from recognition import ImageError, Recognizer
    from recognition.cheque import amount_crop, locate_amount
    from recognition.decode import DEFAULT_MAX_PIXELS, decode_page
    from recognition.doctypes import PAGE_MIN_WIDTH, READ_HEIGHT
    from recognition.fields import find_digits, read_segmentations

    cv2.setNumThreads(1)
    spent, by_format, segmentations = dict.fromkeys(STAGES, 0.0), {}, []

    def timed(stage: str, work, *args, **options):
        start = time.process_time()
        out = work(*args, **options)
        spent[stage] += time.process_time() - start
        return out

    for item in items:
        before = spent["decode"]
        page, _ = timed("decode", decode_page, item.image, DEFAULT_MAX_PIXELS, PAGE_MIN_WIDTH)
        kind = "PNG" if item.image[:4] == b"\x89PNG" else "JPEG"
        by_format.setdefault(kind, []).append(spent["decode"] - before)
        found = timed("locate", locate_amount, page)
        if found is not None:
            crop = timed("cut", amount_crop, page, found, READ_HEIGHT)
            scale = found.box.width / crop.shape[1]
            try:
                segmentations.append(timed("segment", find_digits, crop, "field", deskew=False,
                                           pixel_scale=scale))  # fmt: skip
            except ImageError:
                pass
    recognizer = Recognizer(model_dir)
    read_segmentations(segmentations[:8], recognizer)  # the interpreter warmed up
    timed("read", read_segmentations, segmentations, recognizer)
    out = {stage: spent[stage] * 1000 / len(items) for stage in STAGES}
    out["formats"] = {k: (len(v), sum(v) * 1000 / len(v)) for k, v in sorted(by_format.items())}
    return out


def stage_table(stages: dict) -> str:
    formats = ", ".join(f"{kind} {n:,}: {ms:.1f} ms" for kind, (n, ms) in stages["formats"].items())
    rows = "\n".join(f"| {stage} | {stages[stage]:.2f} |" for stage in STAGES)
    total = sum(stages[stage] for stage in STAGES)
    return f"""
CPU a cheque, step by step, in one process (`stage_cpu`: what the worker does with each cheque,
before the servers start; 1-minute load average {stages["load"]:.2f}):

| step | CPU ms a cheque |
| --- | ---: |
{rows}
| **all** | **{total:.2f}** |

Decoding by format: {formats}.
"""


def report(sync: dict, bulk: dict, count: int, image_bytes: int, load: float, seed: int) -> str:
    return f"""
`benchmarks/cheques.py`: {count:,} whole cheque fronts generated afresh by `training.cheques`
(seed {seed}, MNIST TEST digits; 5 bank layouts, half of them with the amount box moved and
resized, 7 typefaces, 10 currency signs, 7 amount styles, every distractor and scan effect;
150-300 dpi; ~{image_bytes // 1024} KiB each, 80% JPEG). The API is one uvicorn process, the bulk
path ONE Celery worker (prefork, 2 processes; {bulk["batch_size"]} cheques a task) with Postgres 15
and Redis, all on the same 2 cores as the client (1-minute load average before the run:
{load:.2f}; after the bulk job: {bulk["load_after"]:.2f}).

| | measured | bar |
| --- | ---: | ---: |
| `POST /predict?layout=cheque`: amounts read exactly | **{sync["exact"]:.2%}** | >= 95% |
| the same: wrong among the amounts not flagged | **{sync["error_unflagged"]:.2%}** \
({sync["wrong_unflagged"]}) | <= 1% |
| the same: flagged for review | {sync["flagged"]:.2%} | |
| the same: amount box found | {sync["box_found"]:.2%} | |
| bulk job `layout=cheque` ({bulk["documents"]:,} cheques, {UPLOADS[bulk["upload"]]}): \
cheques/s end to end \
| **{bulk["docs_per_s"]:,.0f}** | >= 100 |
| the same: end to end (s) / upload (s) | {bulk["end_to_end_s"]:.2f} / \
{bulk["upload_s"]:.2f} | |
| the same: stored amounts exact | {bulk["accuracy"]:.2%} | |
| the same: worker CPU ms per cheque / API CPU ms per cheque | \
{bulk["worker_cpu_ms"]:.1f} / {bulk["api_cpu_ms"]:.1f} | |
| the same: peak worker RSS (MiB) | {bulk["peak_rss_mib"]:.0f} | |

Cheques/s end to end is wall-clock time on a machine shared with other work. The CPU the worker
and the API spent per cheque says what the same two cores would do with nothing else running:
about {2000 / (bulk["worker_cpu_ms"] + bulk["api_cpu_ms"]):.0f} cheques/s (2,000 CPU-ms a second
over {bulk["worker_cpu_ms"] + bulk["api_cpu_ms"]:.1f} ms a cheque, Postgres and Redis not counted).
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--model-dir", type=Path, default=REPO / "models" / "default")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--bulk-only", action="store_true", help="skip POST /predict (no write)")
    parser.add_argument("--upload", choices=sorted(UPLOADS), default="zip")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="JOB_PAGE_BATCH_SIZE")
    args = parser.parse_args(argv)
    data = load_mnist()
    items = cheques(args.count, data.x_test, data.y_test, args.seed)
    stages = stage_cpu(items, args.model_dir) | {"load": os.getloadavg()[0]}
    print(stage_table(stages), flush=True)
    load = os.getloadavg()[0]
    sync, bulk = measure(items, args.model_dir, not args.bulk_only, args.upload, args.batch_size)
    if args.bulk_only:
        return 0
    image_bytes = sum(len(c.image) for c in items) // len(items)
    body = report(sync, bulk, len(items), image_bytes, load, args.seed) + stage_table(stages)
    title = "Cheques: whole fronts, amounts out"
    return publish("cheques", title, body, write=not args.no_write)


if __name__ == "__main__":
    sys.exit(main())
