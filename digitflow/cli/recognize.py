"""`digitflow recognize FILE...`: read images from the command line, one batched model call."""

import argparse
import json
import sys
from pathlib import Path

from digitflow.settings import PlatformSettings


def register(commands) -> None:
    rec = commands.add_parser("recognize", help="recognise the digit in each image file")
    rec.add_argument("files", nargs="+", metavar="FILE")
    rec.add_argument("--json", action="store_true", help="one JSON object per line")
    rec.add_argument("--model-dir", type=Path, help="model directory (default: MODEL_DIR)")
    rec.set_defaults(handler=recognize)


def recognize(args: argparse.Namespace, settings: PlatformSettings) -> int:
    from recognition import ImageError, Recognizer, prepare

    recognizer = Recognizer(args.model_dir or settings.model_dir)
    prepared, failures = {}, {}
    for path in args.files:
        try:
            data = Path(path).read_bytes()
            if len(data) > settings.max_image_bytes:
                raise ImageError(f"file is larger than {settings.max_image_bytes} bytes")
            prepared[path] = prepare(data, settings.max_image_pixels)
        except (OSError, ImageError) as exc:
            failures[path] = str(exc)
    # One batched call for every readable file.
    predictions = dict(zip(prepared, recognizer.predict(list(prepared.values())), strict=True))
    for path in args.files:
        if path in failures:
            row = {"file": path, "error": failures[path]}
            line = f"{path}: error: {failures[path]}"
        else:
            p = predictions[path]
            row = {
                "file": path,
                "digit": p.digit,
                "confidence": round(p.confidence, 6),
                "needs_review": p.needs_review,
            }
            flag = "  needs review" if p.needs_review else ""
            line = f"{path}: {p.digit}  confidence {p.confidence:.4f}{flag}"
        if args.json:
            print(json.dumps(row))
        else:
            print(line, file=sys.stderr if path in failures else sys.stdout)
    return 1 if failures else 0
