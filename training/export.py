"""Export a trained model for serving: model.keras, model.tflite, model_card.json, report.md.

The .keras file is the contract (float32 [N, 28, 28, 1] in [0, 1], white ink on black ->
softmax over 10); the .tflite file is what the recognition core serves, converted with a
dynamic batch dimension and checked against the Keras model before it is written.
"""

import datetime as dt
import hashlib
from pathlib import Path

import numpy as np

from recognition.card import CARD_FILENAME, KERAS_FILENAME, TFLITE_FILENAME, ModelCard

TFLITE_TOLERANCE = 1e-4
REPORT_FILENAME = "report.md"


def sha256_bytes(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def to_tflite(model) -> bytes:
    import tensorflow as tf

    return tf.lite.TFLiteConverter.from_keras_model(model).convert()


def tflite_max_difference(model, tflite: bytes, images: np.ndarray, batch: int = 32) -> float:
    """Largest |Keras - LiteRT| probability on `images`, run through LiteRT resized to `batch`."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=tflite)
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, [batch, 28, 28, 1])
    interpreter.allocate_tensors()
    images = images[:batch].astype(np.float32)
    interpreter.set_tensor(index, images)
    interpreter.invoke()
    lite = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    return float(np.abs(lite - np.asarray(model(images, training=False))).max())


def write_model_files(model, out: Path, check_images: np.ndarray) -> dict:
    """Write model.keras and model.tflite; return their sha256 and the LiteRT parity check."""
    out.mkdir(parents=True, exist_ok=True)
    # A clean copy without optimizer state: smaller, and all that serving needs.
    serving = model.__class__.from_config(model.get_config())
    serving.set_weights(model.get_weights())
    model = serving
    model.save(out / KERAS_FILENAME)
    tflite = to_tflite(model)
    difference = tflite_max_difference(model, tflite, check_images)
    if difference > TFLITE_TOLERANCE:
        raise RuntimeError(f"LiteRT and Keras disagree by {difference:.2e} (> {TFLITE_TOLERANCE})")
    (out / TFLITE_FILENAME).write_bytes(tflite)
    return {
        "sha256": {name: sha256_bytes(out / name) for name in (KERAS_FILENAME, TFLITE_FILENAME)},
        "tflite_max_abs_difference": difference,
    }


def build_card(
    files: dict, data: dict, hyperparameters: dict, metrics: dict, architecture: str
) -> ModelCard:
    now = dt.datetime.now(dt.UTC)
    return ModelCard(
        version=f"{now:%Y.%m.%d}-{files['sha256'][TFLITE_FILENAME][:8]}",
        created_at=now.isoformat(timespec="seconds"),
        architecture=architecture,
        sha256=files["sha256"],
        data=data,
        hyperparameters=hyperparameters,
        metrics=metrics,
        calibration=metrics["default"]["calibration"],
        review=metrics["default"]["review"],
        tflite_max_abs_difference=files["tflite_max_abs_difference"],
    )


def _pct(x: float, digits: int = 2) -> str:
    return f"{100 * x:.{digits}f}%"


def _rejection_lines(card: ModelCard) -> list[str]:
    """How "not a digit" is handled and measured, and the field review threshold."""
    rejection = card.metrics["default"].get("not_a_digit")
    if not rejection:
        return []
    extra = card.model_dump()
    lines = [
        "## Not a digit",
        "",
        'The model has an 11th output, "not a digit", trained on synthetic marks'
        " (`training/nondigits.py`: dots, dashes, letters and symbols drawn from pen strokes and"
        " from fonts, scribbles, smudges, two MNIST digits side by side), 15% as many as the"
        " digits, mixed into training and validation. Serving keeps the ten digit probabilities"
        " (renormalised) but a digit's confidence is its probability among all eleven outputs, so"
        ' the mass on "not a digit" lowers it and the review threshold catches the mark.',
        "",
        "| synthetic non-digit marks | count | flagged at the review threshold |"
        ' argmax "not a digit" |',
        "| --- | --- | --- | --- |",
        *(
            f"| {part} | {rejection[part]['count']:,} | {_pct(rejection[part]['flagged'])} |"
            f" {_pct(rejection[part]['argmax_not_a_digit'])} |"
            for part in ("validation", "test")
        ),
        "",
    ]
    field = extra.get("field_review")
    if field:
        lines += [
            "## Field review threshold",
            "",
            f"A field of two digits or more goes to review when its confidence (the product of"
            f" its digits') is below **{field['threshold']:.4f}**, chosen on"
            f" {field['chosen_on']}, as the lowest that kept the auto-accepted fields' error"
            f" within {_pct(field['target_error'], 2)} (`python -m training.fields_eval"
            " --tune`). One-digit fields use the digit threshold above. Field accuracy on test"
            " digits: [docs/fields.md](../../docs/fields.md).",
            "",
        ]
    return lines


def write_report(card: ModelCard, out: Path, plots: dict[str, str]) -> Path:
    """A human-readable summary of the card, with the plots and default-vs-seed side by side."""
    m = card.metrics
    names = [n for n in ("default", "seed") if n in m]
    h = card.hyperparameters

    def row(label, fn):
        return f"| {label} | " + " | ".join(fn(n) for n in names) + " |"

    test = {n: m[n]["test"] for n in names}
    lines = [
        f"# DigitFlow model {card.version}",
        "",
        f"Created {card.created_at}. Architecture: {card.architecture}.",
        "",
        f"All figures are on the official MNIST test set ({test['default']['count']:,}"
        " digits), which was never used for training, early stopping, temperature fitting or",
        "threshold choice; those used a stratified validation split of"
        f" {card.data['split_sizes']['validation']:,} digits carved from the official training set"
        f" ({card.data['split_sizes']['train']:,} left for training).",
        "Every image went through the serving path's normalisation (`recognition.preprocess`).",
        "",
        "## Default vs the seed's architecture (same pipeline, same split)",
        "",
        "| | " + " | ".join(names) + " |",
        "| --- | " + " | ".join("---" for _ in names) + " |",
        row("test accuracy", lambda n: _pct(test[n]["accuracy"])),
        row("test errors", lambda n: str(test[n]["errors"])),
        row(
            f"accuracy on {m['default']['scans']['count']:,} test digits re-rendered as scans",
            lambda n: _pct(m[n]["scans"]["accuracy"]),
        ),
        row("ECE before temperature scaling", lambda n: _pct(test[n]["ece_uncalibrated"])),
        row("ECE after temperature scaling", lambda n: _pct(test[n]["ece_calibrated"])),
        row(
            "temperature (fitted on validation)",
            lambda n: f"{m[n]['calibration']['temperature']:.3f}",
        ),
        row(
            "review threshold (chosen on validation)",
            lambda n: f"{m[n]['review']['threshold']:.4f}",
        ),
        row("sent to review at that threshold", lambda n: _pct(test[n]["review_rate"])),
        row(
            "error among auto-accepted",
            lambda n: (
                f"{_pct(test[n]['auto_accept_error'], 3)}"
                f" ({test[n]['auto_accepted_errors']} digits)"
            ),
        ),
        row("error at 97% coverage", lambda n: _pct(test[n]["risk_at_coverage"]["0.97"], 3)),
        row("parameters", lambda n: f"{h[n]['parameters']:,}"),
        row(
            "epochs run (best)",
            lambda n: (
                f"{h[n]['epochs_run']} of {h[n]['hyperparameters']['epochs']}"
                f" ({h[n]['best_epoch']})"
            ),
        ),
        row("training wall time (2 CPU cores)", lambda n: f"{h[n]['train_wall_seconds']:.0f} s"),
        row("augmentation", lambda n: "yes" if h[n]["hyperparameters"]["augment"] else "no"),
        "",
        "The seed architecture keeps its original recipe (Adam 1e-3, no augmentation)"
        + (
            f" and trains for fewer epochs ({h['seed']['hyperparameters']['epochs']} vs"
            f" {h['default']['hyperparameters']['epochs']})"
            if "seed" in h
            and h["seed"]["hyperparameters"]["epochs"] < h["default"]["hyperparameters"]["epochs"]
            else ""
        )
        + "; the shipped model is the default.",
        "",
        "Review policy: digits whose calibrated confidence is below"
        f" {card.review.threshold:.4f} go to review. The threshold is the lowest that kept the"
        f" validation auto-accept error within {_pct(card.review.target_error, 3)}.",
        "",
        *_rejection_lines(card),
        "## Per-class test accuracy (default)",
        "",
        "| digit | " + " | ".join(str(d) for d in range(10)) + " |",
        "| --- | " + " | ".join("---" for _ in range(10)) + " |",
        "| accuracy | "
        + " | ".join(_pct(test["default"]["per_class_accuracy"][str(d)]) for d in range(10))
        + " |",
        "",
        "## Confusion matrix (default; rows true, columns predicted)",
        "",
        "| | " + " | ".join(str(d) for d in range(10)) + " |",
        "| --- | " + " | ".join("---" for _ in range(10)) + " |",
        *(
            f"| **{d}** | " + " | ".join(str(v) for v in r) + " |"
            for d, r in enumerate(test["default"]["confusion_matrix"])
        ),
        "",
        "## Plots",
        "",
        *(f"![{title}]({name})\n" for title, name in plots.items()),
        "## Files",
        "",
        *(f"- `{name}` sha256 `{digest}`" for name, digest in card.sha256.items()),
        "- LiteRT vs Keras max probability difference at batch 32:"
        f" {card.model_dump()['tflite_max_abs_difference']:.1e}",
        "",
    ]
    path = out / REPORT_FILENAME
    path.write_text("\n".join(lines))
    return path


def verify_card_files(model_dir: Path) -> ModelCard:
    """Load the card and check that the files beside it are the ones it describes."""
    card = ModelCard.load(model_dir)
    for name, digest in card.sha256.items():
        if sha256_bytes(model_dir / name) != digest:
            raise ValueError(f"{model_dir / name}: sha256 does not match {CARD_FILENAME}")
    return card


def evaluate_and_export(
    trained: dict, split, out: Path, target_error: float | None = None
) -> ModelCard:
    """Evaluate each trained model (name -> (model, training record)) and export "default".

    Writes the serving files, the card, plots and report.md into `out`.
    """
    from recognition.inference import calibrate
    from training.evaluate import (
        RELIABILITY_PNG,
        RISK_COVERAGE_PNG,
        TARGET_ERROR,
        evaluate,
        plot_reliability,
        plot_risk_coverage,
        predict_probabilities,
        risk_coverage,
        scan_inputs,
    )
    from training.nondigits import test_inputs, validation_inputs

    target_error = TARGET_ERROR if target_error is None else target_error
    # Validation and test both carry synthetic non-digit marks (label 10) beside the digits.
    x_val, y_val = validation_inputs(split)
    x_test, y_test = test_inputs(split)
    digits = y_test < 10
    x_scans, y_scans = scan_inputs(split.x_test, split.y_test)
    metrics, curves, probs = {}, {}, {}
    for name, (model, _) in trained.items():
        val_probs, test_probs = (
            predict_probabilities(model, x_val),
            predict_probabilities(model, x_test),
        )
        metrics[name] = evaluate(val_probs, y_val, test_probs, y_test, target_error)
        calibrated = calibrate(test_probs, metrics[name]["calibration"]["temperature"])
        calibrated = calibrated[digits, :10]
        probs[name] = (test_probs[digits, :10], calibrated)
        scan_predictions = predict_probabilities(model, x_scans)[:, :10].argmax(axis=1)
        metrics[name]["scans"] = {
            "accuracy": float((scan_predictions == y_scans).mean()),
            "count": int(len(y_scans)),
            "description": "test digits rendered as scans (recognition.synthetic.render_scan,"
            " seed 2026) and read through recognition.prepare",
        }
        _, coverage, risk = risk_coverage(calibrated.max(1), calibrated.argmax(1) == y_test[digits])
        curves[name] = (coverage, risk)

    out.mkdir(parents=True, exist_ok=True)
    default_test = metrics["default"]["test"]
    plot_reliability(
        *probs["default"],
        y_test[digits],
        out / RELIABILITY_PNG,
        "Reliability of the default model (MNIST test set)",
    )
    plot_risk_coverage(
        curves,
        (1 - default_test["review_rate"], default_test["auto_accept_error"]),
        out / RISK_COVERAGE_PNG,
    )

    model = trained["default"][0]
    files = write_model_files(model, out, x_test[:32])
    data = {
        "source": split.source,
        "split_sizes": split.sizes(),
        "validation": "stratified, seeded, carved from the official 60k training set only",
        "test": "official MNIST 10k test set (t10k), used only for the metrics here",
        "preprocessing": "recognition.preprocess.normalize_mnist (the serving normalisation)",
    }
    # Recipe, parameter count, epochs, wall time and per-epoch history of every model trained.
    hyperparameters = {name: record for name, (_, record) in trained.items()}
    card = build_card(
        files,
        data,
        hyperparameters,
        metrics,
        architecture=f"{model.name}: "
        + "-".join(layer.__class__.__name__ for layer in model.layers),
    )
    card.save(out)
    write_report(
        card,
        out,
        {"Reliability diagram": RELIABILITY_PNG, "Risk-coverage curve": RISK_COVERAGE_PNG},
    )
    return card


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys

    from training import data as mnist
    from training.train import load_trained

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--prepared", type=Path, required=True, help="folder written by training.data"
    )
    parser.add_argument(
        "--trained-default",
        type=Path,
        required=True,
        help="folder written by training.train --arch default",
    )
    parser.add_argument(
        "--trained-seed", type=Path, help="the seed baseline, reported beside the default"
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--target-error", type=float)
    args = parser.parse_args(argv)

    trained = {"default": load_trained(args.trained_default)}
    if args.trained_seed:
        trained["seed"] = load_trained(args.trained_seed)
    card = evaluate_and_export(
        trained, mnist.load_split(args.prepared), args.out, args.target_error
    )
    print(f"exported {card.version} to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
