"""The MNIST folder goes to Azure Blob (Azurite here) and comes back byte for byte."""

import numpy as np
import pytest

from training import blob_data
from training import data as mnist


def test_upload_then_download_round_trips_the_real_mnist_folder(azurite, tmp_path, real_mnist):
    source = mnist.default_data_dir()
    names = blob_data.upload_folder(
        azurite.connection_string, "mnist-test", source, prefix="mnist/"
    )
    assert sorted(names) == sorted(f"mnist/{p.name}" for p in source.iterdir() if p.is_file())

    paths = blob_data.download_folder(azurite.connection_string, "mnist-test", "mnist/", tmp_path)
    for path in paths:
        assert mnist.sha256_file(path) == mnist.sha256_file(source / path.name)
    downloaded = mnist.load_mnist(tmp_path)  # verifies SHA256SUMS too
    np.testing.assert_array_equal(downloaded.x_test, real_mnist.x_test)


def test_download_of_a_missing_prefix_is_an_error(azurite, tmp_path):
    blob_data.upload_folder(azurite.connection_string, "mnist-empty", tmp_path, prefix="x/")
    with pytest.raises(FileNotFoundError, match="no blobs"):
        blob_data.download_folder(
            azurite.connection_string, "mnist-empty", "nothing/", tmp_path / "out"
        )


def test_cli_needs_a_connection_string(monkeypatch):
    monkeypatch.delenv(blob_data.CONNECTION_STRING_ENV, raising=False)
    with pytest.raises(SystemExit) as exit_info:
        blob_data.main(["upload"])
    assert exit_info.value.code == 2
