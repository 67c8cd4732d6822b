"""`digitflow recognize PATH...`: read image files, or folders of them, from the command line in
one batched model call. Prints results and errors only."""

import argparse
import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path

from digitflow.settings import PlatformSettings

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp"}
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
ZIP_ADVICE = "a ZIP archive: upload it as a bulk job (the /bulk page or POST /jobs)"


def register(commands) -> None:
    rec = commands.add_parser(
        "recognize", help="recognise the digit in each image file (folders are read recursively)"
    )
    rec.add_argument("paths", nargs="+", metavar="PATH", help="image files and/or folders")
    rec.add_argument("--json", action="store_true", help="one JSON object per line")
    rec.add_argument("--model-dir", type=Path, help="model directory (default: MODEL_DIR)")
    rec.set_defaults(handler=recognize)


def image_files(paths: list[str]) -> list[str]:
    """The paths, with each folder replaced by the image files below it (sorted)."""
    files = []
    for path in paths:
        if Path(path).is_dir():
            found = (p for p in Path(path).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            files += sorted(str(p) for p in found if p.is_file())
        else:
            files.append(path)
    return files


def read_image(path: str, settings: PlatformSettings):
    """One file -> a 28x28 digit; ImageError or OSError with a message for a person."""
    from recognition import ImageError, prepare

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise OSError(exc.strerror or str(exc)) from exc
    if data[:4] in ZIP_MAGIC:
        raise ImageError(ZIP_ADVICE)
    if len(data) > settings.max_image_bytes:
        raise ImageError(f"file is larger than {settings.max_image_bytes} bytes")
    return prepare(data, settings.max_image_pixels)


@contextmanager
def quiet_native_stderr():
    """LiteRT's C++ runtime writes an INFO line to fd 2 for every interpreter it builds; keep
    the command's output to results and errors."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def recognize(args: argparse.Namespace, settings: PlatformSettings) -> int:
    from recognition import ImageError, Recognizer

    files = image_files(args.paths)
    prepared, failures = {}, {}
    for path in files:
        try:
            prepared[path] = read_image(path, settings)
        except (OSError, ImageError) as exc:
            failures[path] = str(exc)
    with quiet_native_stderr():  # one batched call for every readable file
        recognizer = Recognizer(args.model_dir or settings.model_dir)
        answers = recognizer.predict(list(prepared.values())) if prepared else []
    predictions = dict(zip(prepared, answers, strict=True))
    for path in files:
        print_result(path, predictions.get(path), failures.get(path), args.json)
    if not files:
        print("no image files found", file=sys.stderr)
    return 1 if failures or not files else 0


def print_result(path: str, prediction, error: str | None, as_json: bool) -> None:
    if error is not None:
        row, line = {"file": path, "error": error}, f"{path}: error: {error}"
    else:
        row = {
            "file": path,
            "digit": prediction.digit,
            "confidence": round(prediction.confidence, 6),
            "needs_review": prediction.needs_review,
        }
        flag = "  needs review" if prediction.needs_review else ""
        line = f"{path}: {prediction.digit}  confidence {prediction.confidence:.4f}{flag}"
    if as_json:
        print(json.dumps(row))
    else:
        print(line, file=sys.stderr if error is not None else sys.stdout)
