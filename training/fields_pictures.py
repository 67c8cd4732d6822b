"""Pictures of what the field reader does, step by step, for docs/fields.md.

    python -m training.fields_pictures --out docs/fields

For a few synthetic fields made from MNIST test digits (a boxed cheque amount, a comb-cell
account number, an underlined amount with separators, a tilted field with touching digits, an
amount in a box drawn against its digits) it draws: the scan; the ink after levelling the
paper, with the printed lines found in red; the ink left once they are removed; the digits
found (boxes) and the separators; and the 28x28 crops the model read, each with its digit and
confidence. One PNG per field.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

from recognition import Recognizer, decode_image, read_segmentations
from recognition.decode import DEFAULT_MAX_PIXELS
from recognition.preprocess import WORK_MIN_SIDE
from recognition.segment import _Page, find_digits
from training import data as mnist
from training.synthetic_fields import FieldSpec, render_field

EXAMPLES = {
    "boxed_amount": FieldSpec(count=5, structure="box", height=44, line_thickness=3, noise=0.02),
    "comb_account": FieldSpec(count=7, structure="comb", height=40, line_thickness=2),
    "underlined_separators": FieldSpec(
        count=6, structure="underline", separators=True, height=42, line_thickness=2
    ),
    "tilted_touching": FieldSpec(
        count=4, touching=True, rotation=2.5, blur=0.8, jpeg_quality=60, height=44
    ),
    "tight_box": FieldSpec(count=4, structure="box", tight=True, height=44, line_thickness=3),
}
SEED = 31


def _panel(ax, image, title, cmap="gray"):
    ax.imshow(image, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title, fontsize=9, loc="left")
    ax.set_axis_off()


def draw_field(name: str, made, recognizer: Recognizer, out: Path) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    gray = decode_image(made.image, DEFAULT_MAX_PIXELS, WORK_MIN_SIDE)
    page = _Page(gray)
    segmentation = find_digits(gray)
    reading = read_segmentations([segmentation], recognizer)[0]
    lines = np.dstack([page.ink * 0.6] * 3)
    lines[page.lines > 0] = (1.0, 0.15, 0.15)
    fig, axes = plt.subplots(5, 1, figsize=(7, 9), gridspec_kw={"height_ratios": [1, 1, 1, 1, 0.8]})
    _panel(axes[0], gray, f"1. the scan (text: {made.text})")
    _panel(axes[1], lines, "2. ink, paper levelled, deskewed; printed lines found (red)")
    _panel(axes[2], page.binary, "3. ink without the printed lines (strokes across them bridged)")
    _panel(axes[3], page.ink, "4. digits found (green) and separators (blue)")
    for d in reading.digits:
        b = [v * page.scale for v in (d.box.x, d.box.y, d.box.width, d.box.height)]
        axes[3].add_patch(Rectangle(b[:2], b[2], b[3], fill=False, color="lime", lw=1.5))
    for s in reading.separators:
        b = [v * page.scale for v in (s.box.x, s.box.y, s.box.width, s.box.height)]
        axes[3].add_patch(Rectangle(b[:2], b[2], b[3], fill=False, color="deepskyblue", lw=1.5))
    crops = [segmentation.crops[i] for slot in segmentation.slots for i in _chosen(slot, reading)]
    strip = np.hstack([np.pad(c, 2, constant_values=0.3) for c in crops]) if crops else gray
    _panel(axes[4], strip, "5. what the model read: " + "  ".join(
        f"{d.digit} ({d.confidence:.1%})" for d in reading.digits
    ))  # fmt: skip
    flag = ", ".join(reading.review_reasons) or "none"
    fig.suptitle(
        f"{name}: read {reading.text!r}, field confidence {reading.confidence:.1%},"
        f" review: {flag}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(out / f"{name}.png", dpi=80)
    plt.close(fig)
    return {"name": name, "text": made.text, "read": reading.text, "reasons": flag}


def _chosen(slot, reading) -> tuple[int, ...]:
    """The crops of the hypothesis whose boxes the reading kept."""
    kept = {d.box for d in reading.digits}
    for hypothesis in slot:
        if set(hypothesis.boxes) <= kept:
            return hypothesis.crops
    return slot[0].crops


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-dir", type=Path, default=Path("models/default"))
    parser.add_argument("--out", type=Path, default=Path("docs/fields"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    data = mnist.load_mnist()
    recognizer = Recognizer(args.model_dir)
    rng = np.random.default_rng(SEED)
    for name, spec in EXAMPLES.items():
        made = render_field(spec, data.x_test, data.y_test, rng)
        print(draw_field(name, made, recognizer, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
