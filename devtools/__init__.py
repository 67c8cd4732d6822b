"""Development-only helpers shared by tests/, benchmarks/ and scripts/: throwaway real servers
(Postgres, Redis, Azurite, a Celery worker, the API), the MNIST test digits, scans and canvas
drawings made from them, report sections in docs/, and the mutation-testing runner.

Not part of the installed package nor of the images (pyproject's package list and
.dockerignore leave it out); everything here is imported from a checkout of the repository.
Importing it starts nothing.
"""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The model the tests and benchmarks serve: models/default unless DIGITFLOW_TEST_MODEL_DIR says.
MODEL_DIR = Path(os.environ.get("DIGITFLOW_TEST_MODEL_DIR", REPO / "models" / "default"))
