"""scripts/fetch-mnist.sh, which CI and the training workflow use to get MNIST: it takes files
that decompress to the real MNIST bytes from any mirror, refuses anything else, and writes the
SHA256SUMS the prepare step checks."""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import pytest

from training.data import IDX_FILES, default_data_dir, verify_checksums

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "fetch-mnist.sh"


def fetch(out: Path, mirror: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT), str(out), mirror.as_uri()], capture_output=True, text=True
    )


@pytest.fixture()
def recompressed_mirror(tmp_path) -> Path:
    """The shared MNIST files, re-gzipped at another level: different .gz bytes, same data."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for name in IDX_FILES.values():
        raw = gzip.decompress((default_data_dir() / name).read_bytes())
        (mirror / name).write_bytes(gzip.compress(raw, compresslevel=1, mtime=0))
    return mirror


def test_fetches_from_a_mirror_verifies_and_writes_checksums(recompressed_mirror, tmp_path):
    out = tmp_path / "mnist"
    result = fetch(out, recompressed_mirror)
    assert result.returncode == 0, result.stderr
    assert set(verify_checksums(out)) == set(IDX_FILES.values())  # SHA256SUMS matches
    again = fetch(out, tmp_path / "nowhere")  # verified files are not downloaded again
    assert again.returncode == 0 and "downloading" not in again.stdout


def test_refuses_a_mirror_with_other_data(recompressed_mirror, tmp_path):
    name = IDX_FILES["test_labels"]
    raw = bytearray(gzip.decompress((recompressed_mirror / name).read_bytes()))
    raw[-1] = (raw[-1] + 1) % 10  # one wrong label
    (recompressed_mirror / name).write_bytes(gzip.compress(bytes(raw)))
    out = tmp_path / "mnist"
    result = fetch(out, recompressed_mirror)
    assert result.returncode == 1
    assert "checksum mismatch" in result.stderr and not (out / name).exists()
    shutil.rmtree(out)
