"""Train one architecture on a prepared split, with per-epoch progress and early stopping.

python -m training.train --data ../shared/data/mnist --arch default --out /tmp/trained
"""

import argparse
import json
import sys
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from training import data as mnist
from training.model import ARCHITECTURES, augmenter, build_model, vary_stroke_width
from training.nondigits import training_inputs

TRAINED_FILENAME = "trained.keras"
HISTORY_FILENAME = "training.json"

# Per-architecture recipes. The seed keeps its original recipe (Adam 1e-3, no augmentation).
# The default trains all 11 classes at once on a fixed one-cycle schedule (warm-up, then cosine
# decay to zero) with an exponential moving average of the weights, without label smoothing
# (it squashed confidences: more scans sent to review, docs/training.md); a fixed
# schedule has no early stopping, so the "not a digit" marks (learnt in an epoch) cannot stop
# training before the digits are learnt well. Chosen on validation: docs/model-training.md.
RECIPES = {
    "default": {
        "epochs": 15,
        "batch_size": 128,
        "learning_rate": 3e-3,
        "schedule": "one_cycle",
        "warmup_fraction": 0.1,
        "label_smoothing": 0.0,
        "ema_momentum": 0.999,
        "scan_fraction": 0.0,  # tried at 0.3: docs/training.md, "Third run"
        "augment": True,
        "early_stopping_patience": None,
        # Then two gentle epochs with the training digits' field crops added (field_stage).
        "field_stage": {"fields_per_digit": 0.11, "epochs": 2, "learning_rate": 3e-4},
    },
    # Fine-tuning a trained 10-class model into the 11-class one (`--init-from`): its digit
    # weights are kept, the "not a digit" output is new; a short, gentle schedule.
    "finetune": {
        "epochs": 4,
        "batch_size": 128,
        "learning_rate": 5e-4,
        "lr_decay_per_epoch": 0.5,
        "augment": True,
        "early_stopping_patience": 2,
    },
    "seed": {
        "epochs": 8,
        "batch_size": 128,
        "learning_rate": 1e-3,
        "lr_decay_per_epoch": 1.0,
        "augment": False,
        "early_stopping_patience": 3,
    },
}
BN_BATCHES, BN_BATCH_SIZE = 40, 256  # batch-norm statistics re-estimated on ~10k images
EMA_SPAN = 7  # the weight average spans at most 1/EMA_SPAN of the training steps
RECIPE_OF = {"wide": "default"}  # architectures that share another's recipe
SEED = 42
SHUFFLE_BUFFER = 10_000


class EpochLine(keras.callbacks.Callback):
    """One progress line per epoch: losses, accuracies, learning rate, elapsed time."""

    def __init__(self, name: str, epochs: int):
        super().__init__()
        self.name, self.epochs = name, epochs

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        print(
            f"[{self.name}] epoch {epoch + 1}/{self.epochs}"
            f"  loss {logs.get('loss', float('nan')):.4f}"
            f"  acc {logs.get('accuracy', float('nan')):.4f}"
            f"  val_loss {logs.get('val_loss', float('nan')):.4f}"
            f"  val_acc {logs.get('val_accuracy', float('nan')):.4f}"
            f"  lr {float(self.model.optimizer.learning_rate):.2e}"
            f"  {time.perf_counter() - self.start:.0f}s",
            flush=True,
        )


def train_dataset(x: np.ndarray, y: np.ndarray, recipe: dict, seed: int) -> tf.data.Dataset:
    """Shuffled batches; augmentation happens here, so it never reaches the exported model."""
    ds = tf.data.Dataset.from_tensor_slices((x, encode_labels(y, recipe)))
    ds = ds.shuffle(SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(recipe["batch_size"])
    if recipe["augment"]:
        distort = augmenter(seed)
        # One map call at a time keeps the random stream, and so the run, reproducible.
        ds = ds.map(
            lambda images, labels: (vary_stroke_width(distort(images, training=True)), labels)
        )
    return ds.prefetch(tf.data.AUTOTUNE)


def with_scans(x: np.ndarray, y: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A copy of `x` where `fraction` of the digits are rendered as scans and read back through
    the serving path (`recognition.prepare`), so training sees what the platform reads."""
    from recognition import prepare
    from recognition.synthetic import render_scan

    rng = np.random.default_rng(seed + 7)
    digits = np.flatnonzero(y < 10)
    x = x.copy()
    for i in rng.choice(digits, int(len(digits) * fraction), replace=False):
        x[i, ..., 0] = prepare(render_scan((x[i, ..., 0] * 255).round().astype(np.uint8), rng))
    return x


def encode_labels(y: np.ndarray, recipe: dict) -> np.ndarray:
    """Integer labels, or one-hot rows when the recipe smooths labels (Keras smooths only those)."""
    if not recipe.get("label_smoothing"):
        return y.astype(np.int32)
    return np.eye(recipe["classes"], dtype=np.float32)[y]


def compile_for(model: keras.Model, recipe: dict, steps_per_epoch: int) -> list:
    """Compile `model` with the recipe's optimizer, schedule and loss; return its callbacks."""
    rate, callbacks = recipe["learning_rate"], []
    total = recipe["epochs"] * steps_per_epoch
    if recipe.get("schedule") == "one_cycle":
        warmup = int(total * recipe["warmup_fraction"])
        rate = keras.optimizers.schedules.CosineDecay(
            rate / 25, total - warmup, alpha=0.0, warmup_target=rate, warmup_steps=warmup
        )
    else:
        callbacks.append(
            keras.callbacks.LearningRateScheduler(
                lambda epoch: recipe["learning_rate"] * recipe["lr_decay_per_epoch"] ** epoch
            )
        )
    ema = recipe.get("ema_momentum")
    if ema:  # a short run would otherwise keep its random start
        ema = max(0.0, min(ema, 1 - EMA_SPAN / total))
    optimizer = keras.optimizers.Adam(rate, use_ema=bool(ema), ema_momentum=ema or 0.99)
    if ema:  # validate on the averaged weights, which are the ones kept at the end
        callbacks.append(keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
    smoothing = recipe.get("label_smoothing")
    loss = (
        keras.losses.CategoricalCrossentropy(label_smoothing=smoothing)
        if smoothing
        else keras.losses.SparseCategoricalCrossentropy()
    )
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    if recipe.get("early_stopping_patience"):
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss",
                patience=recipe["early_stopping_patience"],
                restore_best_weights=True,
            )
        )
    return callbacks


def recalibrate_batch_norm(model: keras.Model, x: np.ndarray, batches: int = BN_BATCHES) -> int:
    """Set every BatchNormalization layer's moving mean and variance to the average over
    `batches` batches of `x` under the final weights. The moving statistics gathered during
    training trail weights that kept changing (and those of the weight average were never seen);
    a short run would otherwise keep their starting values. Returns the images used."""
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    size = -(-min(len(x), batches * BN_BATCH_SIZE) // batches)
    starts = range(0, min(len(x), batches * size), size)
    momentum = [layer.momentum for layer in norms]
    for i, start in enumerate(starts):
        for layer in norms:  # a running mean over the batches: batch i weighs 1 / (i + 1)
            layer.momentum = i / (i + 1)
        model(x[start : start + size], training=True)
    for layer, kept in zip(norms, momentum, strict=True):
        layer.momentum = kept
    return min(len(x), len(starts) * size)


def with_reject_output(trained: keras.Model) -> keras.Model:
    """A trained 10-class model with an 11th output ("not a digit") added to its last layer:
    every other weight is kept, the new output starts at zero."""
    from training.model import NUM_CLASSES

    config = trained.get_config()
    config["layers"][-1]["config"]["units"] = NUM_CLASSES
    model = trained.__class__.from_config(config)
    for old, new in zip(trained.layers[:-1], model.layers[:-1], strict=True):
        new.set_weights(old.get_weights())
    kernel, bias = trained.layers[-1].get_weights()
    extra = NUM_CLASSES - kernel.shape[1]
    model.layers[-1].set_weights([np.pad(kernel, ((0, 0), (0, extra))), np.pad(bias, (0, extra))])
    return model


def starting_model(arch: str, init_from: Path | None, classes: int | None, recipe: dict):
    """A fresh `arch`, or the trained model at `init_from` (a model directory or .keras file)
    with a "not a digit" output added if it lacks one; `recipe` records where it came from."""
    if not init_from:
        return build_model(arch, **({"classes": classes} if classes else {}))
    path = Path(init_from)
    path = path / "model.keras" if path.is_dir() else path
    model = keras.saving.load_model(path, compile=False)
    recipe["init_from"] = str(path)
    return with_reject_output(model) if model.output_shape[-1] != 11 else model


def train(
    arch: str,
    x_train,
    y_train,
    x_val,
    y_val,
    *,
    epochs: int | None = None,
    seed: int = SEED,
    init_from: Path | None = None,
    classes: int | None = None,
    overrides: dict | None = None,
) -> tuple[keras.Model, dict]:
    """Train `arch` on model inputs (float32 [N, 28, 28, 1]); return the model and a record.

    With `init_from` (a model directory or .keras file of the same architecture), start from
    its weights and fine-tune with the "finetune" recipe."""
    keras.utils.set_random_seed(seed)
    recipe = dict(RECIPES["finetune" if init_from else RECIPE_OF.get(arch, arch)], seed=seed)
    recipe.update(overrides or {})
    if epochs is not None:
        recipe["epochs"] = epochs
    model = starting_model(arch, init_from, classes, recipe)
    recipe["classes"] = model.output_shape[-1]
    if recipe.get("scan_fraction"):
        x_train = with_scans(x_train, y_train, recipe["scan_fraction"], seed)
    steps = -(-len(y_train) // recipe["batch_size"])
    callbacks = [EpochLine(arch, recipe["epochs"]), *compile_for(model, recipe, steps)]
    started, cpu_started = time.perf_counter(), time.process_time()
    history = model.fit(
        train_dataset(x_train, y_train, recipe, seed),
        validation_data=(x_val, encode_labels(y_val, recipe)),
        epochs=recipe["epochs"],
        callbacks=callbacks,
        shuffle=False,  # the dataset shuffles itself
        verbose=0,
    )
    if recipe.get("ema_momentum"):
        recipe["batch_norm_recalibrated_on"] = recalibrate_batch_norm(model, x_train)
    stage = field_stage(model, arch, x_train, y_train, x_val, y_val, recipe, seed)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    val_losses = history.history["val_loss"]
    record = {
        "architecture": arch,
        "parameters": model.count_params(),
        "hyperparameters": recipe,
        "epochs_run": len(val_losses),
        "best_epoch": int(np.argmin(val_losses)) + 1,
        "train_wall_seconds": round(wall, 1),
        # CPU seconds used by training: wall time grows when other work shares the machine.
        "train_cpu_seconds": round(cpu, 1),
        "history": {k: [round(float(v), 5) for v in vs] for k, vs in history.history.items()},
    }
    if stage:
        record["field_stage"] = stage
    print(f"[{arch}] trained in {wall:.0f}s; best epoch {record['best_epoch']}", flush=True)
    return model, record


def field_stage(model: keras.Model, arch: str, x_train, y_train, x_val, y_val, recipe: dict,
                seed: int) -> dict | None:  # fmt: skip
    """The recipe's last stage, if it has one: a short, gentle schedule over the training set
    plus its own digits as the field reader crops them out of synthetic fields
    (training.field_crops), "not a digit" marks added in their usual share. The model meets
    served crops in training, not only MNIST's. Returns what the stage did."""
    stage = recipe.get("field_stage")
    if not stage:
        return None
    from training.field_crops import field_crops
    from training.nondigits import SHARE, add_nondigits

    started = time.perf_counter()
    digits = y_train < 10
    images = (x_train[digits, ..., 0] * 255).round().astype(np.uint8)
    count = round(stage["fields_per_digit"] * len(images))
    crops, labels = field_crops(images, y_train[digits], count, seed)
    if recipe["classes"] > 10:  # a model with a "not a digit" output keeps seeing marks
        crops, labels = add_nondigits(crops, labels, SHARE, images, seed + 5)
    order = np.random.default_rng(seed).permutation(len(y_train) + len(labels))
    x = np.concatenate([x_train, crops])[order]
    y = np.concatenate([y_train, labels])[order].astype(np.int32)
    steps = -(-len(order) // recipe["batch_size"]) * stage["epochs"]
    model.compile(
        optimizer=keras.optimizers.Adam(
            keras.optimizers.schedules.CosineDecay(stage["learning_rate"], steps)
        ),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=["accuracy"],
    )
    history = model.fit(
        x, y, batch_size=recipe["batch_size"], epochs=stage["epochs"],
        validation_data=(x_val, y_val.astype(np.int32)),
        callbacks=[EpochLine(f"{arch} fields", stage["epochs"])], verbose=0,
    )  # fmt: skip
    return {
        "fields": count,
        "crops": int((labels < 10).sum()),
        "wall_seconds": round(time.perf_counter() - started, 1),
        "history": {k: [round(float(v), 5) for v in vs] for k, vs in history.history.items()},
    }


def save_trained(model: keras.Model, record: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / TRAINED_FILENAME)
    (out / HISTORY_FILENAME).write_text(json.dumps(record, indent=2))


def load_trained(folder: Path) -> tuple[keras.Model, dict]:
    model = keras.saving.load_model(folder / TRAINED_FILENAME)
    return model, json.loads((folder / HISTORY_FILENAME).read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--data",
        type=Path,
        help="MNIST IDX folder or CSV (default: $DIGITFLOW_MNIST_DIR or ../shared/data/mnist)",
    )
    source.add_argument("--prepared", type=Path, help="folder written by `python -m training.data`")
    parser.add_argument("--arch", choices=ARCHITECTURES, default="default")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--subset", type=int, help="train on a stratified sample of N images")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)

    split = (
        mnist.load_split(args.prepared)
        if args.prepared
        else mnist.split(mnist.load_mnist(args.data), seed=args.seed, subset=args.subset)
    )
    model, record = train(
        args.arch,
        *training_inputs(split, args.seed),
        epochs=args.epochs,
        seed=args.seed,
    )
    save_trained(model, record, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
