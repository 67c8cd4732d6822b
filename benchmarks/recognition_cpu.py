"""CPU a document spends in the recognition core, in-process: what a bulk worker pays per
document before the database, and what the sync path pays before the framework.

Counts process CPU time (`time.process_time`), not wall-clock, so a shared machine's load
changes it little. Single-threaded OpenCV, as the workers and the API run it.

- `digits`: the bulk benchmark's documents (MNIST test digits as 56x56 scan PNGs,
  `devtools.scans.scan_png`): `segment_image` and the batched model call;
- `fields`: cheque amounts scanned at 300 dpi (`training.synthetic_fields.scan_spec`, half
  JPEG), and 5-digit fields at 300 dpi: `segment_image` and the model call, plus p50 of one
  field read alone (segment + model, wall-clock, as the sync path reads one).

    .venv/bin/python benchmarks/recognition_cpu.py [--count 2000] [--fields 300] [--profile]
"""

import argparse
import cProfile
import os
import pstats
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from devtools.mnist import mnist_test_set  # noqa: E402
from devtools.scans import scan_png  # noqa: E402
from recognition import Recognizer, read_segmentations, segment_image  # noqa: E402
from training.synthetic_fields import fields, render_field, scan_spec  # noqa: E402

BATCH = 64


def cpu_per_document(documents: list[bytes], recognizer: Recognizer) -> dict:
    """Milliseconds of CPU a document: segmenting, and the model call in batches of BATCH."""
    segment = read = 0.0
    for start in range(0, len(documents), BATCH):
        began = time.process_time()
        segmentations = [segment_image(d) for d in documents[start : start + BATCH]]
        middle = time.process_time()
        read_segmentations(segmentations, recognizer)
        segment, read = segment + middle - began, read + time.process_time() - middle
    scale = 1000 / len(documents)
    return {"segment_ms": segment * scale, "read_ms": read * scale,
            "total_ms": (segment + read) * scale}  # fmt: skip


def one_at_a_time_p50(documents: list[bytes], recognizer: Recognizer) -> float:
    """Median wall-clock ms to read one field alone (segment + one model call)."""
    times = []
    for data in documents:
        began = time.perf_counter()
        read_segmentations([segment_image(data)], recognizer)
        times.append((time.perf_counter() - began) * 1000)
    return float(np.median(times))


def five_digit_fields(images, labels, count: int) -> list[bytes]:
    rng = np.random.default_rng(5555)
    return [render_field(scan_spec(rng, count=5), images, labels, rng).image for _ in range(count)]


def profile(documents: list[bytes], top: int = 25) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    for data in documents:
        segment_image(data)
    profiler.disable()
    pstats.Stats(profiler).sort_stats(os.environ.get("SORT", "tottime")).print_stats(top)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2000, help="single-digit documents")
    parser.add_argument("--fields", type=int, default=300, help="300 dpi fields")
    parser.add_argument("--model-dir", default=str(REPO / "models" / "default"))
    parser.add_argument("--profile", choices=("digits", "fields", "five"), default=None)
    args = parser.parse_args(argv)
    import cv2

    cv2.setNumThreads(1)
    images, labels = mnist_test_set()
    recognizer = Recognizer(Path(args.model_dir))
    digits = [scan_png(images[i]) for i in range(args.count)]
    amounts = [f.image for f in fields("scan300", args.fields, images, labels, seed=3003)]
    five = five_digit_fields(images, labels, args.fields)
    chosen = {"digits": digits, "fields": amounts, "five": five}
    if args.profile:
        profile(chosen[args.profile])
        return 0
    for name, documents in chosen.items():
        cpu_per_document(documents[:50], recognizer)  # warm up
        result = cpu_per_document(documents, recognizer)
        line = ", ".join(f"{k} {v:.3f}" for k, v in result.items())
        if name != "digits":
            line += f", p50 alone {one_at_a_time_p50(documents[:100], recognizer):.1f} ms"
        print(f"{name} ({len(documents)}): CPU ms a document: {line}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
