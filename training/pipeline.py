"""The whole training pipeline in one command: prepare, train, evaluate, export, and choose
the field review threshold (training.fields_eval).

    python -m training.pipeline --out models/default              # the shipped model
    python -m training.pipeline --out /tmp/m --subset 2000 --epochs 1   # a smoke run in seconds

`--with-seed` also trains the first wave's seed architecture on the same split and reports it
beside the default (2-3 more minutes: the shipped model alone fits the 15-minute budget).
Trained models are kept in --work, so evaluation and export can be redone with --reuse without
training again.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

from training import data as mnist
from training.evaluate import TARGET_ERROR
from training.export import evaluate_and_export
from training.fields_eval import TUNE_COUNT, tune_card
from training.nondigits import training_inputs
from training.train import HISTORY_FILENAME, SEED, load_trained, save_trained, train


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--data",
        type=Path,
        help="MNIST IDX folder or CSV (default: $DIGITFLOW_MNIST_DIR or ../shared/data/mnist)",
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="where model files, card and report go"
    )
    parser.add_argument(
        "--work", type=Path, help="where trained models are kept (default: a temporary folder)"
    )
    parser.add_argument(
        "--reuse", action="store_true", help="reuse models already trained in --work"
    )
    parser.add_argument(
        "--subset", type=int, help="use a stratified sample of N training images (for tests)"
    )
    parser.add_argument("--epochs", type=int, help="override the default model's epochs")
    parser.add_argument("--seed-epochs", type=int, help="override the seed baseline's epochs")
    parser.add_argument(
        "--with-seed", action="store_true", help="also train the seed baseline, for comparison"
    )
    parser.add_argument(
        "--init-from",
        type=Path,
        help="fine-tune the default model from this trained model (e.g. models/default)",
    )
    parser.add_argument("--target-error", type=float, default=TARGET_ERROR)
    parser.add_argument(
        "--tune-fields",
        type=int,
        default=TUNE_COUNT,
        help="synthetic cheque amounts the field review threshold is chosen on (0: skip)",
    )
    parser.add_argument("--seed", type=int, default=SEED)
    return parser.parse_args(argv)


def train_all(inputs, args, work: Path) -> dict:
    """Train (or, with --reuse, load) the default model, and the seed baseline if asked."""
    plan = {"default": args.epochs}
    if args.with_seed:
        plan["seed"] = args.seed_epochs or args.epochs
    trained = {}
    for arch, epochs in plan.items():
        folder = work / arch
        if args.reuse and (folder / HISTORY_FILENAME).exists():
            print(f"[{arch}] reusing {folder}", flush=True)
            trained[arch] = load_trained(folder)
            continue
        init_from = args.init_from if arch == "default" else None
        trained[arch] = train(arch, *inputs, seed=args.seed, epochs=epochs, init_from=init_from)
        save_trained(*trained[arch], folder)
    return trained


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    data = mnist.load_mnist(args.data)
    split = mnist.split(data, seed=args.seed, subset=args.subset)
    print(f"data: {split.sizes()} from {split.source['path']}", flush=True)
    # Digits plus synthetic non-digit marks (the 11th class), shuffled together.
    inputs = training_inputs(split, args.seed)
    with tempfile.TemporaryDirectory() as scratch:
        trained = train_all(inputs, args, args.work or Path(scratch))
        card = evaluate_and_export(trained, split, args.out, args.target_error)
    if args.tune_fields:
        card = tune_card(args.out, data, args.tune_fields)

    print(f"pipeline finished in {time.perf_counter() - started:.0f}s", flush=True)
    for name, metrics in card.metrics.items():
        test = metrics["test"]
        print(
            f"{name:8s} test accuracy {test['accuracy']:.4f}  ECE {test['ece_uncalibrated']:.4f}"
            f" -> {test['ece_calibrated']:.4f}  review {test['review_rate']:.2%}"
            f"  auto-accept error {test['auto_accept_error']:.3%}"
        )
    print(f"wrote {args.out} (model {card.version})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
