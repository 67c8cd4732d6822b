"""Compare training recipes on the validation split only (the test set is never read).

    python -m training.sweep --out /tmp/sweep.jsonl --epochs 15 --seeds 1 2 3 \\
        --trial default --trial 'wide' --trial 'default:label_smoothing=0,ema_momentum=0'

A trial is `ARCH[:key=value,...]`: an architecture and overrides of its recipe
(training/train.py RECIPES). Each (trial, seed) run appends one JSON line: validation digit
accuracy, the review rate and auto-accept error at the validation-chosen threshold, the share of
non-digit marks flagged, and the training time with the machine's load. `--summary` prints
mean and spread per trial from such a file.
"""

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

from training.evaluate import (
    TARGET_ERROR,
    as_served,
    choose_threshold,
    fit_temperature,
    predict_probabilities,
    rejection_metrics,
    review_outcome,
    served,
)


def parse_trial(text: str) -> tuple[str, dict]:
    """'wide:label_smoothing=0.05,epochs=20' -> ('wide', {'label_smoothing': 0.05, 'epochs': 20})"""
    arch, _, rest = text.partition(":")
    overrides = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        overrides[key] = json.loads(value)
    return arch, overrides


def validation_metrics(probs: np.ndarray, labels: np.ndarray, target_error: float) -> dict:
    """Digit accuracy and review outcome on validation (temperature and threshold fitted there:
    optimistic in absolute terms, fair between recipes)."""
    from recognition.inference import calibrate

    calibrated = calibrate(probs, fit_temperature(probs, labels))
    digits = labels < 10
    confidence, correct = served(calibrated[digits], labels[digits])
    threshold = choose_threshold(confidence, correct, target_error)
    return {
        "accuracy": float(correct.mean()),
        "errors": int((~correct).sum()),
        "threshold": threshold,
        **review_outcome(confidence, correct, threshold),
        "not_a_digit_flagged": rejection_metrics(calibrated[~digits], threshold)["flagged"],
    }


def run_trial(trial: str, seed: int, inputs, args) -> dict:
    from training.train import save_trained, train

    arch, overrides = parse_trial(trial)
    x_train, y_train, x_val, y_val = inputs
    load_before = os.getloadavg()[0]
    model, record = train(
        arch, x_train, y_train, x_val, y_val, epochs=args.epochs, seed=seed, overrides=overrides
    )
    if args.keep:  # e.g. to export the chosen run with `python -m training.export`
        slug = re.sub(r"[^A-Za-z0-9.]+", "_", trial)
        save_trained(model, record, args.keep / f"{slug}-seed{seed}")
    probs = predict_probabilities(as_served(model), x_val)
    return {
        "trial": trial,
        "seed": seed,
        "epochs": record["hyperparameters"]["epochs"],
        "train_size": int(len(y_train)),
        "parameters": record["parameters"],
        "train_wall_seconds": record["train_wall_seconds"],
        "train_cpu_seconds": record["train_cpu_seconds"],
        "load_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "validation": validation_metrics(probs, y_val, args.target_error),
    }


def summarise(path: Path) -> list[dict]:
    """Mean and sample standard deviation of the validation figures per trial."""
    runs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows = []
    for trial in dict.fromkeys(r["trial"] for r in runs):
        mine = [r for r in runs if r["trial"] == trial]
        row = {"trial": trial, "seeds": [r["seed"] for r in mine], "epochs": mine[0]["epochs"]}
        for key in ("accuracy", "review_rate", "auto_accept_error", "not_a_digit_flagged"):
            values = np.array([r["validation"][key] for r in mine])
            row[key] = [round(float(values.mean()), 5), round(float(values.std(ddof=1)), 5)
                        if len(values) > 1 else None]  # fmt: skip
        row["train_cpu_seconds"] = round(float(np.mean([r["train_cpu_seconds"] for r in mine])))
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--data", type=Path, help="MNIST IDX folder or CSV")
    parser.add_argument("--out", type=Path, required=True, help="JSON lines, appended to")
    parser.add_argument("--trial", action="append", default=[], help="ARCH[:key=value,...]")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--subset", type=int, help="a stratified sample of N training images")
    parser.add_argument("--target-error", type=float, default=TARGET_ERROR)
    parser.add_argument("--keep", type=Path, help="save each trained model under this folder")
    parser.add_argument("--summary", action="store_true", help="only summarise --out")
    args = parser.parse_args(argv)
    if not args.summary:
        from training import data as mnist
        from training.nondigits import training_inputs

        # One split for every run (seed 42, as the pipeline): recipes differ, data does not.
        split = mnist.split(mnist.load_mnist(args.data), subset=args.subset)
        for seed in args.seeds:
            inputs = training_inputs(split, seed)
            for trial in args.trial or ["default"]:
                started = time.perf_counter()
                result = run_trial(trial, seed, inputs, args)
                with args.out.open("a") as f:
                    f.write(json.dumps(result) + "\n")
                print(json.dumps(result), f"({time.perf_counter() - started:.0f}s)", flush=True)
    for row in summarise(args.out):
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
