"""`digitflow recognize PATH...`: read image files, or folders of them, from the command line in
one batched model call. Prints results and errors only.

Each file is a field: one digit or several side by side, as `--layout` says (the same reader as
the API and the workers).
"""

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
        "recognize", help="read the digits in each image file (folders are read recursively)"
    )
    rec.add_argument("paths", nargs="+", metavar="PATH", help="image files and/or folders")
    rec.add_argument("--json", action="store_true", help="one JSON object per line")
    rec.add_argument("--model-dir", type=Path, help="model directory (default: MODEL_DIR)")
    rec.add_argument(
        "--layout",
        default="auto",
        help="auto (default): one digit or a field, as found; digit: all ink is one digit; "
        "field: a row of digits; cheque: a whole cheque front (the amount box is found and "
        "read); or a document type's name (DOCUMENT_TYPES_DIR)",
    )
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


def read_file(path: str, settings: PlatformSettings) -> bytes:
    """One file's bytes; ImageError or OSError with a message for a person."""
    from recognition import ImageError

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise OSError(exc.strerror or str(exc)) from exc
    if data[:4] in ZIP_MAGIC:
        raise ImageError(ZIP_ADVICE)
    if len(data) > settings.max_image_bytes:
        raise ImageError(f"file is larger than {settings.max_image_bytes} bytes")
    return data


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


def _segment_files(args: argparse.Namespace, settings: PlatformSettings):
    """Segment every readable file; (segmentations by path, errors by path)."""
    from recognition import ImageError, segment_image

    segmentations, failures = {}, {}
    for path in args.files:
        try:
            data = read_file(path, settings)
            segmentations[path] = segment_image(data, args.layout, settings.max_image_pixels)
        except (OSError, ImageError) as exc:
            failures[path] = str(exc)
    return segmentations, failures


def _row(path: str, reading) -> tuple[dict, str]:
    row = {
        "file": path,
        "text": reading.text,
        "digit": reading.digit,
        "confidence": round(reading.confidence, 6),
        "needs_review": reading.needs_review,
        "review_reasons": list(reading.review_reasons),
        "digits": [
            {"digit": d.digit, "confidence": round(d.confidence, 6)} for d in reading.digits
        ],
    }
    reasons = ", ".join(reading.review_reasons)
    flag = f"  needs review ({reasons})" if reading.needs_review else ""
    return row, f"{path}: {reading.text}  confidence {reading.confidence:.4f}{flag}"


def _documents(args: argparse.Namespace, settings: PlatformSettings, doc_type, recognizer):
    """Whole pages of a document type: (readings by path, errors by path)."""
    from recognition import ImageError
    from recognition.doctypes import prepare_document, read_prepared

    prepared, failures = {}, {}
    for path in args.files:
        try:
            data = read_file(path, settings)
            prepared[path] = prepare_document(data, doc_type, settings.max_image_pixels)
        except (OSError, ImageError) as exc:
            failures[path] = str(exc)
    readings = read_prepared(list(prepared.values()), recognizer)
    return dict(zip(prepared, readings, strict=True)), failures


def _document_row(path: str, reading) -> tuple[dict, str]:
    body = reading.as_dict()
    for entry in body["fields"].values():
        entry.pop("probabilities", None)
        for digit in entry["digits"]:
            digit.pop("probabilities", None)
    row = {"file": path, **{k: v for k, v in body.items() if k != "digits"}}
    reasons = ", ".join(reading.review_reasons)
    flag = f"  needs review ({reasons})" if reading.needs_review else ""
    fields = "  ".join(f"{f.name}={f.text or '?'}" for f in reading.fields)
    return row, f"{path}: {fields}  confidence {reading.confidence:.4f}{flag}"


def _read(args: argparse.Namespace, settings: PlatformSettings, recognizer):
    """Readings and failures by path, and how to print a reading."""
    from recognition import LAYOUTS, read_segmentations
    from recognition.doctypes import DocumentTypes

    if args.layout not in LAYOUTS:
        doc_type = DocumentTypes(settings.resolved_document_types_dir).get(args.layout)
        if doc_type is None:  # as argparse says it for a bad choice (exit status 2)
            print(
                f"digitflow recognize: error: argument --layout: invalid choice: "
                f"{args.layout!r} (auto, digit, field, cheque or a document type)",
                file=sys.stderr,
            )
            raise SystemExit(2)
        return (*_documents(args, settings, doc_type, recognizer), _document_row)
    segmentations, failures = _segment_files(args, settings)
    # One batched model call for every readable file.
    readings = read_segmentations(list(segmentations.values()), recognizer)
    return dict(zip(segmentations, readings, strict=True)), failures, _row


def recognize(args: argparse.Namespace, settings: PlatformSettings) -> int:
    from recognition import Recognizer

    args.files = image_files(args.paths)
    with quiet_native_stderr():
        recognizer = Recognizer(args.model_dir or settings.model_dir)
    by_path, failures, _row = _read(args, settings, recognizer)
    for path in args.files:
        if path in failures:
            row, line = {"file": path, "error": failures[path]}, f"{path}: error: {failures[path]}"
        else:
            row, line = _row(path, by_path[path])
        if args.json:
            print(json.dumps(row))
        else:
            print(line, file=sys.stderr if path in failures else sys.stdout)
    if not args.files:
        print("no image files found", file=sys.stderr)
    return 1 if failures or not args.files else 0
