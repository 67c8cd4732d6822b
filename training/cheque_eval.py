"""Evaluate the cheque reader on whole synthetic cheques.

    python -m training.cheque_eval                        # 1,000 cheques of TEST digits
    python -m training.cheque_eval --digits train --count 500 --seed 8   # tuning set
    python -m training.cheque_eval --json out.json

Cheques come from `training.cheques` (every template, currency, amount style, distractor and scan
effect) and are read exactly as `POST /predict?layout=cheque` reads an upload
(`recognition.doctypes.prepare_document` then `read_prepared`). Tune on cheques made of the
TRAINING digits; report on cheques made of the official TEST digits (the default).

Reported: the box-found rate (and how often the box found is the amount's), amount exact
accuracy over all cheques, the share flagged for review, the error among cheques not flagged,
and the amount's risk-coverage curve (error among the most confident X% of cheques).
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from recognition import ImageError, Recognizer
from recognition.doctypes import CHEQUE, prepare_document, read_prepared
from training import data as mnist
from training.cheques import cheques

COVERAGES = (1.0, 0.95, 0.9, 0.85, 0.8, 0.7, 0.6, 0.5)
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "default"


def box_matches(found: dict | None, truth: tuple[int, int, int, int]) -> bool:
    """The region found covers most of the true amount box."""
    if found is None:
        return False
    x, y, w, h = truth
    ix = max(0, min(x + w, found["x"] + found["width"]) - max(x, found["x"]))
    iy = max(0, min(y + h, found["y"] + found["height"]) - max(y, found["y"]))
    return ix * iy >= 0.6 * w * h


def read_cheques(items: list, recognizer: Recognizer, batch: int = 64) -> list[dict]:
    """Per cheque: the amount's text, confidence, needs_review, box (None: no box/refused)."""
    out = []
    for start in range(0, len(items), batch):
        prepared, rows = [], []
        for item in items[start : start + batch]:
            try:
                prepared.append(prepare_document(item.image, CHEQUE))
                rows.append(len(prepared) - 1)
            except ImageError:
                rows.append(None)
        readings = read_prepared(prepared, recognizer)
        for row in rows:
            if row is None:
                out.append({"text": None, "confidence": 0.0, "needs_review": True, "box": None})
                continue
            amount = readings[row].as_dict()["fields"]["amount"]
            out.append({k: amount[k] for k in ("text", "confidence", "needs_review", "box")})
    return out


def risk_coverage(confidences: np.ndarray, correct: np.ndarray) -> list[dict]:
    order = np.argsort(-confidences, kind="stable")
    curve = []
    for coverage in COVERAGES:
        kept = order[: max(1, round(coverage * len(order)))]
        curve.append({
            "coverage": coverage,
            "error": round(float(1 - correct[kept].mean()), 4),
            "min_confidence": round(float(confidences[kept].min()), 4),
        })  # fmt: skip
    return curve


def summarise(items: list, results: list[dict]) -> dict:
    n = len(items)
    correct = np.array([r["text"] == c.amount for r, c in zip(results, items, strict=True)])
    flagged = np.array([r["needs_review"] for r in results])
    found = np.array([r["box"] is not None for r in results])
    right_box = np.array(
        [box_matches(r["box"], c.box) for r, c in zip(results, items, strict=True)]
    )
    accepted = ~flagged
    confidences = np.array([r["confidence"] for r in results])
    return {
        "cheques": n,
        "box_found_rate": round(float(found.mean()), 4),
        "box_correct_rate": round(float(right_box.mean()), 4),
        "amount_exact_accuracy": round(float(correct.mean()), 4),
        "flagged_for_review": round(float(flagged.mean()), 4),
        "error_among_not_flagged": round(float(1 - correct[accepted].mean()), 4)
        if accepted.any()
        else None,
        "accepted_and_exact": round(float((correct & accepted).mean()), 4),
        "risk_coverage": risk_coverage(confidences, correct),
        "by_template": {
            name: round(float(correct[[c.spec.template.name == name for c in items]].mean()), 4)
            for name in sorted({c.spec.template.name for c in items})
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--digits", choices=("test", "train"), default="test")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    data = mnist.load_mnist()
    images, labels = (
        (data.x_test, data.y_test) if args.digits == "test" else (data.x_train, data.y_train)
    )
    items = cheques(args.count, images, labels, args.seed)
    recognizer = Recognizer(args.model_dir)
    started = time.perf_counter()
    results = read_cheques(items, recognizer)
    seconds = time.perf_counter() - started
    summary = {
        "digits": args.digits,
        "seed": args.seed,
        "model_version": recognizer.version,
        **summarise(items, results),
        "read_ms_per_cheque": round(seconds * 1000 / len(items), 2),
    }
    text = json.dumps(summary, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
