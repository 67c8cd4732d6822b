"""Is a change to the reader a pure speed-up? Segment a fixed corpus of 2,850 fields of every
kind (the bulk benchmark's 5-digit fields, boxed and not; cheque amounts, 300 dpi scans,
`mixed` and each variation of `training.synthetic_fields`) and compare every crop,
hypothesis, separator and refusal, bit for bit, with what the code before the change gave.
Also prints the CPU a field.

    .venv/bin/python benchmarks/reader_fingerprint.py save    # on the code before the change
    .venv/bin/python benchmarks/reader_fingerprint.py         # after it: "differ: 0" or which
"""

import hashlib
import json
import sys
import time
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from benchmarks.bulk_throughput import field_documents  # noqa: E402
from devtools.mnist import mnist_test_set  # noqa: E402
from recognition import ImageError, segment_image  # noqa: E402
from training.synthetic_fields import VARIATIONS, fields  # noqa: E402

SAVED = REPO / "var" / "reader_fingerprint.json"


def corpus() -> list[bytes]:
    images, labels = mnist_test_set()
    docs = field_documents(images, labels, 600, 5)[1]
    for k, kind in enumerate(("cheque", "scan300", "mixed", *VARIATIONS)):
        docs += [f.image for f in fields(kind, 150, images, labels, seed=900 + k)]
    return docs


def fingerprint(data: bytes) -> str:
    """A digest of everything the segmenter hands the model and the reading."""
    try:
        s = segment_image(data)
    except ImageError as exc:
        return type(exc).__name__
    parts = (s.crops.tobytes(), repr((s.slots, s.separators, s.plain, s.doubtful)).encode())
    return hashlib.sha256(b"".join(parts)).hexdigest()


def main(argv: list[str]) -> int:
    cv2.setNumThreads(1)  # as the API and the workers run it
    docs = corpus()
    started = time.process_time()
    prints = [fingerprint(d) for d in docs]
    each = (time.process_time() - started) / len(docs) * 1000
    print(f"{len(docs)} fields, {each:.3f} ms CPU each")
    if argv[:1] == ["save"]:
        SAVED.parent.mkdir(parents=True, exist_ok=True)
        SAVED.write_text(json.dumps(prints))
        print(f"saved to {SAVED}")
        return 0
    before = json.loads(SAVED.read_text())
    differ = [i for i, (a, b) in enumerate(zip(before, prints, strict=True)) if a != b]
    print(f"differ: {len(differ)}", differ[:20])
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
