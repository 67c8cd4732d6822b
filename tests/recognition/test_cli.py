import json
import subprocess
import sys

import numpy as np

from recognition.synthetic import render_scan


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "digitflow.cli", "recognize", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_recognize_prints_one_json_object_per_file(tmp_path, mnist):
    rng = np.random.default_rng(7)
    files = []
    for i in range(5):
        path = tmp_path / f"scan{i}.{'png' if i % 2 else 'jpg'}"
        path.write_bytes(render_scan(mnist.x_test[i], rng, "PNG" if i % 2 else "JPEG"))
        files.append(str(path))
    result = run_cli("--json", *files)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["file"] for row in rows] == files
    assert [row["digit"] for row in rows] == mnist.y_test[:5].tolist()
    for row in rows:
        assert set(row) == {
            "file", "text", "digit", "digits", "confidence", "needs_review", "review_reasons"
        }  # fmt: skip
        assert row["text"] == str(row["digit"])
        assert 0 <= row["confidence"] <= 1 and isinstance(row["needs_review"], bool)
        assert row["needs_review"] == bool(row["review_reasons"])


def test_unreadable_files_are_reported_and_the_rest_recognised(tmp_path, mnist):
    good = tmp_path / "good.png"
    good.write_bytes(render_scan(mnist.x_test[0], np.random.default_rng(1), "PNG"))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"this is not an image")
    result = run_cli(str(bad), str(good), str(tmp_path / "missing.png"))
    assert result.returncode == 1
    assert f"{good}: {mnist.y_test[0]}" in result.stdout
    assert "bad.png: error: not an image" in result.stderr
    assert "missing.png: error:" in result.stderr


def test_folders_are_read_recursively_zips_pointed_to_bulk_and_output_is_only_results(
    tmp_path, mnist
):
    import io
    import zipfile

    rng = np.random.default_rng(3)
    (tmp_path / "a" / "b").mkdir(parents=True)
    for i, where in enumerate(["a", "a/b", "a/b"]):
        (tmp_path / where / f"d{i}.png").write_bytes(render_scan(mnist.x_test[i], rng, "PNG"))
    (tmp_path / "a" / "notes.txt").write_text("not an image, and not an image name")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("x.png", b"whatever")
    (tmp_path / "scans.zip").write_bytes(archive.getvalue())

    result = run_cli(str(tmp_path / "a"), str(tmp_path / "scans.zip"))
    assert result.returncode == 1  # the ZIP is an error
    lines = result.stdout.splitlines()
    assert len(lines) == 3 and all(": " in line and "confidence" in line for line in lines)
    assert "d1.png" in lines[1] or "d1.png" in lines[0]
    assert result.stderr.strip().splitlines() == [
        f"{tmp_path / 'scans.zip'}: error: a ZIP archive: upload it as a bulk job "
        "(the /bulk page or POST /jobs)"
    ]  # and nothing else: no runtime banners


def test_version():
    result = subprocess.run(
        [sys.executable, "-m", "digitflow.cli", "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stdout.startswith("digitflow ")
def test_layout_reads_a_field_or_one_digit(tmp_path, mnist):
    from training.synthetic_fields import FieldSpec, render_field

    made = render_field(
        FieldSpec(count=4, structure="box", height=40), mnist.x_test, mnist.y_test,
        np.random.default_rng(3),
    )  # fmt: skip
    path = tmp_path / "amount.png"
    path.write_bytes(made.image)
    field = json.loads(run_cli("--json", "--layout", "field", str(path)).stdout)
    assert field["text"] == made.text and len(field["digits"]) == 4
    digit = json.loads(run_cli("--json", "--layout", "digit", str(path)).stdout)
    assert len(digit["text"]) == 1
    refused = run_cli("--layout", "sideways", str(path))
    assert refused.returncode == 2 and "invalid choice" in refused.stderr
