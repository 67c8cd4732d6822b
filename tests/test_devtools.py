"""devtools/: the helpers the tests and the benchmarks share, and the mutation plans."""

import io
import re
import tomllib

import numpy as np
from PIL import Image

from devtools import REPO, mutation
from devtools.mnist import mnist_sample, mnist_test_set
from devtools.scans import canvas_drawing, canvas_png, scans


def test_each_mutation_plan_names_files_and_tests_that_exist():
    for name, plan in mutation.PLANS.items():
        for pattern in plan.mutate:
            assert list(REPO.glob(pattern.replace("*", "**/*.py"))), (name, pattern)
        for path in plan.skip + [t for t in plan.tests if not t.startswith("-")]:
            assert (REPO / path).exists(), (name, path)
        for test in plan.deselect:
            file, _, function = test.partition("::")
            assert f"def {function}(" in (REPO / file).read_text(), (name, test)


def test_a_plan_replaces_the_mutmut_table_of_pyproject():
    text = (REPO / "pyproject.toml").read_text()
    plan = mutation.PLANS["api-jobs"]
    rewritten = re.sub(r"\[tool\.mutmut\]\n(?:[^\[].*\n|\n)*", "", text).rstrip()
    config = tomllib.loads(rewritten + "\n\n" + mutation.mutmut_section(plan))
    assert config["tool"]["mutmut"]["only_mutate"] == ["api/jobs/*"]
    assert config["tool"]["mutmut"]["pytest_add_cli_args_test_selection"] == plan.tests
    assert config["tool"]["ruff"]["line-length"] == 100  # the rest of the file is intact


def test_mnist_samples_are_reproducible_and_labelled():
    images, labels = mnist_test_set()
    assert images.shape == (10_000, 28, 28) and labels.shape == (10_000,)
    first, first_labels = mnist_sample(5, seed=3)
    again, _ = mnist_sample(5, seed=3)
    other, _ = mnist_sample(5, seed=4)
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    assert set(first_labels.tolist()) <= set(range(10))


def test_scans_and_drawings_are_what_they_say():
    name, data, label = scans(1, start=7)[0]
    assert name == "scan_00007.png" and label == int(mnist_test_set()[1][7])
    scan = np.asarray(Image.open(io.BytesIO(data)))
    assert scan.shape == (56, 56) and scan.max() > 200 and scan.min() < 60  # ink on paper
    digit = mnist_test_set()[0][0]
    drawing = Image.open(io.BytesIO(canvas_drawing(digit)))
    assert drawing.mode == "RGBA" and drawing.size == (280, 280)
    alpha = np.asarray(drawing)[..., 3]
    assert alpha[:40].max() == 0 and alpha.max() > 200  # ink only where it was pasted
    rng_a, rng_b = np.random.default_rng(1), np.random.default_rng(1)
    assert canvas_png(digit, rng_a) == canvas_png(digit, rng_b)
