"""The synchronous fast path under an external load generator (wrk), one server per run.

POST /predict-drawing with a full 280x280 canvas PNG of an MNIST test digit, at concurrency 1
and 32, keep-alive, against the API served by: uvicorn (1 process), uvicorn --workers N,
gunicorn with uvicorn workers, and granian --workers N (each when installed). Every API process
has its own model and micro-batcher. wrk runs on the same machine as the server (it needs a
core too), so the figures are what one box does with its load generator on board. Writes the
"Fast path on every core" section of docs/benchmarks.md with the machine's load average.

    .venv/bin/python benchmarks/fastpath_external.py [--seconds 10] [--workers N]
"""

import argparse
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from devtools.mnist import mnist_sample as mnist_test  # noqa: E402
from devtools.report import write_section  # noqa: E402
from devtools.scans import canvas_png  # noqa: E402

SECTION = "fastpath-external"
WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"
local f = io.open("{body}", "rb")
wrk.body = f:read("*all")
f:close()
"""
# The benchmark client's own limit, for its address and its key: the documented
# RATE_LIMIT_OVERRIDES setting (the key's default, 6000/minute, is below the bar's 1,000/s).
CLIENT_LIMIT = "100000000/minute"


def canvas_body() -> tuple[bytes, bytes]:
    images, _ = mnist_test(1, seed=7)
    png = canvas_png(images[0], np.random.default_rng(7), 280)
    body = json.dumps({"image": "data:image/png;base64," + base64.b64encode(png).decode()})
    return png, body.encode()


def prepare(data_dir: Path) -> tuple[str, str]:
    """A migrated database holding one submitter key (so the API requires keys): (key id, key)."""
    from digitflow import keys
    from digitflow.db import make_sessionmaker
    from digitflow.db.migrations import upgrade

    url = f"sqlite:///{data_dir / 'digitflow.db'}"
    upgrade(url)
    with make_sessionmaker(url).begin() as session:
        created = keys.create_key(session, "bench", "submitter", "fastpath benchmark")
        return created.row.key_id, created.key


def client_setup(folder: Path) -> tuple[str, Path]:
    """Keys required (a database with one key), the client's limit lifted, the wrk script."""
    key_id, key = prepare(folder)
    overrides = json.dumps({"127.0.0.1": CLIENT_LIMIT, key_id: CLIENT_LIMIT})
    os.environ.update(DATA_DIR=str(folder), LOG_LEVEL="WARNING", RATE_LIMIT_OVERRIDES=overrides)
    (folder / "body.json").write_bytes(canvas_body()[1])
    script = folder / "post.lua"
    script.write_text(WRK_SCRIPT.format(key=key, body=folder / "body.json"))
    return key, script


def servers(port: int, workers: int) -> dict[str, list[str]]:
    py, bind = sys.executable, ["--host", "127.0.0.1", "--port", str(port)]
    quiet = ["--no-access-log", "--log-level", "warning"]
    found = {
        "uvicorn, 1 process": [py, "-m", "uvicorn", "api.main:app", *bind, *quiet],
        f"uvicorn --workers {workers}": [
            py, "-m", "uvicorn", "api.main:app", *bind, *quiet, "--workers", str(workers),
        ],
    }  # fmt: skip
    if shutil.which("gunicorn", path=str(Path(py).parent)):
        found[f"gunicorn -w {workers} (uvicorn workers)"] = [
            str(Path(py).parent / "gunicorn"), "api.main:app",
            "-k", "uvicorn.workers.UvicornWorker", "-w", str(workers),
            "-b", f"127.0.0.1:{port}", "--log-level", "warning",
        ]  # fmt: skip
    if shutil.which("granian", path=str(Path(py).parent)):
        found[f"granian --workers {workers}"] = [
            str(Path(py).parent / "granian"), "--interface", "asgi", "api.main:app",
            "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
            "--log-level", "warning", "--no-ws",
        ]  # fmt: skip
    return found


def multiprocess(found: dict[str, list[str]], server: str) -> str:
    """The name of `server`'s row with one process per worker (not "uvicorn, 1 process")."""
    return next(name for name in found if name.startswith(server) and "1 process" not in name)


def wait_ready(port: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/model-info", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError("server not ready")


def wrk(port: int, script: Path, connections: int, seconds: int) -> dict:
    threads = min(connections, 2)
    out = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--latency",
         "-s", str(script), f"http://127.0.0.1:{port}/predict-drawing"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": _ms(re.search(r"\s50%\s+([\d.]+\w+)", out).group(1)),
        "p99": _ms(re.search(r"\s99%\s+([\d.]+\w+)", out).group(1)),
        "errors": "Non-2xx" in out or "Socket errors" in out,
    }


def _ms(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def measure(name: str, command: list[str], port: int, script: Path, seconds: int) -> list[dict]:
    proc = subprocess.Popen(command, cwd=REPO, env=dict(os.environ), start_new_session=True)
    try:
        wait_ready(port)
        wrk(port, script, 8, 2)  # warm-up: every process loaded and batching
        rows = []
        for connections in (1, 32):
            result = wrk(port, script, connections, seconds)
            rows.append({"server": name, "c": connections, **result})
            print(rows[-1], flush=True)
        return rows
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--port", type=int, default=8975)
    parser.add_argument("--only", help="run only servers whose name contains this")
    parser.add_argument(
        "--rounds", type=int, default=1,
        help="run the servers in turn this many times (the load of a shared machine drifts); "
        "each row is then the mean over the rounds, with their range",
    )  # fmt: skip
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    png = canvas_body()[0]
    _, script = client_setup(Path(tempfile.mkdtemp(prefix="digitflow-wrk-")))
    load_before = os.getloadavg()[0]
    rounds: dict[tuple, list[dict]] = {}
    for _ in range(args.rounds):
        for name, command in servers(args.port, args.workers).items():
            if args.only is None or args.only in name:
                for row in measure(name, command, args.port, script, args.seconds):
                    rounds.setdefault((row["server"], row["c"]), []).append(row)
    report([mean_row(rows) for rows in rounds.values()], len(png), args, load_before,
           os.getloadavg()[0])  # fmt: skip


def mean_row(rows: list[dict]) -> dict:
    """One server and concurrency over the rounds: means, and the range of requests/s."""
    mean = {key: sum(r[key] for r in rows) / len(rows) for key in ("rps", "p50", "p99")}
    rps = [r["rps"] for r in rows]
    return {**rows[0], **mean, "errors": sum(r["errors"] for r in rows),
            "range": f" ({min(rps):.0f}-{max(rps):.0f})" if len(rows) > 1 else ""}  # fmt: skip


def report(rows: list[dict], png_bytes: int, args, load_before: float, load_after: float):
    lines = [
        "| server | concurrency | requests/s | p50 ms | p99 ms |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        flag = " (errors)" if row["errors"] else ""
        lines.append(
            f"| {row['server']} | {row['c']} | {row['rps']:.0f}{row['range']}{flag} | "
            f"{row['p50']:.2f} | {row['p99']:.2f} |"
        )
    body = (
        f"`benchmarks/fastpath_external.py --rounds {args.rounds}`: `wrk` (keep-alive, "
        f"{args.seconds} s per row, mean (range) of {args.rounds} interleaved rounds, on the "
        f"same machine) posting one full 280x280 canvas PNG ({png_bytes} bytes, an MNIST test "
        "digit) as a data URL to `POST /predict-drawing`, with API keys required and the "
        "request carrying one (checked and counted), the client's own limit set by "
        "RATE_LIMIT_OVERRIDES. Load average (1 min) before/after the "
        f"run: {load_before:.1f}/{load_after:.1f} — the machine is shared, so these are lower "
        "bounds.\n\n" + "\n".join(lines)
    )
    print(body)
    if not args.no_write:
        write_section(SECTION, "Fast path on every core (external load generator)", body)


if __name__ == "__main__":
    main()
