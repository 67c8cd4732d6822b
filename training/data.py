"""MNIST data preparation: read IDX files or a CSV, carve a validation split, fetch from Blob.

The official 10k test set stays separate from everything the training loop sees: the
validation split (early stopping, temperature, review threshold) comes out of the 60k
training images only.
"""

import gzip
import hashlib
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data" / "mnist"
DATA_DIR_ENV = "DIGITFLOW_MNIST_DIR"

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
CSV_FILENAME = "mnist_full.csv"
CHECKSUMS_FILENAME = "SHA256SUMS"
# mnist_full.csv (the seed's format) holds the 60k training rows first, then the 10k test rows,
# unless it carries a `split` column saying "train" or "test" per row.
OFFICIAL_TRAIN_SIZE = 60_000
IMAGE_MAGIC, LABEL_MAGIC = 0x00000803, 0x00000801


class DataError(ValueError):
    """The data folder or file is missing, malformed or fails its checksum."""


@dataclass
class Mnist:
    """uint8 images [N, 28, 28] (white ink on black) and uint8 labels [N]."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: dict = field(default_factory=dict)


@dataclass
class Split:
    """Train/validation carved from the official training set; the test set untouched."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: dict = field(default_factory=dict)

    def sizes(self) -> dict:
        return {"train": len(self.y_train), "validation": len(self.y_val), "test": len(self.y_test)}


def default_data_dir() -> Path:
    return Path(os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_idx(path: Path) -> np.ndarray:
    """Read one (optionally gzipped) IDX file of unsigned bytes."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise DataError(f"{path}: too short to be an IDX file")
    (magic,) = struct.unpack(">I", raw[:4])
    if magic not in (IMAGE_MAGIC, LABEL_MAGIC):
        raise DataError(f"{path}: bad IDX magic {magic:#010x}")
    ndim = magic & 0xFF
    shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise DataError(f"{path}: expected {int(np.prod(shape))} bytes of data, found {data.size}")
    return data.reshape(shape)


def verify_checksums(folder: Path) -> dict[str, str]:
    """Check the IDX files against SHA256SUMS (if present); return name -> sha256."""
    expected = {}
    sums = folder / CHECKSUMS_FILENAME
    if sums.exists():
        for line in sums.read_text().splitlines():
            if line.strip():
                digest, name = line.split()
                expected[name.lstrip("*")] = digest
    actual = {}
    for name in IDX_FILES.values():
        actual[name] = sha256_file(folder / name)
        if name in expected and expected[name] != actual[name]:
            raise DataError(
                f"{folder / name}: sha256 {actual[name]} != {expected[name]} in SHA256SUMS"
            )
    return actual


def load_idx_folder(folder: Path) -> Mnist:
    folder = Path(folder)
    missing = [n for n in IDX_FILES.values() if not (folder / n).exists()]
    if missing:
        raise DataError(f"{folder}: missing {', '.join(missing)}")
    checksums = verify_checksums(folder)
    arrays = {key: read_idx(folder / name) for key, name in IDX_FILES.items()}
    for part in ("train", "test"):
        if len(arrays[f"{part}_images"]) != len(arrays[f"{part}_labels"]):
            raise DataError(f"{folder}: {part} images and labels differ in count")
    return Mnist(
        arrays["train_images"],
        arrays["train_labels"],
        arrays["test_images"],
        arrays["test_labels"],
        source={"format": "idx", "path": str(folder), "sha256": checksums},
    )


def load_csv(path: Path) -> Mnist:
    """Read the seed's mnist_full.csv: a header, a `label` column, 784 pixel columns."""
    path = Path(path)
    with open(path) as f:
        header = f.readline().strip().split(",")
    if "label" not in header:
        raise DataError(f"{path}: no `label` column in the header")
    label_col = header.index("label")
    split_col = header.index("split") if "split" in header else None
    pixel_cols = [i for i, name in enumerate(header) if name not in ("label", "split")]
    if len(pixel_cols) != 784:
        raise DataError(f"{path}: expected 784 pixel columns, found {len(pixel_cols)}")
    table = np.loadtxt(
        path, delimiter=",", skiprows=1, ndmin=2, dtype=np.int64 if split_col is None else str
    )
    if split_col is None:
        is_test = np.arange(len(table)) >= OFFICIAL_TRAIN_SIZE
    else:
        is_test = table[:, split_col] == "test"
    labels = table[:, label_col].astype(np.int64)
    pixels = table[:, pixel_cols].astype(np.int64)
    if pixels.min() < 0 or pixels.max() > 255 or labels.min() < 0 or labels.max() > 9:
        raise DataError(f"{path}: pixel values must be 0-255 and labels 0-9")
    images = pixels.astype(np.uint8).reshape(-1, 28, 28)
    labels = labels.astype(np.uint8)
    return Mnist(
        images[~is_test],
        labels[~is_test],
        images[is_test],
        labels[is_test],
        source={"format": "csv", "path": str(path), "sha256": {path.name: sha256_file(path)}},
    )


def load_mnist(path: Path | None = None) -> Mnist:
    """Load from a folder of IDX files, a folder holding mnist_full.csv, or a CSV file."""
    path = Path(path) if path else default_data_dir()
    if path.is_file():
        return load_csv(path)
    if not path.is_dir():
        raise DataError(f"{path}: no such MNIST folder or CSV (set --data or ${DATA_DIR_ENV})")
    if (path / IDX_FILES["train_images"]).exists():
        return load_idx_folder(path)
    if (path / CSV_FILENAME).exists():
        return load_csv(path / CSV_FILENAME)
    raise DataError(f"{path}: holds neither the MNIST IDX files nor {CSV_FILENAME}")


def split(
    data: Mnist, val_fraction: float = 0.1, seed: int = 42, subset: int | None = None
) -> Split:
    """Stratified, seeded validation split carved from the training set only.

    `subset` keeps a stratified sample of that many training images (and as many test
    images, at most) so tests run in seconds.
    """
    rng = np.random.default_rng(seed)
    pool = np.arange(len(data.y_train))
    if subset:
        pool = _stratified_take(data.y_train, pool, subset, rng)
    val_idx = _stratified_take(data.y_train, pool, round(len(pool) * val_fraction), rng)
    train_idx = np.setdiff1d(pool, val_idx)
    rng.shuffle(train_idx)
    test_idx = np.arange(len(data.y_test))
    if subset and subset < len(test_idx):
        test_idx = np.sort(_stratified_take(data.y_test, test_idx, subset, rng))
    return Split(
        data.x_train[train_idx],
        data.y_train[train_idx],
        data.x_train[val_idx],
        data.y_train[val_idx],
        data.x_test[test_idx],
        data.y_test[test_idx],
        source=data.source,
    )


def _stratified_take(labels: np.ndarray, pool: np.ndarray, count: int, rng) -> np.ndarray:
    """Pick `count` indices from `pool`, keeping each class's share."""
    picked = []
    pool_labels = labels[pool]
    for cls in np.unique(pool_labels):
        members = pool[pool_labels == cls]
        take = round(count * len(members) / len(pool))
        picked.append(rng.choice(members, size=min(take, len(members)), replace=False))
    return np.sort(np.concatenate(picked))


SPLIT_FILENAME = "mnist_split.npz"
SOURCE_FILENAME = "source.json"


def save_split(data: Split, folder: Path) -> Path:
    """Write a prepared split (uint8 arrays + where it came from) for later pipeline steps."""
    import json

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        k: getattr(data, k) for k in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")
    }
    np.savez_compressed(folder / SPLIT_FILENAME, **arrays)
    (folder / SOURCE_FILENAME).write_text(json.dumps(data.source, indent=2))
    return folder / SPLIT_FILENAME


def load_split(folder: Path) -> Split:
    import json

    folder = Path(folder)
    with np.load(folder / SPLIT_FILENAME) as arrays:
        parts = {k: arrays[k] for k in arrays.files}
    source = json.loads((folder / SOURCE_FILENAME).read_text())
    return Split(**parts, source=source)


def add_reviewed(data: Split, folder: Path) -> Split:
    """Add reviewed digits (training/reviewed.py export) to the training part only: validation
    and the official test set stay as they were."""
    from training.reviewed import load_reviewed

    x, y, manifest = load_reviewed(folder)
    source = {**data.source, "reviewed": {"path": str(folder), "digits": int(len(y)),
                                          "documents": manifest["documents"]}}  # fmt: skip
    return Split(
        np.concatenate([data.x_train, x]), np.concatenate([data.y_train, y]),
        data.x_val, data.y_val, data.x_test, data.y_test, source=source,
    )  # fmt: skip


def model_inputs(images: np.ndarray) -> np.ndarray:
    """uint8 MNIST images -> float32 [N, 28, 28, 1] exactly as the serving path normalises them."""
    from recognition.preprocess import normalize_mnist

    return normalize_mnist(images)[..., np.newaxis]


def main(argv: list[str] | None = None) -> int:
    """Prepare step: read MNIST (local folder/CSV, or Blob), split it, write mnist_split.npz."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(description="Prepare the MNIST split for training.")
    parser.add_argument(
        "--data",
        type=Path,
        help=f"IDX folder or CSV (default: ${DATA_DIR_ENV} or ../shared/data/mnist)",
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="folder for mnist_split.npz + source.json"
    )
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--subset", type=int)
    parser.add_argument(
        "--reviewed", type=Path, help="a reviewed data set (python -m training.reviewed export)"
    )
    args = parser.parse_args(argv)

    prepared = split(load_mnist(args.data), args.val_fraction, args.seed, args.subset)
    if args.reviewed:
        prepared = add_reviewed(prepared, args.reviewed)
    save_split(prepared, args.out)
    print(
        f"prepared {prepared.sizes()} from {prepared.source['path']} into {args.out}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
