"""Honest evaluation: accuracy, calibration, and the review policy's risk-coverage trade-off.

Temperature and review threshold are fitted on the validation split; every figure reported as
"test" comes from the official 10k test set, which nothing was tuned on.

    python -m training.evaluate --trained /tmp/trained --prepared /tmp/prepared --out /tmp/eval
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from recognition.inference import LiteRTModel, calibrate, digit_view

ECE_BINS = 15
# Review policy: the threshold is the lowest confidence whose auto-accepted validation digits
# stay within this error rate (the 0.1% bar itself; the test set then checks it on unseen digits).
TARGET_ERROR = 0.001
REPORTED_COVERAGES = (1.0, 0.995, 0.99, 0.98, 0.97, 0.95)
# Robustness: this many test digits (fixed seed) re-rendered as scans -- dark ink on light,
# noisy paper, other sizes and positions, PNG or JPEG -- and read through the serving path.
SCAN_SAMPLE = 2000
SCAN_SEED = 2026
METRICS_FILENAME = "metrics.json"
RELIABILITY_PNG = "reliability.png"
RISK_COVERAGE_PNG = "risk_coverage.png"


def served(probabilities: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each digit's confidence as the recognition core reports it (`digit_view`), and whether its
    answer is right, from model outputs over 10 or 11 classes."""
    digits, confidence, _ = digit_view(probabilities)
    return confidence, digits.argmax(axis=1) == labels


def reliability_bins(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> dict:
    """Equal-width confidence bins: edges, digits per bin, their accuracy and mean confidence."""
    confidence, correct = served(probabilities, labels)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    accuracy = np.bincount(which, weights=correct, minlength=bins) / np.maximum(counts, 1)
    mean_conf = np.bincount(which, weights=confidence, minlength=bins) / np.maximum(counts, 1)
    return {"edges": edges, "counts": counts, "accuracy": accuracy, "confidence": mean_conf}


def calibration_error(bins: dict) -> float:
    """Expected calibration error from reliability bins: the digits' share in each bin times
    that bin's |accuracy - mean confidence|, summed."""
    share = bins["counts"] / max(int(bins["counts"].sum()), 1)
    return float((share * np.abs(bins["accuracy"] - bins["confidence"])).sum())


def expected_calibration_error(
    probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS
) -> float:
    """Weighted mean |accuracy - confidence| over equal-width confidence bins."""
    return calibration_error(reliability_bins(probabilities, labels, bins))


def negative_log_likelihood(probabilities: np.ndarray, labels: np.ndarray) -> float:
    picked = probabilities[np.arange(len(labels)), labels]
    return float(-np.log(np.clip(picked, 1e-12, None)).mean())


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Temperature minimising NLL of softmax(log(p) / T): a log-spaced search, then a finer one."""

    def nll(t: float) -> float:
        return negative_log_likelihood(calibrate(probabilities, t), labels)

    grid = np.exp(np.linspace(np.log(0.05), np.log(20.0), 121))
    best = grid[int(np.argmin([nll(t) for t in grid]))]
    fine = np.linspace(best / 1.06, best * 1.06, 61)
    return float(fine[int(np.argmin([nll(t) for t in fine]))])


def risk_coverage(
    confidence: np.ndarray, correct: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each possible threshold (distinct confidences, highest first): accepted share and error.

    Returns (thresholds, coverage, risk): accepting every digit with confidence >= thresholds[i]
    covers coverage[i] of the digits with error rate risk[i] among them.
    """
    order = np.argsort(-confidence, kind="stable")
    conf, errors = confidence[order], np.cumsum(~correct[order])
    # Only the last position of each run of equal confidences is a reachable cut.
    last_of_tie = np.append(conf[1:] != conf[:-1], True)
    accepted = np.arange(1, len(conf) + 1)[last_of_tie]
    return conf[last_of_tie], accepted / len(conf), errors[last_of_tie] / accepted


def choose_threshold(
    confidence: np.ndarray, correct: np.ndarray, target_error: float = TARGET_ERROR
) -> float:
    """Lowest threshold (widest auto-acceptance) whose accepted digits err at most target_error."""
    thresholds, _, risk = risk_coverage(confidence, correct)
    ok = np.flatnonzero(risk <= target_error)
    return float(thresholds[ok[-1]]) if len(ok) else 1.0


def review_outcome(confidence: np.ndarray, correct: np.ndarray, threshold: float) -> dict:
    accepted = confidence >= threshold
    errors = int((~correct[accepted]).sum())
    return {
        "review_rate": float(1 - accepted.mean()),
        "auto_accepted": int(accepted.sum()),
        "auto_accepted_errors": errors,
        "auto_accept_error": float(errors / max(int(accepted.sum()), 1)),
    }


def classification_metrics(probabilities: np.ndarray, labels: np.ndarray) -> dict:
    predicted = probabilities.argmax(axis=1)
    confusion = np.zeros((10, 10), dtype=int)
    np.add.at(confusion, (labels, predicted), 1)
    per_class = confusion.diagonal() / np.maximum(confusion.sum(axis=1), 1)
    return {
        "count": int(len(labels)),
        "accuracy": float((predicted == labels).mean()),
        "errors": int((predicted != labels).sum()),
        "per_class_accuracy": {str(d): round(float(a), 5) for d, a in enumerate(per_class)},
        "confusion_matrix": confusion.tolist(),
    }


def rejection_metrics(calibrated: np.ndarray, threshold: float) -> dict:
    """How the review policy treats marks that are not digits (calibrated 11-class outputs)."""
    _, confidence, _ = digit_view(calibrated)
    return {
        "count": int(len(calibrated)),
        "flagged": float((confidence < threshold).mean()),
        "argmax_not_a_digit": float((calibrated.argmax(axis=1) == 10).mean()),
    }


def evaluate(val_probs, y_val, test_probs, y_test, target_error: float = TARGET_ERROR) -> dict:
    """All metrics for one model, from its raw softmax outputs on validation and test.

    Labels may include 10 ("not a digit") when the model has that class: the temperature is fitted
    on every validation row, digit metrics use the digit rows with each digit's confidence as the
    core reports it (`served`), and non-digit rows are reported as the share the review policy
    flags.
    """
    temperature = fit_temperature(val_probs, y_val)
    val_all, test_all = calibrate(val_probs, temperature), calibrate(test_probs, temperature)
    dv, dt = y_val < 10, y_test < 10
    val_raw, y_val, val_cal = val_probs[dv], y_val[dv], val_all[dv]
    test_raw, y_test, test_cal = test_probs[dt], y_test[dt], test_all[dt]
    val_conf, val_correct = served(val_cal, y_val)
    test_conf, test_correct = served(test_cal, y_test)
    threshold = choose_threshold(val_conf, val_correct, target_error)
    _, coverage, risk = risk_coverage(test_conf, test_correct)

    def risk_at(c: float) -> float:
        return float(risk[min(np.searchsorted(coverage, c - 1e-12), len(risk) - 1)])

    metrics = {
        "calibration": {"temperature": temperature, "fitted_on": "validation"},
        "review": {"threshold": threshold, "target_error": target_error, "chosen_on": "validation"},
        "validation": {
            "accuracy": float((val_correct).mean()),
            "ece_uncalibrated": expected_calibration_error(val_raw, y_val),
            "ece_calibrated": expected_calibration_error(val_cal, y_val),
            **review_outcome(val_conf, val_correct, threshold),
        },
        "test": {
            **classification_metrics(test_raw[:, :10], y_test),
            "nll_uncalibrated": negative_log_likelihood(test_raw, y_test),
            "nll_calibrated": negative_log_likelihood(test_cal, y_test),
            "ece_uncalibrated": expected_calibration_error(test_raw, y_test),
            "ece_calibrated": expected_calibration_error(test_cal, y_test),
            **review_outcome(test_conf, test_correct, threshold),
            "risk_at_coverage": {f"{c:g}": risk_at(c) for c in REPORTED_COVERAGES},
        },
    }
    if (~dv).any() and (~dt).any():
        metrics["not_a_digit"] = {
            "validation": rejection_metrics(val_all[~dv], threshold),
            "test": rejection_metrics(test_all[~dt], threshold),
            "description": "synthetic non-digit marks (training/nondigits.py): validation marks"
            " from a seed of their own, test marks from another seed with pairs of MNIST test"
            " digits; 'flagged' = confidence below the review threshold (a mark at least as"
            " likely no digit as a digit keeps its best digit's share of all 11 outputs, at most"
            " one half)",
        }
    return metrics


def scan_inputs(images: np.ndarray, labels: np.ndarray, count: int = SCAN_SAMPLE):
    """Model inputs for a fixed sample of digits rendered as scans and decoded by the core."""
    from recognition import prepare
    from recognition.synthetic import render_scan

    rng = np.random.default_rng(SCAN_SEED)
    chosen = np.sort(rng.choice(len(labels), min(count, len(labels)), replace=False))
    scans = np.stack([prepare(render_scan(images[i], rng)) for i in chosen])
    return scans[..., np.newaxis], labels[chosen]


def plot_reliability(
    raw: np.ndarray, calibrated: np.ndarray, labels: np.ndarray, path: Path, title: str
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 4), sharey=True)
    for ax, probs, name in ((axes[0], raw, "before"), (axes[1], calibrated, "after")):
        bins = reliability_bins(probs, labels)
        centres = (bins["edges"][:-1] + bins["edges"][1:]) / 2
        used = bins["counts"] > 0
        ax.bar(
            centres[used],
            bins["accuracy"][used],
            width=1 / ECE_BINS,
            edgecolor="black",
            alpha=0.7,
            label="accuracy",
        )
        ax.plot([0, 1], [0, 1], "k--", label="perfect calibration")
        ax.set_title(f"{name} temperature scaling (ECE {calibration_error(bins):.2%})")
        ax.set_xlabel("confidence")
        ax.legend(loc="upper left")
    axes[0].set_ylabel("accuracy")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_risk_coverage(
    curves: dict[str, tuple[np.ndarray, np.ndarray]], threshold_point, path: Path
) -> None:
    """curves: name -> (coverage, risk) on test; threshold_point: the shipped (coverage, risk)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for name, (coverage, risk) in curves.items():
        ax.plot(1 - coverage, risk * 100, label=name)
    ax.plot(1 - threshold_point[0], threshold_point[1] * 100, "ro", label="shipped threshold")
    ax.axhline(0.1, color="grey", linestyle=":", label="0.1% error bar")
    ax.axvline(3, color="grey", linestyle="--", alpha=0.5)
    ax.set_xlim(0, max(0.08, 1.5 * (1 - threshold_point[0])))
    ax.set_xlabel("share sent to review")
    ax.set_ylabel("error among auto-accepted digits (%)")
    ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.set_title("Risk-coverage on the MNIST test set")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def as_served(model) -> LiteRTModel:
    """A trained Keras model as the core serves it: its LiteRT file (`training.export.to_tflite`,
    int8 weights), run by the core's own backend. What a model is measured by."""
    from training.export import to_tflite

    return LiteRTModel(to_tflite(model))


def predict_probabilities(served: LiteRTModel, inputs: np.ndarray) -> np.ndarray:
    """Raw softmax of a served model over model inputs, in the core's batches."""
    return served.predict(np.asarray(inputs, dtype=np.float32)).astype(np.float64)


def scan_accuracy(served: LiteRTModel, scans: tuple[np.ndarray, np.ndarray]) -> dict:
    x_scans, y_scans = scans
    predicted = predict_probabilities(served, x_scans)[:, :10].argmax(axis=1)
    return {
        "accuracy": float((predicted == y_scans).mean()),
        "count": int(len(y_scans)),
        "description": "test digits rendered as scans (recognition.synthetic.render_scan,"
        " seed 2026) and read through recognition.prepare",
    }


def evaluate_models(trained: dict, split, target_error: float | None = None):
    """Metrics of each trained model (name -> (model, record)), its raw test outputs, and the
    LiteRT file they were measured on (name -> bytes: the file export writes).

    Validation and test both carry synthetic non-digit marks (label 10) beside the digits."""
    from training.nondigits import test_inputs, validation_inputs

    target_error = TARGET_ERROR if target_error is None else target_error
    (x_val, y_val), (x_test, y_test) = validation_inputs(split), test_inputs(split)
    scans = scan_inputs(split.x_test, split.y_test)
    metrics, test_outputs, files = {}, {}, {}
    for name, (model, _) in trained.items():
        served = as_served(model)
        files[name] = served.content
        test_outputs[name] = predict_probabilities(served, x_test)
        val_probs = predict_probabilities(served, x_val)
        metrics[name] = evaluate(val_probs, y_val, test_outputs[name], y_test, target_error)
        metrics[name]["scans"] = scan_accuracy(served, scans)
    return metrics, (test_outputs, y_test), files


def write_plots(metrics: dict, test_outputs, out: Path) -> dict[str, str]:
    """The default model's reliability diagram and every model's risk-coverage curve on test
    digits; returns title -> file name."""
    outputs, labels = test_outputs
    digits = labels < 10
    calibrated, curves = {}, {}
    for name, probs in outputs.items():
        temperature = metrics[name]["calibration"]["temperature"]
        calibrated[name] = calibrate(probs, temperature)[digits]
        curves[name] = risk_coverage(*served(calibrated[name], labels[digits]))[1:]
    title = "Reliability of the default model (MNIST test set)"
    raw = outputs["default"][digits]
    plot_reliability(raw, calibrated["default"], labels[digits], out / RELIABILITY_PNG, title)
    shipped = metrics["default"]["test"]
    point = (1 - shipped["review_rate"], shipped["auto_accept_error"])
    plot_risk_coverage(curves, point, out / RISK_COVERAGE_PNG)
    return {"Reliability diagram": RELIABILITY_PNG, "Risk-coverage curve": RISK_COVERAGE_PNG}


def trained_models_parser(doc: str | None) -> argparse.ArgumentParser:
    """The command line shared by evaluate and export: a trained model, a split, an output."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument(
        "--trained", "--trained-default", dest="trained", type=Path, required=True,
        help="folder written by training.train (the default model)",
    )  # fmt: skip
    parser.add_argument(
        "--prepared", type=Path, required=True, help="folder written by training.data"
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--target-error", type=float, default=TARGET_ERROR)
    return parser


def main(argv: list[str] | None = None) -> int:
    from training import data as mnist
    from training.nondigits import test_inputs, validation_inputs
    from training.train import load_trained

    args = trained_models_parser(__doc__).parse_args(argv)
    split = mnist.load_split(args.prepared)
    served = as_served(load_trained(args.trained)[0])
    x_val, y_val = validation_inputs(split)
    x_test, y_test = test_inputs(split)
    val_probs = predict_probabilities(served, x_val)
    test_probs = predict_probabilities(served, x_test)
    metrics = evaluate(val_probs, y_val, test_probs, y_test, args.target_error)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / METRICS_FILENAME).write_text(json.dumps(metrics, indent=2))
    summary = ("accuracy", "ece_calibrated", "review_rate", "auto_accept_error")
    print(json.dumps({k: metrics["test"][k] for k in summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
