"""`/predict-drawing` latency while two clients loop decode bombs (issue 9's bar: p50 < 20 ms).

Every client is a separate `wrk` process with one keep-alive connection (a closed loop: the next
request leaves when the answer arrives), so the load generator's own event loop never delays the
canvas client's timings. The bombs are near-limit lossless WebPs (2,800 x 2,800 px in a few
hundred bytes) posted to `POST /predict`; the canvas client posts the full 280x280 canvas PNG.
The server is the API as `digitflow run` serves it (uvicorn, one process per core) unless
`--server uvicorn`. Writes the "fastpath-attack" section of docs/benchmarks.md.

    .venv/bin/python benchmarks/fastpath_attack.py [--seconds 10]
"""

import argparse
import io
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from benchmarks.fastpath_external import (  # noqa: E402
    client_setup,
    multiprocess,
    servers,
    wait_ready,
    wrk,
)
from devtools.report import write_section  # noqa: E402

SECTION = "fastpath-attack"
BOUNDARY = "fastpathattackboundary"
POST_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "{content_type}"
local f = io.open("{body}", "rb")
wrk.body = f:read("*all")
f:close()
"""


def bomb_upload() -> bytes:
    out = io.BytesIO()
    Image.new("L", (2800, 2800), 255).save(out, "WEBP", lossless=True)
    head = (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="b.webp"\r\n'
            "Content-Type: image/webp\r\n\r\n").encode()  # fmt: skip
    return head + out.getvalue() + f"\r\n--{BOUNDARY}--\r\n".encode()


def script(folder: Path, name: str, body: bytes, content_type: str) -> Path:
    (folder / f"{name}.body").write_bytes(body)
    path = folder / f"{name}.lua"
    path.write_text(POST_SCRIPT.format(content_type=content_type, body=folder / f"{name}.body"))
    return path


def attackers(port: int, bomb: Path, seconds: int) -> list[subprocess.Popen]:
    command = ["wrk", "-t", "1", "-c", "1", "-d", f"{seconds}s", "-s", str(bomb),
               f"http://127.0.0.1:{port}/predict"]  # fmt: skip
    return [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(2)]


def bomb_rate(procs: list[subprocess.Popen]) -> float:
    total = 0.0
    for proc in procs:
        out, _ = proc.communicate()
        total += float(out.split("Requests/sec:")[1].split()[0])
    return total


def run(args) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="digitflow-attack-"))
    _, canvas = client_setup(folder)  # keys required; the canvas client sends one
    bomb = script(folder, "bomb", bomb_upload(), f"multipart/form-data; boundary={BOUNDARY}")
    found = servers(args.port, args.workers)
    name = multiprocess(found, args.server)
    proc = subprocess.Popen(found[name], cwd=REPO, env=dict(os.environ), start_new_session=True)
    try:
        wait_ready(args.port)
        wrk(args.port, canvas, 1, 2)  # warm-up
        quiet = wrk(args.port, canvas, 1, args.seconds)
        loops = attackers(args.port, bomb, args.seconds + 2)
        attacked = wrk(args.port, canvas, 1, args.seconds)
        return {"server": name, "quiet": quiet, "attacked": attacked, "bombs": bomb_rate(loops)}
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(30)


def report(out: dict, load: tuple[float, float]) -> str:
    quiet, attacked = out["quiet"], out["attacked"]
    return f"""`benchmarks/fastpath_attack.py`: {out["server"]}, API keys in place, default limits (the
canvas client and the attackers share 127.0.0.1, so the per-address limit is lifted by
RATE_LIMIT_OVERRIDES for all of them; the decode-heavy limit, 5 per 5 s, is never lifted).
Each client is its own `wrk` process with one connection. Load average (1 min) before/after:
{load[0]:.1f}/{load[1]:.1f}.

| `/predict-drawing`, one client | p50 ms | p99 ms | requests/s |
| --- | --- | --- | --- |
| alone | {quiet["p50"]:.2f} | {quiet["p99"]:.2f} | {quiet["rps"]:.0f} |
| while two clients loop near-limit WebP bombs on `/predict` ({out["bombs"]:.1f} bombs/s answered: 422 when decoded (a blank page), 429 past the decode-heavy limit) | {attacked["p50"]:.2f} | {attacked["p99"]:.2f} | {attacked["rps"]:.0f} |"""  # noqa: E501


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", default="uvicorn", help="uvicorn, gunicorn or granian")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--port", type=int, default=8977)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    text = report(run(args), (load_before, os.getloadavg()[0]))
    print(text)
    if not args.no_write:
        write_section(SECTION, "Fast path under decode bombs (benchmarks/fastpath_attack.py)", text)


if __name__ == "__main__":
    main()
