"""Fine-tune the current model on MNIST plus reviewed documents (see training/reviewed.py).

The previous model and the new one are evaluated by the same code (training.export) on the same
split; the new card carries both side by side (`metrics.default` and `metrics.previous`) and
names the reviewed data that went in (`data.reviewed`).
"""

import json
import time
from pathlib import Path

import numpy as np

from recognition.card import KERAS_FILENAME, ModelCard

FINETUNE = {
    "epochs": 2,
    "batch_size": 128,
    "learning_rate": 2e-4,  # a tenth of the default recipe's: adjust the model, do not retrain it
    # Reviewed digits are few and are the traffic that matters: each is seen this many times
    # per epoch.
    "reviewed_repeat": 5,
    "augment": False,
}
REPORT_SECTION = "finetune.md"


def _training_set(split, reviewed_x, reviewed_y, repeat: int):
    from training.data import model_inputs

    x = (
        np.concatenate([split.x_train, *([reviewed_x] * repeat)])
        if len(reviewed_x)
        else split.x_train
    )
    y = (
        np.concatenate([split.y_train, *([reviewed_y] * repeat)])
        if len(reviewed_y)
        else split.y_train
    )
    return model_inputs(x), y


def finetune(
    model_dir: Path, split, reviewed_dir: Path, out: Path, *, epochs: int | None = None,
    seed: int = 42,
) -> ModelCard:  # fmt: skip
    import keras

    from training.export import evaluate_and_export
    from training.reviewed import load_reviewed

    keras.utils.set_random_seed(seed)
    recipe = dict(FINETUNE, seed=seed, epochs=epochs or FINETUNE["epochs"])
    reviewed_x, reviewed_y, manifest = load_reviewed(reviewed_dir)
    previous_card = ModelCard.load(model_dir)
    previous = keras.saving.load_model(Path(model_dir) / KERAS_FILENAME, compile=False)
    model = keras.saving.load_model(Path(model_dir) / KERAS_FILENAME, compile=False)
    model.compile(
        optimizer=keras.optimizers.Adam(recipe["learning_rate"]),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    x, y = _training_set(split, reviewed_x, reviewed_y, recipe["reviewed_repeat"])
    from training.data import model_inputs

    started = time.perf_counter()
    history = model.fit(
        x, y.astype(np.int32), batch_size=recipe["batch_size"], epochs=recipe["epochs"],
        validation_data=(model_inputs(split.x_val), split.y_val.astype(np.int32)), verbose=0,
    )  # fmt: skip
    record = {
        "architecture": "finetuned",
        "parameters": model.count_params(),
        "hyperparameters": recipe,
        "epochs_run": recipe["epochs"],
        "best_epoch": recipe["epochs"],
        "train_wall_seconds": round(time.perf_counter() - started, 1),
        "history": {k: [round(float(v), 5) for v in vs] for k, vs in history.history.items()},
        "started_from": previous_card.version,
    }
    previous_record = previous_card.hyperparameters.get("default") or {"parameters": 0}
    card = evaluate_and_export(
        {"default": (model, record), "previous": (previous, previous_record)}, split, Path(out)
    )
    return _record_reviewed_data(card, previous_card, manifest, reviewed_dir, len(reviewed_y), out)


def _record_reviewed_data(
    card, previous_card, manifest, reviewed_dir, digits: int, out
) -> ModelCard:
    manifest_path = Path(reviewed_dir) / "manifest.json"
    from training.data import sha256_file

    card.data["reviewed"] = {
        "path": str(reviewed_dir),
        "manifest_sha256": sha256_file(manifest_path),
        "documents": manifest["documents"],
        "digits": digits,
        "document_ids": [item["document_id"] for item in manifest["items"]],
        "csv_sha256": manifest["sha256"],
        "used_for": "training only (never validation or test)",
    }
    card.data["previous_model"] = {"version": previous_card.version, "sha256": previous_card.sha256}
    card.save(out)
    _write_comparison(card, previous_card, Path(out))
    return card


def _write_comparison(card: ModelCard, previous_card: ModelCard, out: Path) -> Path:
    new, old = card.metrics["default"]["test"], card.metrics["previous"]["test"]
    rows = [
        ("test accuracy", "accuracy", "{:.4%}"),
        ("test errors", "errors", "{}"),
        ("ECE after temperature scaling", "ece_calibrated", "{:.3%}"),
        ("sent to review", "review_rate", "{:.2%}"),
        ("error among auto-accepted", "auto_accept_error", "{:.3%}"),
    ]
    reviewed = card.data["reviewed"]
    lines = [
        f"# Fine-tuned {card.version} from {previous_card.version}",
        "",
        f"Reviewed data: {reviewed['documents']} documents, {reviewed['digits']} digits"
        f" (manifest sha256 `{reviewed['manifest_sha256'][:16]}…`), added to MNIST's training"
        f" split. Test set: {new['count']:,} official MNIST test digits.",
        "",
        "| | previous | fine-tuned |",
        "| --- | --- | --- |",
        *(
            f"| {label} | {fmt.format(old[key])} | {fmt.format(new[key])} |"
            for label, key, fmt in rows
        ),
        "",
    ]
    path = out / REPORT_SECTION
    path.write_text("\n".join(lines))
    (out / "finetune.json").write_text(json.dumps({"previous": old, "finetuned": new}, indent=2))
    return path
