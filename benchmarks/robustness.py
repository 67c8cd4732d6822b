"""Accuracy of the shipped model on MNIST test digits re-rendered as scans, through the core.

Every one of the 10,000 official test digits is printed as a scan would deliver it (dark ink on
light, uneven noisy paper, 1.5-5x size, random position, PNG or JPEG), decoded and normalised by
the recognition core, and recognised in batches. Prints accuracy, share sent to review and error
among the auto-accepted, beside the same figures for the clean MNIST digits.

    python benchmarks/robustness.py [--model-dir models/default] [--data ../shared/data/mnist]
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devtools.report import write_section  # noqa: E402
from digitflow.settings import DEFAULT_MODEL_DIR  # noqa: E402
from recognition import Recognizer, normalize_mnist, prepare  # noqa: E402
from recognition.synthetic import render_scan  # noqa: E402
from training.data import load_mnist  # noqa: E402


def summarise(name: str, predictions, labels: np.ndarray) -> dict:
    digits = np.array([p.digit for p in predictions])
    review = np.array([p.needs_review for p in predictions])
    accepted = ~review
    return {
        "inputs": name,
        "accuracy": float(np.mean(digits == labels)),
        "review_rate": float(review.mean()),
        "accepted_error": float(np.mean(digits[accepted] != labels[accepted])),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)

    data = load_mnist(args.data)
    recognizer = Recognizer(args.model_dir)
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    scans = [render_scan(digit, rng) for digit in data.x_test]
    render_seconds = time.perf_counter() - started

    started = time.perf_counter()
    prepared = np.stack([prepare(scan) for scan in scans])
    prepare_seconds = time.perf_counter() - started
    rows = [
        summarise(
            "official test digits (clean)",
            recognizer.predict(normalize_mnist(data.x_test)),
            data.y_test,
        ),
        summarise("the same digits as scans (PNG/JPEG)", recognizer.predict(prepared), data.y_test),
    ]
    table = [
        "| inputs | accuracy | sent to review | error among auto-accepted |",
        "| --- | --- | --- | --- |",
    ]
    for row in rows:
        print(
            f"{row['inputs']}: accuracy {row['accuracy']:.4%}, review {row['review_rate']:.2%}, "
            f"accepted error {row['accepted_error']:.3%}"
        )
        cells = [
            f"{row['accuracy']:.2%}",
            f"{row['review_rate']:.2%}",
            f"{row['accepted_error']:.3%}",
        ]
        table.append(f"| {row['inputs']} | {' | '.join(cells)} |")
    per_scan_ms = prepare_seconds / len(scans) * 1000
    print(
        f"decode + normalise: {per_scan_ms:.3f} ms per scan (rendering took {render_seconds:.0f} s)"
    )
    if not args.no_write:
        write_section(
            "robustness",
            "Robustness: MNIST test digits as scans",
            f"Model `{recognizer.version}` ({recognizer.backend}), 10,000 official test digits, "
            f"seed {args.seed}; `python benchmarks/robustness.py`.\n\n"
            + "\n".join(table)
            + f"\n\nDecode + normalise through the core: {per_scan_ms:.3f} ms per scan (one core).",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
