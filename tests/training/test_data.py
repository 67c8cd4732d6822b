"""Data preparation: IDX and CSV give the same arrays; the split never touches the test set."""

import os
from pathlib import Path

import numpy as np
import pytest

from training import data as mnist


def write_csv(path: Path, images: np.ndarray, labels: np.ndarray, splits=None) -> None:
    header = (
        ["label"] + [f"pixel{i}" for i in range(784)] + (["split"] if splits is not None else [])
    )
    lines = [",".join(header)]
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        row = [str(label), *map(str, image.reshape(-1))]
        lines.append(",".join(row + ([splits[i]] if splits is not None else [])))
    path.write_text("\n".join(lines) + "\n")


def test_idx_folder_loads_the_official_sets(real_mnist):
    assert real_mnist.x_train.shape == (60_000, 28, 28) and real_mnist.x_train.dtype == np.uint8
    assert real_mnist.x_test.shape == (10_000, 28, 28)
    assert real_mnist.y_train.shape == (60_000,) and set(np.unique(real_mnist.y_test)) == set(
        range(10)
    )
    assert real_mnist.source["format"] == "idx"
    # The checksums recorded for the card are the ones SHA256SUMS promises.
    sums = (mnist.default_data_dir() / "SHA256SUMS").read_text()
    for name, digest in real_mnist.source["sha256"].items():
        assert f"{digest}  {name}" in sums


def test_csv_gives_the_same_arrays_as_idx(real_mnist, tmp_path):
    x = np.concatenate([real_mnist.x_train[:30], real_mnist.x_test[:20]])
    y = np.concatenate([real_mnist.y_train[:30], real_mnist.y_test[:20]])
    write_csv(tmp_path / "mnist_full.csv", x, y, ["train"] * 30 + ["test"] * 20)

    from_csv = mnist.load_mnist(tmp_path)  # a folder holding mnist_full.csv
    np.testing.assert_array_equal(from_csv.x_train, real_mnist.x_train[:30])
    np.testing.assert_array_equal(from_csv.y_train, real_mnist.y_train[:30])
    np.testing.assert_array_equal(from_csv.x_test, real_mnist.x_test[:20])
    np.testing.assert_array_equal(from_csv.y_test, real_mnist.y_test[:20])
    assert from_csv.x_train.dtype == np.uint8 and from_csv.source["format"] == "csv"


def test_csv_without_split_column_treats_the_first_60k_rows_as_training(real_mnist, tmp_path):
    write_csv(tmp_path / "seed.csv", real_mnist.x_train[:25], real_mnist.y_train[:25])
    data = mnist.load_mnist(tmp_path / "seed.csv")
    np.testing.assert_array_equal(data.x_train, real_mnist.x_train[:25])
    assert len(data.x_test) == 0


def test_bad_csv_and_bad_folder_are_clear_errors(tmp_path):
    (tmp_path / "short.csv").write_text("label,a,b\n1,2,3\n")
    with pytest.raises(mnist.DataError, match="784 pixel columns"):
        mnist.load_csv(tmp_path / "short.csv")
    with pytest.raises(mnist.DataError, match="neither"):
        mnist.load_mnist(tmp_path)
    with pytest.raises(mnist.DataError, match="no such"):
        mnist.load_mnist(tmp_path / "missing")


def test_checksum_mismatch_is_refused(tmp_path):
    source = mnist.default_data_dir()
    for name in mnist.IDX_FILES.values():
        os.symlink(source / name, tmp_path / name)  # the real files, not copies
    lines = (source / "SHA256SUMS").read_text().splitlines()
    lines[0] = "0" * 64 + "  " + lines[0].split()[1]
    (tmp_path / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    with pytest.raises(mnist.DataError, match="sha256"):
        mnist.load_idx_folder(tmp_path)


def test_truncated_idx_is_refused(tmp_path):
    import gzip

    with gzip.open(tmp_path / "bad.gz", "wb") as f:
        f.write(
            bytes.fromhex("00000803")
            + (10).to_bytes(4, "big")
            + (28).to_bytes(4, "big") * 2
            + b"\0" * 100
        )
    with pytest.raises(mnist.DataError, match="expected"):
        mnist.read_idx(tmp_path / "bad.gz")


def _row_keys(images: np.ndarray) -> set[bytes]:
    return {image.tobytes() for image in images}


def test_split_is_carved_from_training_only_and_leaves_test_untouched(real_mnist):
    split = mnist.split(real_mnist, val_fraction=0.1, seed=42)
    sizes = split.sizes()
    assert sizes["train"] + sizes["validation"] == 60_000 and sizes["test"] == 10_000
    assert sizes["validation"] == pytest.approx(6_000, abs=10)  # rounded per class
    np.testing.assert_array_equal(split.x_test, real_mnist.x_test)
    np.testing.assert_array_equal(split.y_test, real_mnist.y_test)
    train_keys, val_keys = _row_keys(split.x_train), _row_keys(split.x_val)
    official_train = _row_keys(real_mnist.x_train)
    assert train_keys <= official_train and val_keys <= official_train
    # No test digit reaches training or validation (MNIST's sets share no image bytes).
    assert not (train_keys | val_keys) & _row_keys(real_mnist.x_test)
    # Together, train and validation are exactly the official training set, each image once.
    carved = sorted(image.tobytes() for image in np.concatenate([split.x_train, split.x_val]))
    assert carved == sorted(image.tobytes() for image in real_mnist.x_train)
    # Stratified: each class's share in validation matches the training set's.
    val_share = np.bincount(split.y_val, minlength=10) / len(split.y_val)
    all_share = np.bincount(real_mnist.y_train, minlength=10) / len(real_mnist.y_train)
    assert np.abs(val_share - all_share).max() < 0.002


def test_split_is_reproducible_and_seed_dependent(real_mnist):
    a, b = mnist.split(real_mnist, seed=7), mnist.split(real_mnist, seed=7)
    np.testing.assert_array_equal(a.x_val, b.x_val)
    np.testing.assert_array_equal(a.y_train, b.y_train)
    c = mnist.split(real_mnist, seed=8)
    assert not np.array_equal(a.y_val, c.y_val)


def test_subset_is_small_and_stratified(real_mnist):
    split = mnist.split(real_mnist, subset=2000)
    assert len(split.y_train) + len(split.y_val) == pytest.approx(2000, abs=10)
    assert len(split.y_test) == pytest.approx(2000, abs=10)
    assert set(np.unique(split.y_val)) == set(range(10))


def test_saved_split_round_trips(real_mnist, tmp_path):
    split = mnist.split(real_mnist, subset=500)
    mnist.save_split(split, tmp_path)
    again = mnist.load_split(tmp_path)
    for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(again, name), getattr(split, name))
    assert again.source == split.source


def test_model_inputs_use_the_serving_normalisation(real_mnist):
    from recognition.preprocess import to_mnist

    inputs = mnist.model_inputs(real_mnist.x_test[:3])
    assert inputs.shape == (3, 28, 28, 1) and inputs.dtype == np.float32
    assert 0.0 <= inputs.min() and inputs.max() <= 1.0
    np.testing.assert_array_equal(
        inputs[1, :, :, 0], to_mnist(real_mnist.x_test[1].astype(np.float32) / 255.0)
    )
