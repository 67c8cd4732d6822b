"""Throughput of the bulk path: 10,000 single-digit documents end to end.

Starts throwaway Postgres 15 and Redis (devtools/services.py), applies the migrations,
starts the API (one uvicorn process) and ONE Celery worker (`--concurrency 2` prefork: one
process tree), then for each upload mode:

- `files`: one multipart request with 10,000 PNG parts (the repeatable `files` field);
- `zip`:   one multipart request with one ZIP holding the 10,000 PNGs;

uploads the official MNIST test digits rendered as scans (dark ink on light paper, 56x56 PNG),
polls until the job has finished and reports: documents/s from upload start to the last result
committed (the job's `finished_at`, stamped in the transaction of the last batch), upload time
(until the 202), peak worker RSS (sum over the worker's processes, sampled every 0.1 s with
psutil), and the accuracy of the stored results against the MNIST labels. The request body is
encoded before the clock starts; the client shares the 2 cores with the server and the worker.
Writes the "Bulk path" section of docs/benchmarks.md.

    .venv/bin/python benchmarks/bulk_throughput.py [--count 10000] [--model-dir models/default]
"""

import argparse
import io
import os
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from devtools import services  # noqa: E402
from devtools.celery_worker import celery_worker  # noqa: E402
from devtools.mnist import mnist_test_set  # noqa: E402
from devtools.report import write_section  # noqa: E402
from devtools.scans import scan_png  # noqa: E402

BOUNDARY = "digitflow-benchmark-boundary"


def multipart(files: list[tuple[str, bytes, str]]) -> bytes:
    out = io.BytesIO()
    for name, data, content_type in files:
        out.write(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n".encode()
        )
        out.write(data)
        out.write(b"\r\n")
    out.write(f"--{BOUNDARY}--\r\n".encode())
    return out.getvalue()


class RssSampler(threading.Thread):
    """Peak of the summed RSS of a process and its children, sampled in the background.

    Cheap on purpose, as it shares the machine with what it measures: listing a process's
    children walks all of /proc (sampling them every 20 ms cost ~0.3 of a core), so the list
    is refreshed once a second and the RSS of the known ones read every `interval`."""

    def __init__(self, pid: int, interval: float = 0.1, refresh_every: int = 10):
        super().__init__(daemon=True)
        self.root, self.interval, self.refresh_every = psutil.Process(pid), interval, refresh_every
        self.peak, self._stopping, self._processes = 0, False, []

    def refresh(self) -> None:
        try:
            self._processes = [self.root, *self.root.children(recursive=True)]
        except psutil.NoSuchProcess:
            self._processes = []

    def sample(self) -> int:
        if not self._processes:
            self.refresh()
        total = 0
        for process in self._processes:
            try:
                total += process.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total

    def run(self) -> None:
        count = 0
        while not self._stopping:
            if count % self.refresh_every == 0:
                self.refresh()
            self.peak = max(self.peak, self.sample())
            count += 1
            time.sleep(self.interval)

    def stop(self) -> int:
        self._stopping = True
        self.join()
        return self.peak


def field_documents(images, labels, count: int, digits: int):
    """`count` scanned fields of `digits` MNIST test digits, half of them in a printed box."""
    import numpy as np

    from training.synthetic_fields import FieldSpec, render_field

    rng = np.random.default_rng(77)
    made = [
        render_field(
            FieldSpec(count=digits, structure="box" if i % 2 else "none", height=32), images,
            labels, rng,
        )
        for i in range(count)
    ]  # fmt: skip
    return (
        [f"field_{i:05d}.png" for i in range(count)],
        [m.image for m in made],
        [m.text for m in made],
    )


def scan_documents(images, labels, count: int, kind: str = "scan300"):
    """`count` cheque amounts as a 300 dpi scanner crops them (`training.synthetic_fields.
    scan_spec`: 1-7 digits 70-110 px tall, half boxed, tilt, blur, half JPEG, half PNG), or
    another kind of `training.synthetic_fields` ("cheque": issue 8's bar amounts)."""
    import numpy as np

    from training.synthetic_fields import fields

    made = fields(kind, count, images, labels, seed=3003)
    jpeg = b"\xff\xd8"
    names = [
        f"scan_{i:05d}.{'jpg' if m.image.startswith(jpeg) else 'png'}" for i, m in enumerate(made)
    ]
    sizes = np.array([m.spec.height for m in made])
    print(f"digit heights {sizes.min()}-{sizes.max()} px", flush=True)
    return names, [m.image for m in made], [m.text for m in made]


def platform_env(postgres, redis, name: str, **settings) -> tuple[dict, dict, Path]:
    """A fresh, migrated database and data folder: (the settings the API and the worker share,
    the API's environment, the folder)."""
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"digitflow-{name}-{uuid.uuid4().hex[:8]}"
    work.mkdir()
    shared = {
        "database_url": postgres.create_database(f"digitflow_{name}"),
        "redis_url": redis.url,
        "data_dir": work,
        **settings,
    }
    from digitflow.db.migrations import upgrade

    upgrade(shared["database_url"])
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env |= {key.upper(): str(value) for key, value in shared.items()}
    return shared, env, work


def start_api(env: dict, port: int, log: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1",
               "--port", str(port), "--no-access-log", "--log-level", "warning"]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"API did not become ready:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children so far."""
    root = psutil.Process(pid)
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def body_slices(body: bytes, size: int = 1 << 20) -> Iterator[memoryview]:
    """The body in 1 MiB slices, without copying. httpx given one big `bytes` sends it with
    `buffer = buffer[sent:]` after every socket write: a copy of the rest each time, ~5 s of
    client CPU for a 240 MB upload (a browser or curl streams the file instead)."""
    view = memoryview(body)
    for start in range(0, len(body), size):
        yield view[start : start + size]


def run_job(
    base: str, body: bytes, worker_pid: int, api_pid: int, labels, names, layout: str = "auto"
) -> dict:
    cpu_before = cpu_seconds(worker_pid), cpu_seconds(api_pid)
    sampler = RssSampler(worker_pid)
    sampler.start()
    with httpx.Client(base_url=base, timeout=600) as client:
        started_wall = time.time()
        started = time.perf_counter()
        response = client.post(
            f"/jobs?layout={layout}",
            content=body_slices(body),
            headers={
                "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
                "Content-Length": str(len(body)),
            },
        )
        uploaded = time.perf_counter()
        response.raise_for_status()
        job = response.json()
        while job["finished_at"] is None:
            time.sleep(0.25)  # the end time is the job's finished_at, not when we notice
            job = client.get(f"/jobs/{job['id']}").json()
        observed = time.perf_counter()
        # CPU up to the end of the job (reading the results back afterwards is not counted).
        worker_cpu = cpu_seconds(worker_pid) - cpu_before[0]
        api_cpu = cpu_seconds(api_pid) - cpu_before[1]
        finished_wall = datetime.fromisoformat(job["finished_at"]).timestamp()
        texts = {}
        cursor = None
        while True:
            params = {"limit": 1000} | ({"cursor": cursor} if cursor else {})
            page = client.get(f"/jobs/{job['id']}/results", params=params).json()
            for item in page["items"]:
                texts[item["filename"].rsplit("/", 1)[-1]] = item["text"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
    peak = sampler.stop()
    elapsed = finished_wall - started_wall
    correct = sum(texts.get(name) == str(label) for name, label in zip(names, labels, strict=True))
    return {
        "documents": job["total"],
        "status": job["status"],
        "upload_s": uploaded - started,
        "end_to_end_s": elapsed,
        "observed_s": observed - started,
        "docs_per_s": job["total"] / elapsed,
        "peak_rss_mib": peak / 2**20,
        "accuracy": correct / len(names),
        "needs_review": job["needs_review"],
        "worker_cpu_ms": worker_cpu * 1000 / job["total"],
        "api_cpu_ms": api_cpu * 1000 / job["total"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--model-dir", type=Path, default=REPO / "models" / "default")
    parser.add_argument("--modes", nargs="+", default=["files", "zip"], choices=["files", "zip"])
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes")
    parser.add_argument("--repeat", type=int, default=2, help="jobs per upload mode")
    parser.add_argument("--batch-size", type=int, default=512, help="documents per task")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    parser.add_argument(
        "--fields", type=int, default=0,
        help="upload fields of this many digits (boxed or not) instead of single digits",
    )  # fmt: skip
    parser.add_argument(
        "--realistic", action="store_true",
        help="upload cheque amounts scanned at 300 dpi (PNG and JPEG) instead",
    )  # fmt: skip
    parser.add_argument(
        "--cheques", action="store_true",
        help="upload issue 8's cheque amounts (1-7 digits, half boxed, noise, tilt, blur, JPEG)",
    )  # fmt: skip
    args = parser.parse_args(argv)

    images, all_labels = mnist_test_set()
    count = min(args.count, len(images))
    if args.realistic or args.cheques:
        kind = "scan300" if args.realistic else "cheque"
        names, pngs, labels = scan_documents(images, all_labels, count, kind)
    elif args.fields:
        names, pngs, labels = field_documents(images, all_labels, count, args.fields)
    else:
        names = [f"mnist_{i:05d}.png" for i in range(count)]
        pngs = [scan_png(images[i]) for i in range(count)]
        labels = [int(label) for label in all_labels[:count]]
    bodies = {}
    if "files" in args.modes:
        bodies["files"] = multipart(
            [(n, d, "image/jpeg" if n.endswith(".jpg") else "image/png")
             for n, d in zip(names, pngs, strict=True)]
        )  # fmt: skip
    if "zip" in args.modes:
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:  # PNG is compressed already
            for name, data in zip(names, pngs, strict=True):
                zf.writestr(name, data)
        bodies["zip"] = multipart([("scans.zip", archive.getvalue(), "application/zip")])
    print(f"{count} documents, {sum(map(len, pngs)) / count:.0f} bytes per PNG on average")
    load = os.getloadavg()[0]

    results = {}
    with services.start_postgres() as postgres, services.start_redis() as redis:
        shared, env, work = platform_env(
            postgres, redis, "bench", model_dir=args.model_dir, job_batch_size=args.batch_size,
            max_job_files=max(20_000, count),
        )  # fmt: skip
        port = services.free_port()
        api = start_api(env, port, work / "api.log")
        try:
            log = work / "worker.log"
            with celery_worker(log, concurrency=args.concurrency, **shared) as worker:
                idle_rss = RssSampler(worker.proc.pid).sample() / 2**20
                runs = [(mode, i) for i in range(1, args.repeat + 1) for mode in bodies]
                for mode, i in runs:
                    body = bodies[mode]
                    print(f"uploading {mode}: {len(body) / 2**20:.1f} MiB body ...", flush=True)
                    base = f"http://127.0.0.1:{port}"
                    result = run_job(base, body, worker.proc.pid, api.pid, labels, names)
                    mode = f"{mode} (run {i})"
                    results[mode] = result
                    print(
                        f"  {mode}: {result['docs_per_s']:.0f} docs/s end to end "
                        f"({result['end_to_end_s']:.2f} s; upload {result['upload_s']:.2f} s), "
                        f"peak worker RSS {result['peak_rss_mib']:.0f} MiB, "
                        f"accuracy {result['accuracy']:.2%}, status {result['status']}, "
                        f"CPU ms per document: worker {result['worker_cpu_ms']:.3f}, "
                        f"API {result['api_cpu_ms']:.3f}",
                        flush=True,
                    )
        finally:
            services.stop(api)

    from recognition import ModelCard

    card = ModelCard.load(args.model_dir)
    rows = [
        f"| {mode} | {r['documents']:,} | {r['upload_s']:.2f} | {r['end_to_end_s']:.2f} | "
        f"**{r['docs_per_s']:,.0f}** | {r['peak_rss_mib']:.0f} | {r['accuracy']:.2%} | "
        f"{r['needs_review']} | {r['worker_cpu_ms']:.2f} | {r['api_cpu_ms']:.2f} |"
        for mode, r in results.items()
    ]
    what = (
        "cheque amounts of 1-7 MNIST test digits scanned at 300 dpi (`--realistic`:"
        " `training.synthetic_fields.scan_spec`, digits 70-110 px tall, half boxed, tilt up to"
        f" 3 degrees, blur, half JPEG and half PNG, ~{sum(map(len, pngs)) // count} bytes each),"
        if args.realistic
        else "cheque amounts of 1-7 MNIST test digits as issue 8's bar draws them (`--cheques`:"
        " `training.synthetic_fields` 'cheque', digits ~28-60 px tall, half boxed, noise, tilt up"
        f" to 3 degrees, blur, JPEG or PNG, ~{sum(map(len, pngs)) // count} bytes each),"
        if args.cheques
        else f"fields of {args.fields} MNIST test digits (half in a printed box; `--fields"
        f" {args.fields}`), PNG, ~{sum(map(len, pngs)) // count} bytes each,"
        if args.fields
        else "MNIST test digits rendered as scans (dark ink on light paper, 56x56 PNG,"
        f" ~{sum(map(len, pngs)) // count} bytes each)"
    )
    body = f"""
`benchmarks/bulk_throughput.py` (`make bench-bulk`): {count:,} {what} in one
upload, end to end through Postgres 15 + Redis + local storage, the API as one uvicorn process and
ONE Celery worker (prefork, `--concurrency {args.concurrency}`), {args.batch_size} documents per
task; model `{card.version}`. End to end = upload start to the job's `finished_at` (stamped in the
transaction that commits the last batch). Peak worker RSS = sum over the worker's process tree
(idle after model load: {idle_rss:.0f} MiB). Client, API, worker, Postgres and Redis share the
same cores (1-minute load average before the run: {load:.2f}).

| upload as | documents | upload (s) | end to end (s) | documents/s | peak worker RSS (MiB) \
| accuracy of stored results | needs review | worker CPU ms/doc | API CPU ms/doc |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
{chr(10).join(rows)}

`files`: one multipart request with {count:,} `files` parts; `zip`: one multipart request with
one ZIP (stored, not deflated: PNG is compressed already) holding them. Documents are committed
and enqueued every {args.batch_size} while the upload streams, so workers start before it ends.
Bar: >= 1,000 documents/s, peak worker RSS <= 1 GiB, stored accuracy >= 99.3%.
"""
    print(body)
    if not args.no_write:
        if args.realistic:
            write_section("bulk-scans", "Bulk path: fields scanned at 300 dpi", body)
        elif args.cheques:
            write_section("bulk-cheques", "Bulk path: cheque amounts", body)
        elif args.fields:
            write_section("bulk-fields", f"Bulk path: fields of {args.fields} digits", body)
        else:
            write_section("bulk", "Bulk path", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
