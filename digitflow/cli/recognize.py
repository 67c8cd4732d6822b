"""`digitflow recognize FILE...`: read images from the command line, one batched model call.

Each file is a field: one digit or several side by side, as `--layout` says (the same reader as
the API and the workers).
"""

import argparse
import json
import sys
from pathlib import Path

from digitflow.settings import PlatformSettings


def register(commands) -> None:
    rec = commands.add_parser("recognize", help="read the digit or digits in each image file")
    rec.add_argument("files", nargs="+", metavar="FILE")
    rec.add_argument("--json", action="store_true", help="one JSON object per line")
    rec.add_argument("--model-dir", type=Path, help="model directory (default: MODEL_DIR)")
    rec.add_argument(
        "--layout",
        choices=("auto", "digit", "field"),
        default="auto",
        help="auto (default): one digit or a field, as found; digit: all ink is one digit; "
        "field: a row of digits",
    )
    rec.set_defaults(handler=recognize)


def _segment_files(args: argparse.Namespace, settings: PlatformSettings):
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


def recognize(args: argparse.Namespace, settings: PlatformSettings) -> int:
    from recognition import Recognizer, read_segmentations

    recognizer = Recognizer(args.model_dir or settings.model_dir)
    segmentations, failures = _segment_files(args, settings)
    # One batched model call for every readable file.
    readings = read_segmentations(list(segmentations.values()), recognizer)
    by_path = dict(zip(segmentations, readings, strict=True))
    for path in args.files:
        if path in failures:
            row, line = {"file": path, "error": failures[path]}, f"{path}: error: {failures[path]}"
        else:
            row, line = _row(path, by_path[path])
        if args.json:
            print(json.dumps(row))
        else:
            print(line, file=sys.stderr if path in failures else sys.stdout)
    return 1 if failures else 0
