"""Export a trained model for serving: model.keras, model.tflite, model_card.json, report.md.

The .keras file is the contract (float32 [N, 28, 28, 1] in [0, 1], white ink on black ->
softmax over 10 digits and "not a digit"); the .tflite file is what the recognition core serves:
converted with a dynamic batch dimension and int8 weights (dynamic-range quantization), and
checked against the Keras file through `recognition.Recognizer` -- the serving code itself --
before the export counts as done. Every figure of the card is measured on the very .tflite
file written (`training.evaluate.as_served`, then `evaluate_models` hands its bytes here).

    python -m training.export --prepared /tmp/prepared --trained-default /tmp/trained --out DIR
"""

import datetime as dt
from pathlib import Path

import numpy as np

from recognition.card import CARD_FILENAME, KERAS_FILENAME, TFLITE_FILENAME, ModelCard
from training.data import sha256_file
from training.report import REPORT_FILENAME, write_report

__all__ = ["REPORT_FILENAME", "evaluate_and_export", "verify_card_files", "write_report"]

# int8 weights move a probability by a few hundredths (0.03-0.06 seen on the test digits); a
# broken conversion (wrong weights, wrong layout) by most of the range.
TFLITE_TOLERANCE = 0.1
# Images for the parity check: 45 = 32 + 8 + 4 + 1 runs four of the core's batch sizes.
PARITY_IMAGES = 45
DATA_DESCRIPTION = {
    "validation": "stratified, seeded, carved from the official 60k training set only",
    "test": "official MNIST 10k test set (t10k), used only for the metrics here",
    "preprocessing": "recognition.preprocess.normalize_mnist (the serving normalisation)",
}


def to_tflite(model) -> bytes:
    """The LiteRT file of `model`, its weights stored as int8 (dynamic-range quantization): the
    activations are quantized per image as it runs, so XNNPACK's int8 kernels read a digit in
    about a quarter of the float model's CPU, and a digit's output never depends on the others
    in its batch. Accuracy and calibration are measured on this file, not on the Keras one."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    return converter.convert()


def write_model_files(model, out: Path, tflite: bytes | None = None) -> dict[str, str]:
    """Write model.keras and model.tflite (`tflite`, the file the metrics were measured on,
    else converted here); return their sha256 by file name."""
    out.mkdir(parents=True, exist_ok=True)
    # A clean copy without optimizer state: smaller, and all that serving needs.
    serving = model.__class__.from_config(model.get_config())
    serving.set_weights(model.get_weights())
    serving.save(out / KERAS_FILENAME)
    (out / TFLITE_FILENAME).write_bytes(tflite or to_tflite(serving))
    return {name: sha256_file(out / name) for name in (KERAS_FILENAME, TFLITE_FILENAME)}


def litert_parity(model_dir: Path, images: np.ndarray) -> float:
    """Largest |LiteRT - Keras| raw probability over `images`, both read by the serving core."""
    from recognition.inference import Recognizer

    lite = Recognizer(model_dir, backend="litert").raw_probabilities(images)
    kept = Recognizer(model_dir, backend="keras").raw_probabilities(images)
    return float(np.abs(lite - kept).max())


def build_card(sha256: dict, data: dict, trained: dict, metrics: dict, model) -> ModelCard:
    now = dt.datetime.now(dt.UTC)
    return ModelCard(
        version=f"{now:%Y.%m.%d}-{sha256[TFLITE_FILENAME][:8]}",
        created_at=now.isoformat(timespec="seconds"),
        architecture=f"{model.name}: " + "-".join(type(layer).__name__ for layer in model.layers),
        sha256=sha256,
        data=data,
        # Recipe, parameter count, epochs, wall time and per-epoch history of every model trained.
        hyperparameters={name: record for name, (_, record) in trained.items()},
        metrics=metrics,
        calibration=metrics["default"]["calibration"],
        review=metrics["default"]["review"],
    )


def verify_card_files(model_dir: Path) -> ModelCard:
    """Load the card and check that the files beside it are the ones it describes."""
    card = ModelCard.load(model_dir)
    for name, digest in card.sha256.items():
        if sha256_file(model_dir / name) != digest:
            raise ValueError(f"{model_dir / name}: sha256 does not match {CARD_FILENAME}")
    return card


def export(trained: dict, split, out: Path, metrics: dict, parity_images: np.ndarray,
           tflite: bytes | None = None) -> ModelCard:  # fmt: skip
    """Write the default model's files (`tflite`: its measured LiteRT file) and its card;
    refuse a LiteRT file that disagrees."""
    model = trained["default"][0]
    sha256 = write_model_files(model, out, tflite)
    data = {"source": split.source, "split_sizes": split.sizes(), **DATA_DESCRIPTION}
    card = build_card(sha256, data, trained, metrics, model)
    card.save(out)  # the Recognizer of the parity check reads it
    difference = litert_parity(out, parity_images)
    if difference > TFLITE_TOLERANCE:
        (out / TFLITE_FILENAME).unlink()
        raise RuntimeError(f"LiteRT and Keras disagree by {difference:.2e} (> {TFLITE_TOLERANCE})")
    card.tflite_max_abs_difference = difference
    card.save(out)
    return card


def evaluate_and_export(
    trained: dict, split, out: Path, target_error: float | None = None
) -> ModelCard:
    """Evaluate each trained model (name -> (model, training record)) and export "default".

    Writes the serving files, the card, plots and report.md into `out`.
    """
    from training.evaluate import evaluate_models, write_plots
    from training.nondigits import test_inputs

    metrics, test_outputs, files = evaluate_models(trained, split, target_error)
    out.mkdir(parents=True, exist_ok=True)
    plots = write_plots(metrics, test_outputs, out)
    x_test, _ = test_inputs(split)
    card = export(trained, split, out, metrics, x_test[:PARITY_IMAGES, ..., 0], files["default"])
    write_report(card, out, plots)
    return card


def main(argv: list[str] | None = None) -> int:
    import sys

    from training import data as mnist
    from training.evaluate import trained_models_parser

    parser = trained_models_parser(__doc__)
    parser.add_argument(
        "--trained-seed", type=Path, help="the seed baseline, reported beside the default"
    )
    args = parser.parse_args(argv)

    from training.train import load_trained

    trained = {"default": load_trained(args.trained)}
    if args.trained_seed:
        trained["seed"] = load_trained(args.trained_seed)
    card = evaluate_and_export(
        trained, mnist.load_split(args.prepared), args.out, args.target_error
    )
    print(f"exported {card.version} to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
