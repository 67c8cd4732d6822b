"""Reviewed documents back into training: export them as a labelled data set, fine-tune on it.

    python -m training.reviewed export --out var/reviewed [--tenant T]
    python -m training.reviewed finetune --model models/default --reviewed var/reviewed --out DIR

`export` reads every document whose review is final and has a reading (accepted or corrected;
unreadable ones have no label) from the database and storage named by the platform settings
(DATABASE_URL, STORAGE_*), and writes:

- `reviewed_digits.csv` — the seed's form: `label`, `split` (always `train`) and 784 pixel
  columns, one row per digit (white ink on black, 0-255). Every document is cut by the
  segmenter that served it (`recognition.segment_image` with its job's layout, as the workers
  and the API call it), so a training digit is the very crop the model read. Where the segmenter
  offers several readings of some ink (a broken digit, two touching digits), the reviewed text
  chooses: the readings that give as many digits as it has, the marks as they are before cut
  or joined ones (`served_crops`). A document with no such reading is skipped and counted;
- `fields/` + `fields.csv` — every field's original scan with its reviewed string;
- `manifest.json` — which documents went in (ids, jobs, statuses), counts and sha256s.

`training.data.load_csv` reads the CSV as it is, and `python -m training.data --reviewed DIR`
adds it to a prepared split's training part (never to validation or test).

`finetune` starts from the current model's weights, trains a few epochs at a low learning rate
on MNIST's training split plus the reviewed digits, and exports a new model directory whose
card records the reviewed data set (manifest sha256, document count) and its metrics side by
side with the previous model on the official MNIST test set.
"""

import csv
import itertools
import json
import math
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from training.data import sha256_file

DIGITS_CSV = "reviewed_digits.csv"
FIELDS_CSV = "fields.csv"
FIELDS_DIR = "fields"
MANIFEST = "manifest.json"
HEADER = ["label", "split", *(f"pixel{i}" for i in range(784))]
IMAGE_SUFFIX = {b"\x89PNG": ".png", b"\xff\xd8\xff": ".jpg", b"GIF8": ".gif", b"BM": ".bmp"}


@dataclass
class ReviewedDocument:
    document_id: str
    job_id: str
    layout: str
    status: str
    text: str
    storage_key: str


@dataclass
class Export:
    out: Path
    digits: list[tuple[int, np.ndarray]] = field(default_factory=list)
    fields: list[dict] = field(default_factory=list)
    documents: list[dict] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)
    max_pixels: int | None = None  # the decode budget serving used (None: the core's default)


def reviewed_documents(sessions, tenant_id: str | None = None) -> list[ReviewedDocument]:
    from sqlalchemy import select

    from digitflow.db import Document, Job, ReviewStatus, ReviewTask

    query = (
        select(ReviewTask, Document.storage_key, Job.layout)
        .join(Document, Document.id == ReviewTask.document_id)
        .join(Job, Job.id == ReviewTask.job_id)
        .where(ReviewTask.status.in_([ReviewStatus.accepted, ReviewStatus.corrected]))
        .order_by(ReviewTask.reviewed_at, ReviewTask.id)
    )
    if tenant_id is not None:
        query = query.where(Job.tenant_id == tenant_id)
    with sessions() as session:
        return [
            ReviewedDocument(str(t.document_id), str(t.job_id), layout, t.status, t.final_text, key)
            for t, key, layout in session.execute(query)
        ]


def _is_digit(doc: "ReviewedDocument") -> bool:
    """A one-digit document: a `digit` job's, or one that `auto` read and a person confirmed as
    a single character (the bulk default is `auto` since fields)."""
    return doc.layout == "digit" or (doc.layout == "auto" and len(doc.text) == 1)


# Readings of one segmentation tried at the most (slots with several hypotheses multiply).
MAX_READINGS = 4096


def served_crops(segmentation, count: int) -> np.ndarray | None:
    """The crops, left to right, of the segmentation's reading that has `count` digits, as the
    served reading (`recognition.fields`) cuts them; None when no reading has that many.

    A one-digit answer is the whole image read as one digit (`Segmentation.plain`) where the
    segmenter made one, as serving does. Otherwise one hypothesis per slot: of the readings
    with `count` digits, the likeliest before the model has a say (the highest product of
    priors: the marks as they are before cut or joined ones), the first of equals."""
    if count == 1 and segmentation.plain is not None:
        return segmentation.crops[list(segmentation.plain.crops)]
    readings = itertools.islice(itertools.product(*segmentation.slots), MAX_READINGS)
    fitting = [r for r in readings if sum(len(h.crops) for h in r) == count]
    if not fitting:
        return None
    best = max(fitting, key=lambda reading: math.prod(h.prior for h in reading))
    return segmentation.crops[[i for hypothesis in best for i in hypothesis.crops]]


def _digit_images(data: bytes, layout: str, text: str, max_pixels: int | None):
    """The document's digits in MNIST form (uint8), cut as served, or None when no reading of
    its ink has as many digits as `text`."""
    from recognition import LAYOUTS, segment_image

    if layout not in LAYOUTS or not text.isdigit():
        return None  # a document type (its fields are cut by the type) or a non-digit text
    crops = served_crops(segment_image(data, layout, max_pixels), len(text))
    if crops is None:
        return None
    return list(np.clip(np.rint(crops * 255), 0, 255).astype(np.uint8))


def _add(export: Export, doc: ReviewedDocument, data: bytes) -> None:
    from recognition.errors import ImageError

    try:
        images = _digit_images(data, doc.layout, doc.text, export.max_pixels)
    except ImageError:
        images = None
    if images is None:
        export.skipped["digits_do_not_match_text"] += 1
    else:
        export.digits += [(int(ch), image) for ch, image in zip(doc.text, images, strict=True)]
    if not _is_digit(doc):
        suffix = next((s for magic, s in IMAGE_SUFFIX.items() if data.startswith(magic)), ".img")
        name = f"{FIELDS_DIR}/{doc.document_id}{suffix}"
        (export.out / name).write_bytes(data)
        export.fields.append({"file": name, "text": doc.text, "document_id": doc.document_id})
    export.documents.append(
        {
            "document_id": doc.document_id,
            "job_id": doc.job_id,
            "layout": doc.layout,
            "kind": "digit" if _is_digit(doc) else "field",
            "status": doc.status,
            "text": doc.text,
            "digits_exported": images is not None,
        }
    )


def write_export(export: Export, tenant_id: str | None) -> dict:
    with open(export.out / DIGITS_CSV, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        for label, image in export.digits:
            writer.writerow([label, "train", *image.reshape(-1).tolist()])
    with open(export.out / FIELDS_CSV, "w", newline="") as f:
        writer = csv.DictWriter(f, ["file", "text", "document_id"])
        writer.writeheader()
        writer.writerows(export.fields)
    manifest = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "tenant_id": tenant_id,
        "documents": len(export.documents),
        "digits": len(export.digits),
        "fields": len(export.fields),
        "skipped": dict(export.skipped),
        "by_status": dict(Counter(d["status"] for d in export.documents)),
        "sha256": {name: sha256_file(export.out / name) for name in (DIGITS_CSV, FIELDS_CSV)},
        "items": export.documents,
    }
    (export.out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def export_reviewed(
    sessions, storage, out: Path, tenant_id: str | None = None, max_pixels: int | None = None
) -> dict:
    """Write the reviewed data set into `out`; its manifest. `max_pixels`: the platform's
    decode budget (`MAX_IMAGE_PIXELS`), so that scans are decoded as the workers decoded them."""
    out = Path(out)
    (out / FIELDS_DIR).mkdir(parents=True, exist_ok=True)
    export = Export(out, max_pixels=max_pixels)
    for doc in reviewed_documents(sessions, tenant_id):
        try:
            data = storage.get(doc.storage_key)
        except KeyError:  # ObjectNotFound: the scan was deleted since
            export.skipped["scan_missing"] += 1
            continue
        _add(export, doc, data)
    return write_export(export, tenant_id)


def load_reviewed(folder: Path) -> tuple[np.ndarray, np.ndarray, dict]:
    """The exported digits (uint8 [N, 28, 28], labels) and the manifest."""
    from training.data import load_csv

    folder = Path(folder)
    manifest = json.loads((folder / MANIFEST).read_text())
    if manifest["digits"] == 0:
        return np.zeros((0, 28, 28), np.uint8), np.zeros((0,), np.uint8), manifest
    data = load_csv(folder / DIGITS_CSV)
    return data.x_train, data.y_train, manifest


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="write the reviewed data set")
    export.add_argument("--out", type=Path, required=True)
    export.add_argument("--tenant", help="only this tenant's documents (default: all)")
    tune = commands.add_parser("finetune", help="fine-tune the current model on MNIST + reviewed")
    tune.add_argument("--model", type=Path, required=True, help="the current model directory")
    tune.add_argument("--reviewed", type=Path, required=True, help="a folder written by export")
    tune.add_argument("--out", type=Path, required=True, help="the new model directory")
    tune.add_argument("--data", type=Path, help="MNIST IDX folder or CSV (default: shared)")
    tune.add_argument("--epochs", type=int)
    tune.add_argument("--subset", type=int, help="a stratified sample of N MNIST images")
    args = parser.parse_args(argv)

    if args.command == "export":
        from digitflow.db import make_sessionmaker
        from digitflow.settings import PlatformSettings
        from digitflow.storage import make_storage

        settings = PlatformSettings()
        sessions = make_sessionmaker(settings.resolved_database_url)
        manifest = export_reviewed(
            sessions, make_storage(settings), args.out, args.tenant, settings.max_image_pixels
        )
        print(
            f"exported {manifest['documents']} documents ({manifest['digits']} digits,"
            f" {manifest['fields']} fields) into {args.out}",
            file=sys.stderr,
        )
        return 0

    from training import data as mnist
    from training.finetune import finetune

    split = mnist.split(mnist.load_mnist(args.data), subset=args.subset)
    card = finetune(args.model, split, args.reviewed, args.out, epochs=args.epochs)
    print(f"fine-tuned model {card.version} in {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
