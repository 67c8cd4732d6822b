"""Where a `/predict-drawing` request's CPU goes, measured so that a busy shared machine does not
change the answer much: CPU seconds, not wall-clock.

1. Stages, in this process: each step of the hot path run a few hundred times on the full
   280x280 canvas PNG, timed with `time.process_time` (this thread's CPU, so other processes
   on the machine do not count): JSON + base64, PNG decode, segmentation, the model, the answer.
2. The server: the API (uvicorn or granian, API keys required, the benchmark key given a high
   limit with RATE_LIMIT_OVERRIDES) under `wrk` with a Bearer key; the CPU time of every
   server process (utime + stime from /proc) and of `wrk` itself over N requests, per request.
   The implied requests/s on two cores is 2,000 ms / (server + wrk ms a request): what the box
   would do if nothing else ran on it.

    .venv/bin/python benchmarks/fastpath_cpu.py [--server uvicorn] [--workers 2] [--seconds 8]
"""

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from benchmarks.fastpath_external import (  # noqa: E402
    canvas_body,
    client_setup,
    multiprocess,
    servers,
    wait_ready,
    wrk,
)
from devtools.report import write_section  # noqa: E402

SECTION = "fastpath-cpu"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
THREAD_GROUPS = ("event loop", "batch threads", "server threads", "supervisor")


def cpu_ms(step, repeat: int) -> float:
    step()
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        for _ in range(repeat):
            step()
        best = min(best, (time.process_time() - started) / repeat * 1000)
    return best


def stages(repeat: int) -> list[tuple[str, float]]:
    """CPU ms of each step of the hot path, in this process."""
    from api.predict.service import parse_drawing, reading_json
    from digitflow.settings import PlatformSettings
    from recognition import (
        WORK_MIN_SIDE,
        Recognizer,
        decode_data_url,
        decode_image,
        find_digits,
        read_segmentations,
    )

    png, body = canvas_body()
    recognizer = Recognizer(PlatformSettings().model_dir)
    gray = decode_image(png, 1_000_000, WORK_MIN_SIDE)
    field = find_digits(gray)
    reading = read_segmentations([field], recognizer)[0]
    steps = {
        "JSON body + base64": lambda: decode_data_url(parse_drawing(body, None).image),
        f"PNG decode to {gray.shape[1]}x{gray.shape[0]} luminance": lambda: decode_image(
            png, 1_000_000, WORK_MIN_SIDE
        ),
        "segmentation (find_digits, layout=auto)": lambda: find_digits(gray),
        "segmentation of a drawing (layout=auto, drawn=True: the canvas route)": lambda: (
            find_digits(gray, drawn=True)
        ),
        "segmentation (layout=digit)": lambda: find_digits(gray, "digit"),
        "model + review policy (read_segmentations, 1 field)": lambda: read_segmentations(
            [field], recognizer
        ),
        "answer JSON": lambda: reading_json(reading, recognizer.version),
    }
    return [(name, cpu_ms(step, repeat)) for name, step in steps.items()]


class _Answer:
    """The recognition core stubbed out: the framework's share of a request alone."""

    model_version = "stub"

    def __init__(self, reading):
        self.reading = reading

    async def predict(self, *args):
        return self.reading


async def _framework(app, body: bytes, key: str, repeat: int) -> float:
    headers = [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode()),
               (b"authorization", f"Bearer {key}".encode())]  # fmt: skip
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": "/predict-drawing", "raw_path": b"/predict-drawing",
             "root_path": "", "query_string": b"", "headers": headers,
             "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000)}  # fmt: skip
    statuses = []

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def one():
        await app({**scope, "state": {}}, receive, send)

    await one()
    assert statuses == [200], statuses
    started = time.process_time()
    for _ in range(repeat):
        await one()
    return (time.process_time() - started) / repeat * 1000


def framework_ms(key: str, repeat: int) -> tuple[float, float]:
    """CPU ms of the HTTP framework, middleware, auth and rate limit for one canvas request (in
    process, no server, the recognition core stubbed), and of the whole request with the real
    core (every thread of this process: the batch thread's hand-offs included)."""
    from api.config import Settings
    from api.main import create_app
    from recognition import WORK_MIN_SIDE, Recognizer, decode_image, find_digits, read_segmentations

    png, body = canvas_body()
    app = create_app(Settings(configure_logging=False))
    recognizer = Recognizer(app.state.settings.model_dir)
    field = find_digits(decode_image(png, 1_000_000, WORK_MIN_SIDE))
    stub = _Answer(read_segmentations([field], recognizer)[0])

    async def main() -> float:
        async with app.router.lifespan_context(app):
            state = app.state
            kept = state.budget, state.batcher
            state.budget = state.batcher = stub
            try:
                framework = await _framework(app, body, key, repeat * 5)
            finally:
                state.budget, state.batcher = kept
            return framework, await _framework(app, body, key, repeat)

    return asyncio.run(main())


def group_cpu_seconds(pgid: int) -> dict[str, float]:
    """utime + stime of every live process in the process group (the server and its workers),
    split by thread: each worker's main thread (its event loop), its batch and decode threads
    (named digitflow-*), the HTTP server's own threads, and the supervisor process (the
    group's leader, when it has workers)."""
    tasks: dict[int, list[tuple[int, int, str]]] = {}  # pid -> [(tid, ticks, name)]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[2]) != pgid:  # state, ppid, pgrp
                continue
            pid = int(stat.parent.name)
            tasks[pid] = [(int(task.parent.name), _ticks(task), _name(task))
                          for task in stat.parent.glob("task/[0-9]*/stat")]  # fmt: skip
        except OSError:  # the process or thread ended meanwhile
            continue
    split = dict.fromkeys(THREAD_GROUPS, 0)
    for pid, threads in tasks.items():
        for tid, ticks, name in threads:
            if pid == pgid and len(tasks) > 1:
                split["supervisor"] += ticks
            elif tid == pid:
                split["event loop"] += ticks
            else:  # the micro-batch and decode threads are named digitflow-*
                batch = name.startswith("digitflow")
                split["batch threads" if batch else "server threads"] += ticks
    return {group: ticks / CLOCK_TICKS for group, ticks in split.items()}


def _name(stat: Path) -> str:
    try:
        return (stat.parent / "comm").read_text().strip()
    except OSError:
        return ""


def _ticks(stat: Path) -> int:
    return sum(int(v) for v in stat.read_text().rsplit(")", 1)[1].split()[11:13])


def server_cpu(command: list[str], port: int, script: Path, args) -> list[dict]:
    proc = subprocess.Popen(command, cwd=REPO, env=dict(os.environ), start_new_session=True)
    rows = []
    try:
        wait_ready(port)
        wrk(port, script, 8, 2)  # warm-up
        for connections in args.connections:
            before = group_cpu_seconds(proc.pid)
            children = resource.getrusage(resource.RUSAGE_CHILDREN)
            result = wrk(port, script, connections, args.seconds)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            requests = result["rps"] * args.seconds
            spent = group_cpu_seconds(proc.pid)
            split = {group: (spent[group] - before[group]) / requests * 1000 for group in spent}
            wrk_ms = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
            rows.append({**result, "c": connections, "server_ms": sum(split.values()),
                         "split": split, "wrk_ms": wrk_ms / requests * 1000})  # fmt: skip
            print(rows[-1], flush=True)
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(30)
    return rows


def run(args) -> tuple[list, list, str]:
    key, script = client_setup(Path(tempfile.mkdtemp(prefix="digitflow-cpu-")))
    found = servers(args.port, args.workers)
    name = multiprocess(found, args.server)
    command = found[name]
    stage_rows = stages(args.repeat)
    framework, whole = framework_ms(key, args.repeat)
    stage_rows.append(("framework: HTTP app, middleware, auth, rate limit (core stubbed)",
                       framework))  # fmt: skip
    stage_rows.append(("whole request in process, one at a time (app + core, all threads)",
                       whole))  # fmt: skip
    return stage_rows, server_cpu(command, args.port, script, args), name


def report(stage_rows, rows, name: str, load: tuple[float, float]) -> str:
    lines = ["| step | CPU ms |", "| --- | --- |"]
    lines += [f"| {step} | {ms:.3f} |" for step, ms in stage_rows]
    lines += ["", f"Server: {name}, API keys required, the request carries a Bearer key.", "",
              "| concurrency | requests/s (wall) | p50 ms | p99 ms | server CPU ms a request | "
              "of which event loops / batch threads / server threads / supervisor | "
              "wrk CPU ms a request | implied requests/s on 2 cores |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for row in rows:
        implied = 2000 / (row["server_ms"] + row["wrk_ms"])
        split = " / ".join(f"{row['split'][group]:.2f}" for group in THREAD_GROUPS)
        lines.append(f"| {row['c']} | {row['rps']:.0f} | {row['p50']:.2f} | {row['p99']:.2f} | "
                     f"{row['server_ms']:.2f} | {split} | {row['wrk_ms']:.2f} | "
                     f"{implied:.0f} |")  # fmt: skip
    return (
        "`benchmarks/fastpath_cpu.py`: CPU time, not wall-clock, so a shared machine's load "
        "changes it little. Stages are timed in one process (`time.process_time`, best of 3); "
        "the server's CPU is utime + stime of all its processes over the wrk run, split by "
        "thread: each worker process's main thread (its event loop: HTTP, middleware, auth, "
        "JSON; with `BATCH_INLINE` also a lone request's decode, segmentation and model), its "
        "batch threads (the micro-batch: decode, segmentation, model), the HTTP server's own "
        "threads and the supervisor process. Load average "
        f"(1 min) before/after: {load[0]:.1f}/{load[1]:.1f}.\n\n" + "\n".join(lines)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", default="uvicorn", help="uvicorn, gunicorn or granian")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--port", type=int, default=8976)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    stage_rows, rows, name = run(args)
    text = report(stage_rows, rows, name, (load_before, os.getloadavg()[0]))
    print(text)
    if not args.no_write:
        write_section(SECTION, "Fast path: CPU a request (benchmarks/fastpath_cpu.py)", text)


if __name__ == "__main__":
    main()
