"""The pictures of docs/cheques.md: what the cheque reader does to a page.

    python -m training.cheque_pictures [--out docs/cheques]

Draws synthetic cheques (TEST digits) and, on each, what the reader found: the printed lines it
measured (blue), the currency sign (orange) and the amount box it read (green), with the amount
and its review state; then the working binary page and the amount crop the field reader sees.
"""

import argparse
from pathlib import Path

import cv2
import numpy as np

from recognition import Recognizer
from recognition.cheque import _inks, _lines, _work_page, amount_crop, locate_amount
from recognition.decode import decode_page
from recognition.doctypes import CHEQUE, PAGE_MIN_WIDTH, read_document
from training.cheques import TEMPLATES, ChequeSpec, render_cheque
from training.data import load_mnist

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_DIR = REPO / "models" / "default"
SHOW_WIDTH = 900


def _outline(image: np.ndarray, box, colour, scale: float, thickness: int = 2) -> None:
    if box is None:
        return
    x, y, w, h = (round(v * scale) for v in (box.x, box.y, box.width, box.height))
    cv2.rectangle(image, (x, y), (x + w, y + h), colour, thickness)


def annotated(data: bytes, recognizer: Recognizer) -> np.ndarray:
    """The cheque as scanned, with what the reader found drawn on it."""
    page, _ = decode_page(data, min_width=PAGE_MIN_WIDTH)
    scale = SHOW_WIDTH / page.shape[1]
    shown = cv2.cvtColor(cv2.resize(page, None, fx=scale, fy=scale), cv2.COLOR_GRAY2BGR)
    work, factor = _work_page(page)
    lines, _ = _lines(*_inks(work))
    for line in lines:
        p0 = (round(line.x0 * factor * scale), round(line.y0 * factor * scale))
        p1 = (round(line.x1 * factor * scale), round(line.y1 * factor * scale))
        cv2.line(shown, p0, p1, (220, 120, 0), 2)
    found = locate_amount(page)
    reading = read_document(data, CHEQUE, recognizer).main
    if found is not None:
        _outline(shown, found.sign, (0, 140, 255), scale)
        _outline(shown, found.box, (0, 170, 0), scale, 3)
    review = f"needs review: {', '.join(reading.review_reasons)}" if reading.needs_review else "ok"
    label = f"amount {reading.text or '-'}  conf {reading.confidence:.3f}  {review}"
    cv2.rectangle(shown, (0, 0), (SHOW_WIDTH, 28), (255, 255, 255), -1)
    cv2.putText(shown, label, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 160), 2)
    return shown


def steps(data: bytes) -> np.ndarray:
    """The working page (binarised) and the amount crop, one above the other."""
    page, _ = decode_page(data, min_width=PAGE_MIN_WIDTH)
    work, _ = _work_page(page)
    binary = cv2.resize(
        255 - _inks(work)[0], (SHOW_WIDTH, round(work.shape[0] * SHOW_WIDTH / work.shape[1]))
    )
    found = locate_amount(page)
    crop = (amount_crop(page, found) * 255).astype(np.uint8)
    crop = cv2.resize(
        crop, None, fx=min(3.0, SHOW_WIDTH / crop.shape[1]), fy=min(3.0, SHOW_WIDTH / crop.shape[1])
    )
    padded = np.full((crop.shape[0] + 20, SHOW_WIDTH), 255, np.uint8)
    padded[10 : 10 + crop.shape[0], : crop.shape[1]] = crop
    return cv2.cvtColor(np.vstack([binary, padded]), cv2.COLOR_GRAY2BGR)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "cheques")
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    data = load_mnist()
    recognizer = Recognizer(args.model_dir)
    rng = np.random.default_rng(31)
    examples = [
        ("personal_box", ChequeSpec(TEMPLATES[0], 200, "$", "us", rotation=1.5, noise=0.02,
                                    jpeg_quality=70, uneven_light=True)),
        ("euro_box", ChequeSpec(TEMPLATES[2], 240, "€", "eu_space", rotation=-1.0,
                                security_pattern=True)),
        ("underline", ChequeSpec(TEMPLATES[3], 160, "£", "whole_dash", blur=0.6,
                                 jpeg_quality=60)),
    ]  # fmt: skip
    for name, spec in examples:
        cheque = render_cheque(spec, data.x_test, data.y_test, rng)
        cv2.imwrite(str(args.out / f"{name}.jpg"), annotated(cheque.image, recognizer))
        print(f"{name}: written {cheque.written!r} (digits {cheque.amount})")
    cheque = render_cheque(examples[0][1], data.x_test, data.y_test, rng)
    cv2.imwrite(str(args.out / "steps.jpg"), steps(cheque.image))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
