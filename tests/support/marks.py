"""Marks that are not digits, drawn as scans (dark ink on light paper) with Pillow.

Drawn here by hand, not by the training generator (training/nondigits.py), so the tests check
the rejection on marks the model was not trained on.
"""

import io

from PIL import Image, ImageDraw

INK = 28
MARKS = {
    "tap": lambda pen: pen.ellipse((92, 52, 106, 66), fill=INK),
    "dash": lambda pen: pen.line((70, 60, 130, 62), fill=INK, width=7),
    "hash": lambda pen: [
        pen.line(xy, fill=INK, width=6)
        for xy in ((88, 20, 80, 100), (118, 20, 110, 100), (65, 45, 135, 45), (62, 75, 132, 75))
    ],
    "A": lambda pen: [
        pen.line(xy, fill=INK, width=6) for xy in ((70, 100, 100, 18, 130, 100), (82, 70, 118, 70))
    ],
    "X": lambda pen: [
        pen.line(xy, fill=INK, width=6) for xy in ((70, 20, 130, 100), (130, 20, 70, 100))
    ],
    "scribble": lambda pen: pen.line(
        [(70, 50), (125, 25), (80, 90), (135, 80), (75, 30), (120, 100), (95, 35), (130, 60)],
        fill=INK, width=5,
    ),
    "smudge": lambda pen: pen.ellipse((75, 30, 130, 90), fill=120),
}  # fmt: skip


def mark_scan(name: str, size=(200, 120)) -> bytes:
    page = Image.new("L", size, 238)
    MARKS[name](ImageDraw.Draw(page))
    out = io.BytesIO()
    page.save(out, "PNG")
    return out.getvalue()
