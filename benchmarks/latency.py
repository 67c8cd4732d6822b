"""Latency and throughput of the synchronous fast path, against the seed's way, in one run.

Starts the real API (one uvicorn process) and the baseline server (benchmarks/baseline_server.py:
the same endpoints, but `model.predict` per request on the Keras model), each alone on a free
loopback port, and loads each with realistic requests at concurrency 1, 8 and 32:

- POST /predict-drawing: MNIST test digits drawn as a browser canvas would send them — a PNG data
  URL, dark strokes on a transparent background, at varied sizes and positions: at 140x140, as
  the canvas page sends its 280x280 drawing, and at the full 280x280, as a client sending the
  whole canvas would;
- POST /predict: MNIST test digits as scans — dark ink on noisy light paper, JPEG, varied sizes.

The load generator is a raw asyncio HTTP/1.1 keep-alive client (one connection per concurrent
user) in this process; it shares the machine's cores with the server under test. Prints p50/p99
latency, requests/s and accuracy per endpoint and concurrency, and writes the table into the
"Synchronous fast path" section of docs/benchmarks.md.

    .venv/bin/python benchmarks/latency.py [--model-dir models/default] [--quick]
"""

import argparse
import asyncio
import base64
import json
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from devtools.api_server import start_uvicorn  # noqa: E402
from devtools.mnist import mnist_sample as mnist_test  # noqa: E402
from devtools.report import write_section  # noqa: E402
from devtools.scans import canvas_png  # noqa: E402
from digitflow.embedded import stop  # noqa: E402
from recognition.synthetic import render_scan  # noqa: E402

CONCURRENCY = (1, 8, 32)
PAGE_SEND_SIZE = 140  # web/static/canvas.js sends its 280x280 drawing at this size
SECTION = "Synchronous fast path"


# ---------------------------------------------------------------------------- request payloads


def http_request(path: str, body: bytes, content_type: str) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def drawing_requests(images, rng, side: int) -> list[bytes]:
    out = []
    for digit in images:
        url = "data:image/png;base64," + base64.b64encode(canvas_png(digit, rng, side)).decode()
        out.append(http_request("/predict-drawing", json.dumps({"image": url}).encode(),
                                "application/json"))
    return out


def upload_requests(images, rng) -> list[bytes]:
    boundary = "digitflowbenchmarkboundary"
    out = []
    for digit in images:
        body = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="scan.jpg"\r\n'
            f"Content-Type: image/jpeg\r\n\r\n"
        ).encode() + render_scan(digit, rng, "JPEG") + f"\r\n--{boundary}--\r\n".encode()
        out.append(http_request("/predict", body, f"multipart/form-data; boundary={boundary}"))
    return out


# ------------------------------------------------------------------------------ load generator


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
    return status, await reader.readexactly(length)


@dataclass
class Result:
    latencies: list[float]
    seconds: float
    correct: int
    errors: int

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) * 1000


async def load(port: int, requests: list[bytes], labels: np.ndarray, total: int,
               concurrency: int) -> Result:
    latencies, counter, correct, errors = [], iter(range(total)), 0, 0

    async def user() -> None:
        nonlocal correct, errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for i in counter:
                k = i % len(requests)
                started = time.perf_counter()
                writer.write(requests[k])
                status, body = await read_response(reader)
                latencies.append(time.perf_counter() - started)
                if status != 200:
                    errors += 1
                elif json.loads(body)["digit"] == labels[k]:
                    correct += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(user() for _ in range(concurrency)))
    return Result(latencies, time.perf_counter() - started, correct, errors)


# ----------------------------------------------------------------------------------- servers


def start_server(app: str, model_dir: Path, app_dir: Path = REPO) -> tuple[subprocess.Popen, int]:
    # The load generator is one client address: lift its rate limit (docs/security.md).
    env = {"MODEL_DIR": str(model_dir),
           "RATE_LIMIT_OVERRIDES": json.dumps({"127.0.0.1": "100000000/minute"})}  # fmt: skip
    options = ("--workers", "1", "--loop", "uvloop", "--http", "httptools", "--no-access-log",
               "--log-level", "warning")  # fmt: skip
    return start_uvicorn(app, env=env, options=options, app_dir=app_dir)


# ------------------------------------------------------------------------------------ report


def table(rows: list[dict]) -> str:
    lines = [
        "| server | endpoint | concurrency | requests | p50 ms | p99 ms | requests/s | accuracy |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['server']} | `{r['endpoint']}` | {r['concurrency']} | {r['requests']} | "
            f"{r['p50']:.2f} | {r['p99']:.2f} | {r['rps']:.0f} | {r['accuracy']:.1%} |"
        )
    return "\n".join(lines)


def load_average() -> str:
    """The 1-minute load average: how busy the machine was with other work around the run."""
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "unknown"


def write_doc(rows: list[dict], model_dir: Path, note: str, loads: tuple[str, str]) -> None:
    by = {(r["server"], r["endpoint"], r["concurrency"]): r for r in rows}
    speedups = [
        f"`{endpoint}` at concurrency {c}: **{by[('api', endpoint, c)]['rps'] / base['rps']:.0f}x**"
        for (server, endpoint, c), base in by.items()
        if server == "baseline" and ("api", endpoint, c) in by
    ]
    shown_dir = model_dir.relative_to(REPO) if model_dir.is_relative_to(REPO) else model_dir
    body = "\n".join([
        f"Measured by `benchmarks/latency.py` (`make bench-latency`). Model: `{shown_dir}`.",
        "",
        "- **api**: `uvicorn api.main:app` — one process, uvloop + httptools, no access log; "
        "micro-batched LiteRT inference in a worker thread.",
        "- **baseline**: `benchmarks/baseline_server.py` — the same decoding and normalisation, "
        "but the seed's way of inference: Keras `model.predict` on each request's one image.",
        "- Requests: `/predict-drawing` sends MNIST test digits drawn as a canvas PNG data URL "
        "(dark strokes on transparency, random size and position) at 140x140, the size the "
        "canvas page sends, and at the full 280x280 (a client that sends the whole canvas: "
        "decoding its PNG alone costs ~0.9 ms of CPU on this machine); `/predict` sends "
        "them as JPEG scans (`recognition.synthetic.render_scan`: dark ink on uneven, noisy "
        "paper). Accuracy is the share of answers that name the MNIST label.",
        "- The load generator (a raw asyncio HTTP/1.1 keep-alive client, one connection per "
        "concurrent user) runs on the same cores as the server, so the server gets less than "
        "the whole machine: these figures understate it.",
        f"- 1-minute load average of the machine just before / after the run: {loads[0]} / "
        f"{loads[1]} (the benchmark alone adds up to ~2; more means other work shared the cores).",
        *([f"- {note}"] if note else []),
        "",
        table(rows),
        "",
        "Throughput of the API over the baseline: " + "; ".join(speedups) + ".",
    ])
    write_section("latency", SECTION, body)


# -------------------------------------------------------------------------------------- main


def run(args: argparse.Namespace) -> list[dict]:
    rng = np.random.default_rng(7)
    images, labels = mnist_test(args.distinct)
    payloads = {
        "/predict-drawing": drawing_requests(images, rng, PAGE_SEND_SIZE),
        "/predict-drawing (280x280)": drawing_requests(images, rng, 280),
        "/predict": upload_requests(images, rng),
    }
    sizes = {e: statistics.mean(len(r) for r in reqs) for e, reqs in payloads.items()}
    print("mean request size: " + ", ".join(f"{e} {s / 1024:.1f} KiB" for e, s in sizes.items()))
    plans = [
        ("api", "api.main:app", REPO, args.requests),
        ("baseline", "baseline_server:app", REPO / "benchmarks", args.baseline_requests),
    ]
    rows = []
    for server_name, app, app_dir, counts in plans:
        if args.only and server_name != args.only:
            continue
        server, port = start_server(app, args.model_dir, app_dir)
        try:
            for endpoint, requests in payloads.items():
                asyncio.run(load(port, requests, labels, min(200, counts[0]), 8))  # warm up
                for c, count in zip(CONCURRENCY, counts, strict=True):
                    result = asyncio.run(load(port, requests, labels, count, c))
                    row = {
                        "server": server_name, "endpoint": endpoint, "concurrency": c,
                        "requests": count, "p50": result.percentile(50),
                        "p99": result.percentile(99), "rps": result.rps,
                        "accuracy": result.correct / count, "errors": result.errors,
                    }
                    rows.append(row)
                    print(f"{server_name:8} {endpoint:17} c={c:<3} n={count:<6} "
                          f"p50 {row['p50']:7.2f} ms  p99 {row['p99']:7.2f} ms  "
                          f"{row['rps']:7.0f} req/s  accuracy {row['accuracy']:.1%}  "
                          f"errors {result.errors}", flush=True)
        finally:
            stop(server)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-dir", type=Path, default=REPO / "models" / "default")
    parser.add_argument("--quick", action="store_true", help="few requests; no doc written")
    parser.add_argument("--only", choices=["api", "baseline"], help="one server; no doc written")
    parser.add_argument("--note", default="", help="a line added to the doc (e.g. machine load)")
    parser.add_argument("--distinct", type=int, default=500, help="distinct digits per endpoint")
    args = parser.parse_args(argv)
    args.model_dir = args.model_dir.resolve()
    scale = 0.1 if args.quick else 1
    args.requests = [int(n * scale) for n in (2000, 8000, 16000)]
    args.baseline_requests = [int(n * scale) for n in (200, 400, 400)]
    load_before = load_average()
    rows = run(args)
    if not (args.quick or args.only):
        write_doc(rows, args.model_dir, args.note, (load_before, load_average()))
        print("wrote the latency section of docs/benchmarks.md")
    return 0 if not any(r["errors"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
