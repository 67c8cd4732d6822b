"""A single digit inside a printed box: find the box's sides and read only what is inside.

A box drawn around one digit (a form's cell, a cheque's amount box around a lone digit) is the
outermost ink on every side: seen from the top, the first inked pixel of nearly every column
lies on one straight, nearly flat line, and likewise from the bottom, the left and the right.
A digit's outline is not like that on all four sides (a 7's bar is straight from the top only;
a 1 is filled from side to side, a frame is hollow). One side may be missing where the box ran
off the image (a crop or a tilt cut it). Each side's thickness is the median run of ink inward
from the line, so a digit touching the box (a longer run in a few columns) moves neither the
line nor its thickness; the digit is the ink inside the inner edges.

The sides are fitted by a small search over slopes (a box tilts by a few degrees), not by
morphology: the box's lines may be 1 to 4 pixels thick in an image of 40, grey or black.
"""

from dataclasses import dataclass

import numpy as np

# Slopes tried for a side: up to this many degrees of tilt, in this many steps.
MAX_TILT, TILT_STEPS = 5.0, 21
# A side is a line through at least this share of the ink box's columns (rows), within this
# many pixels of it.
SIDE_COVER, SIDE_TOLERANCE = 0.7, 1.25
# A side is thinner than this share of the box (a 1 or a blot is ink from side to side).
SIDE_THICKNESS = 0.35
# ... its thickness being this percentile of the runs of ink inward from its line.
SIDE_PERCENTILE = 30
# Pixels of paper kept between a side's inner edge and the digit (anti-aliasing, JPEG ringing).
SIDE_MARGIN = 1
# The inside of a box spans at least this share of its height and of its width.
MIN_INSIDE = 0.25
# A side's line lies within this share of the box from its edge.
CUT_DEPTH = 0.25
# Ink runs inward from a side are first looked at over this many rows (a side is thinner).
RUN_PROBE = 12

_SLOPES = np.tan(np.radians(np.linspace(-MAX_TILT, MAX_TILT, TILT_STEPS)))
MAX_DRIFT = float(_SLOPES.max())


@dataclass(frozen=True, slots=True)
class _Side:
    first: np.ndarray  # the first inked row of each column
    length: np.ndarray  # the run of ink from there (in the columns on the line)
    on_line: np.ndarray  # the columns whose first inked pixel is on the line
    line: np.ndarray  # the line's row in each column
    thickness: float

    def edge(self, thickness: float) -> np.ndarray:
        """The inner edge's row in every column for a side `thickness` thick: where the run
        stops near it, the run's end; where it runs on (a digit touching the side), the line
        plus the thickness."""
        edge = np.where(self.length <= thickness + 2, self.first + self.length,
                        self.line + thickness)  # fmt: skip
        return np.where(self.on_line, edge, self.line + thickness) + SIDE_MARGIN


def _side(view: np.ndarray, cut: bool) -> _Side | None:
    """The line the first inked pixel of each column of `view` lies on (seen from row 0),
    or None when no straight thin line is there. `cut`: the view's row 0 is the image's edge
    (the box's other sides may run off the image beyond the line)."""
    rows, cols = view.shape
    inked = view.any(axis=0)
    if np.count_nonzero(inked) < SIDE_COVER * cols:
        return None
    first = np.where(inked, view.argmax(axis=0), rows).astype(np.float32)
    xs = np.arange(cols, dtype=np.float32)
    shifted = first[None, :] - _SLOPES[:, None] * xs[None, :]  # [slopes, cols]
    offsets = _medians(shifted[:, inked])
    near = np.abs(shifted - offsets[:, None]) <= SIDE_TOLERANCE
    best = int(np.argmax(near.sum(axis=1)))
    on_line = near[best] & inked
    # ... and the outermost ink: the line touches the ink box (a 7's bar, seen from below, is
    # straight too, but the stem reaches further down).
    if np.count_nonzero(on_line) < SIDE_COVER * cols or (first[on_line].min() > 1 and not cut):
        return None
    # Where the other sides run off the image the line need not touch the ink box, but it is
    # still near the edge (seen from an open side, the far side is no side).
    if float(_medians(first[on_line][None])[0]) > CUT_DEPTH * rows:
        return None
    # Run of ink inward from the line, in each column (capped where a side would be too thick).
    limit = max(2, int(SIDE_THICKNESS * max(rows, cols)) + 1)
    # Only the columns on the line need their run: the side's edge elsewhere is the line's.
    length = _runs(view, first, on_line, limit)
    # A digit touching the side lengthens the run in its columns (a 3's top bar along the
    # box's top, many of them): the side's own thickness is a low percentile of the runs.
    runs = length[on_line]
    thickness = float(
        np.partition(runs, len(runs) * SIDE_PERCENTILE // 100)[len(runs) * SIDE_PERCENTILE // 100]
    )
    if thickness >= limit - 1:
        return None
    return _Side(first, length, on_line, offsets[best] + _SLOPES[best] * xs, thickness)


def _runs(view: np.ndarray, first: np.ndarray, which: np.ndarray, limit: int) -> np.ndarray:
    """In each column of `which`, how many inked pixels follow one another from row `first`
    on, at most `limit` (0 elsewhere). A side is a few pixels thick: RUN_PROBE rows are looked
    at in every column, and only the few columns still inked past them (a digit touching the
    side) are followed further, to their first paper pixel (gathering `limit` pixels in every
    column cost ~10x as much)."""
    rows = view.shape[0]
    length = np.zeros(view.shape[1], np.intp)
    cols = np.flatnonzero(which)
    start = first[cols].astype(np.intp)
    at = start[None, :] + np.arange(min(limit, RUN_PROBE))[:, None]
    run = view[np.minimum(at, rows - 1), cols[None, :]] & (at < rows)
    ended = ~run.all(axis=0)
    length[cols[ended]] = run[:, ended].argmin(axis=0)
    far, begin = cols[~ended], start[~ended]
    if len(far) and len(at) < limit:
        depth = min(rows, int(begin.max()) + limit)
        below = np.arange(depth)[:, None] > begin[None, :]
        paper = np.logical_not(view[:depth, far], out=below, where=below)
        ends = np.where(paper.any(axis=0), paper.argmax(axis=0), depth)
        length[far] = np.minimum(ends - begin, limit)
    else:
        length[far] = limit
    return length


def _medians(values: np.ndarray) -> np.ndarray:
    """The median of each row (the upper middle value for an even count: a line's offset)."""
    middle = values.shape[1] // 2
    return np.partition(values, middle, axis=1)[:, middle]


def _banded(view: np.ndarray, cut: bool) -> bool:
    """Whether the band where `_side` could find a line (within the tilt's drift of the edge,
    or of CUT_DEPTH where the box may run off the image) holds ink in enough columns."""
    rows, cols = view.shape
    depth = MAX_DRIFT * cols + SIDE_TOLERANCE + 2 + (CUT_DEPTH * rows if cut else 0)
    band = view[: int(depth) + 1]
    return np.count_nonzero(band.any(axis=0)) >= SIDE_COVER * cols


def _beyond(edge: np.ndarray, rows: int, k: int) -> np.ndarray:
    """The pixels past a side's inner `edge` (in its view `k` of `_views`), in image axes."""
    depth = np.arange(rows, dtype=np.float32)[:, None] >= edge[None, :]
    return (depth, depth[::-1], depth.T, depth[::-1].T)[k]


def _views(mask: np.ndarray) -> tuple[np.ndarray, ...]:
    """The mask seen from the top, bottom, left and right (each side's view starts at row 0)."""
    return mask, mask[::-1], mask.T, mask.T[::-1]


def frame_interior(mask: np.ndarray, touches: tuple[bool, bool, bool, bool]) -> np.ndarray | None:
    """Boolean [H, W]: the pixels inside a printed box whose outer edges are `mask`'s ink box
    (`mask` is cropped to it), or None when the ink is no box. `touches` says which sides of
    the ink box (top, bottom, left, right) are the image's edge: only there may a side be
    missing (the box ran off the image)."""
    height, width = mask.shape
    if min(height, width) < 8:
        return None
    views = _views(mask)
    # Cheap bound first (most single digits stop here): a side's line lies in a band along its
    # edge, inked in most of its columns.
    banded = []
    for view, cut in zip(views, touches, strict=True):
        banded.append(_banded(view, cut))
        if not banded[-1] and (not cut or banded.count(False) > 1):
            return None
    sides, missing = {}, None
    for k, view in enumerate(views):
        side = _side(view, touches[k]) if banded[k] else None
        if side is None:
            if missing is not None or not touches[k]:
                return None
            missing = k
            continue
        sides[k] = side
    # One pen printed the box: a side thicker than the thinnest has a digit lying along it (a
    # 1 against the left side, a 7's bar on the top), which is not the side's.
    thinnest = min(side.thickness for side in sides.values())
    inside = np.ones((height, width), dtype=bool)
    widest = 0.0
    for k, side in sides.items():
        thickness = min(side.thickness, thinnest + 1)
        widest = max(widest, thickness)
        inside &= _beyond(side.edge(thickness), views[k].shape[0], k)
    if missing is not None:
        # The crop went through the box's side there: a sliver of it may be left along the
        # image's edge, as thick as the other sides at most.
        edge = np.full(mask.shape[1] if missing < 2 else height, widest + 1 + SIDE_MARGIN)
        inside &= _beyond(edge.astype(np.float32), mask.shape[0] if missing < 2 else width, missing)
    # A box leaves room for a digit between its sides (a bar's two edges do not).
    rows, cols = np.flatnonzero(inside.any(axis=1)), np.flatnonzero(inside.any(axis=0))
    if len(rows) < MIN_INSIDE * height or len(cols) < MIN_INSIDE * width:
        return None
    return inside
