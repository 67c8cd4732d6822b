"""The `digitflow` command.

    digitflow recognize FILE...   print each image's digits, confidence and review flag
    digitflow migrate             apply database migrations (alembic upgrade head)
    digitflow run                 migrate, then run the API and a worker until Ctrl-C
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from digitflow.settings import PlatformSettings


def _read_files(args: argparse.Namespace, settings: PlatformSettings):
    """Segment every readable file; (segmentations by path, errors by path)."""
    from recognition import ImageError, segment_image

    segmentations, failures = {}, {}
    for path in args.files:
        try:
            data = Path(path).read_bytes()
            if len(data) > settings.max_image_bytes:
                raise ImageError(f"file is larger than {settings.max_image_bytes} bytes")
            segmentations[path] = segment_image(data, args.layout, settings.max_image_pixels)
        except (OSError, ImageError) as exc:
            failures[path] = str(exc)
    return segmentations, failures


def recognize(args: argparse.Namespace, settings: PlatformSettings) -> int:
    from recognition import Recognizer, read_segmentations

    recognizer = Recognizer(args.model_dir or settings.model_dir)
    segmentations, failures = _read_files(args, settings)
    # One batched model call for every readable file.
    readings = dict(
        zip(segmentations, read_segmentations(list(segmentations.values()), recognizer),
            strict=True)
    )  # fmt: skip
    for path in args.files:
        if path in failures:
            row = {"file": path, "error": failures[path]}
            line = f"{path}: error: {failures[path]}"
        else:
            r = readings[path]
            row = {
                "file": path,
                "text": r.text,
                "digit": r.digit,
                "confidence": round(r.confidence, 6),
                "needs_review": r.needs_review,
                "review_reasons": list(r.review_reasons),
                "digits": [
                    {"digit": d.digit, "confidence": round(d.confidence, 6)} for d in r.digits
                ],
            }
            flag = f"  needs review ({', '.join(r.review_reasons)})" if r.needs_review else ""
            line = f"{path}: {r.text}  confidence {r.confidence:.4f}{flag}"
        if args.json:
            print(json.dumps(row))
        else:
            print(line, file=sys.stderr if path in failures else sys.stdout)
    return 1 if failures else 0


def migrate(args: argparse.Namespace, settings: PlatformSettings) -> int:
    from digitflow.db.migrations import upgrade

    upgrade(settings.resolved_database_url)
    print(f"database at head: {_redact(settings.resolved_database_url)}", file=sys.stderr)
    return 0


def run(args: argparse.Namespace, settings: PlatformSettings) -> int:
    """Migrations, then the API (uvicorn) and a Celery worker (with the sweeper's beat) as child
    processes; Ctrl-C or SIGTERM stops both cleanly. Embedded defaults unless DATABASE_URL,
    REDIS_URL and the storage settings point at real servers."""
    migrate(args, settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)  # beat's schedule file lives there
    python = sys.executable
    children = {
        "api": [python, "-m", "uvicorn", "api.main:app", "--host", args.host,
                "--port", str(args.port)],
        "worker": [python, "-m", "celery", "-A", "worker.celery_app", "worker", "--beat",
                   "-Q", "documents", "--concurrency", str(args.concurrency),
                   "--loglevel", "INFO", "--without-gossip", "--without-mingle"],
    }  # fmt: skip
    print(
        f"DigitFlow: API at http://{args.host}:{args.port} (bulk upload page /bulk), "
        f"database {_redact(settings.resolved_database_url)}, broker "
        f"{'redis' if settings.redis_url else 'filesystem'}, storage {settings.storage_backend}"
        " - Ctrl-C stops",
        file=sys.stderr,
    )
    # Own sessions: a terminal's Ctrl-C reaches only this process, which stops them in order.
    procs = {
        name: subprocess.Popen(command, start_new_session=True)
        for name, command in children.items()
    }
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    exited = None
    while not stopping and exited is None:
        exited = next((name for name, p in procs.items() if p.poll() is not None), None)
        time.sleep(0.2)
    if exited:
        print(f"{exited} exited with code {procs[exited].returncode}; stopping", file=sys.stderr)
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # uvicorn: graceful; celery: warm shutdown
    deadline = time.monotonic() + 20
    for proc in procs.values():
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return 1 if exited else 0


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="digitflow", description=__doc__.split("\n")[1].strip())
    commands = parser.add_subparsers(dest="command", required=True)

    rec = commands.add_parser("recognize", help="read the digit or digits in each image file")
    rec.add_argument("files", nargs="+", metavar="FILE")
    rec.add_argument(
        "--layout",
        choices=("auto", "digit", "field"),
        default="auto",
        help="auto (default): one digit or a field, as found; digit: all ink is one digit; "
        "field: a row of digits",
    )
    rec.add_argument("--json", action="store_true", help="one JSON object per line")
    rec.add_argument("--model-dir", type=Path, help="model directory (default: MODEL_DIR)")
    rec.set_defaults(handler=recognize)

    mig = commands.add_parser("migrate", help="apply database migrations (alembic upgrade head)")
    mig.set_defaults(handler=migrate)

    srv = commands.add_parser("run", help="migrate, then run the API and a worker until Ctrl-C")
    srv.add_argument("--host", default="127.0.0.1")
    srv.add_argument("--port", type=int, default=8000)
    srv.add_argument("--concurrency", type=int, default=2, help="worker processes")
    srv.set_defaults(handler=run)

    args = parser.parse_args(argv)
    return args.handler(args, PlatformSettings())


if __name__ == "__main__":
    sys.exit(main())
