"""Whole cheques in, amounts out: find the courtesy-amount box on a cheque front and read it.

A cheque front holds many digits that are not the amount — a handwritten date, a printed cheque
number, the MICR line — so the reader never looks for digits on the page. It looks for the
*printed structure* that holds the amount, the way a bank's courtesy-amount reader does:

1. the page is binarised at a low working resolution (~640 px across, ~100 dpi; cheap);
2. long horizontal printed lines are found with a morphological opening (slight rotation is
   tolerated: the lines are thickened vertically first), and their ends and slope measured;
3. candidates on the right half of the page: a *rectangle* (two lines of the same extent joined
   by inked sides) or an *underline*, each with a *currency sign* beside it on the left — one
   isolated printed mark about as tall as the writing (a word such as "DATE" is not isolated);
   an underline without a sign is never a candidate (date and signature lines are underlines);
4. the best candidate's inside is cut from the page at the decoded resolution, straightened,
   and handed to the field reader (`recognition.fields`).

No candidate: the answer is `needs_review` with `amount_box_not_found`, never a guess.
"""

import functools
import math
from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np

from recognition.fields import Box

WORK_WIDTH = 600
# A printed line spans at least this share of the page's width; pieces of a line (broken where
# handwriting crosses it) are kept from this share on, to be joined.
MIN_LINE_SHARE = 0.08
MIN_PIECE_SHARE = 0.02
# Lines are followed past their ends while at least half of this many columns are inked, up to
# this share of the page's width.
GROW_WINDOW = 6
GROW_REACH = 0.25
# An amount box is this tall, as a share of the page's height.
BOX_HEIGHT_SHARE = (0.05, 0.32)
# A rectangle's top and bottom lines end within this share of the page's width of each other.
END_TOLERANCE = 0.04
# A currency sign is at most this far left of the box, in box heights, and in its own heights
# (a printed sign sits right beside the box; a distant scribble is not one).
SIGN_GAP = 1.2
SIGN_NEAR = 2.0
# A currency sign's height as a share of the page's (specks and big letters are not signs).
SIGN_HEIGHT = (0.03, 0.25)
# An underline that holds an amount spans at least this share of the page's width.
MIN_UNDERLINE_SHARE = 0.12
AMOUNT_BOX_NOT_FOUND = "amount_box_not_found"
# Pieces of one printed line (broken by a faint scan or crossed by writing) closer than this
# share of the page's width are joined.
JOIN_GAP = 0.03
# The region read reaches this many working pixels past the printed lines.
PAD = 2
# Binarisation: ink is this much darker (of 255) than the local mean; a printed line is followed
# past its ends, and a box's sides checked, on ink at least FAINT_OFFSET darker (thin lines
# printed light lose half their contrast on the working page).
INK_OFFSET, FAINT_OFFSET = 18, 10


class _Line(NamedTuple):  # a tuple: made ~40 times a page, ~4x cheaper than a frozen dataclass
    x0: int
    x1: int
    intercept: float  # y = intercept + slope * x, through the centre of the stroke
    slope: float
    thickness: float

    def y_at(self, x: float) -> float:
        return self.intercept + self.slope * x

    @property
    def y0(self) -> float:
        return self.y_at(self.x0)

    @property
    def y1(self) -> float:
        return self.y_at(self.x1)

    @property
    def y(self) -> float:
        return self.y_at((self.x0 + self.x1) / 2)

    @property
    def angle(self) -> float:
        return math.degrees(math.atan(self.slope))


@dataclass(frozen=True, slots=True)
class AmountBox:
    """Where the amount is, in the pixels of the page as decoded (x, y, width, height of the
    region the reader reads), the printed structure it was found by and the page's skew."""

    box: Box
    kind: str  # "box" or "underline"
    angle: float  # degrees, the page's rotation measured on the box's lines
    sign: Box | None  # the currency sign beside it
    score: float


def _inks(work: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dark ink on uneven paper (uint8) -> ink and faint ink, 0/255, ink white: the local mean
    is the paper. (cv2.adaptiveThreshold's MEAN_C answer, pixel for pixel, for ~25% less CPU.)
    One mean serves both; faint ink is kept on the right 70% of the page only (where an
    amount box can be)."""
    block = max(15, (work.shape[1] // 25) | 1)
    mean = cv2.blur(work, (block, block), borderType=cv2.BORDER_REPLICATE)
    # Ink: at least INK_OFFSET (FAINT_OFFSET) darker than the mean (the subtraction saturates).
    darker = cv2.subtract(mean, work)
    binary = cv2.threshold(darker, INK_OFFSET - 1, 255, cv2.THRESH_BINARY)[1]
    faint = cv2.threshold(darker, FAINT_OFFSET - 1, 255, cv2.THRESH_BINARY)[1]
    faint[:, : int(work.shape[1] * 0.3)] = 0
    return binary, faint


def _lines(binary: np.ndarray, faint: np.ndarray) -> tuple[list[_Line], list[np.ndarray]]:
    """Long horizontal printed lines and the outlines of their long runs."""
    height, width = binary.shape
    # Thickened across (a slightly rotated line still has long runs) before the opening keeps
    # only long horizontal runs.
    thick = cv2.dilate(binary, np.ones((3, 1), np.uint8))
    length = max(8, int(width * 0.03))
    # The opening keeps pixels of `thick` or (the kernel is even) one column right of them: all
    # inside binary's 3x3 dilation, so masking with that changes nothing and is not done.
    mask = cv2.morphologyEx(thick, cv2.MORPH_OPEN, np.ones((1, length), np.uint8))
    # Contours of the sparse line mask: far cheaper than labelling the whole page.
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    lines, long, boxes = [], [], []
    for contour in contours:
        x, y, w, h = cv2.boundingRect(contour)
        if w < width * MIN_PIECE_SHARE or h > 8 + w * 0.08:
            continue
        if w < width * MIN_LINE_SHARE:  # a piece, to be joined: its box is enough
            lines.append(_Line(x, x + w, y + h / 2, 0.0, max(1.0, h - 2.0)))
            continue
        lines.append(None)  # measured below, all at once, in this place
        boxes.append((x, y, w, h))
        long.append(contour)
    measured = iter(_measured(mask, boxes))
    lines = [next(measured) if line is None else line for line in lines]
    joined = _joined(lines, JOIN_GAP * width)
    grown = iter(_grown_all([line for line in joined if line.x1 > width / 2], faint))
    right = [next(grown) if line.x1 > width / 2 else line for line in joined]
    return [line for line in right if line.x1 - line.x0 >= width * MIN_LINE_SHARE], long


def _grown_all(lines: list[_Line], binary: np.ndarray) -> list[_Line]:
    """Lines lengthened along their course while ink carries on (a box printed faint or thin
    breaks up at a low resolution, and the opening keeps only its longer stretches): from each
    end outwards, until a window of GROW_WINDOW columns is less than half inked, at most
    GROW_REACH of the page's width. All ends at once: a few gathers instead of a few dozen."""
    height, width = binary.shape
    reach = int(GROW_REACH * width)
    if not lines or reach < GROW_WINDOW:
        return lines
    # Row i walks from one end outwards: the left ends first (x0 - 1, x0 - 2, ...), then the
    # right ones (x1, x1 + 1, ...), over `valid` columns of the page.
    ends = [(line.x0 - 1, -1, min(line.x0, reach)) for line in lines]
    ends += [(line.x1, 1, min(width - line.x1, reach)) for line in lines]
    starts, directions, valid = np.array(ends).T
    walks = starts, directions, np.array([(line.intercept, line.slope) for line in lines] * 2)
    # Most printed lines simply end: their first window alone says so.
    first = _walked(binary, walks, np.arange(GROW_WINDOW))
    runs = np.zeros(len(valid), np.int64)
    on = np.flatnonzero((2 * first.sum(axis=1) >= GROW_WINDOW) & (valid >= GROW_WINDOW))
    if len(on):
        inked = _walked(binary, tuple(part[on] for part in walks), np.arange(reach))
        runs[on] = _runs(inked, valid[on])
    left, right = runs[: len(lines)].tolist(), runs[len(lines) :].tolist()
    return [
        _Line(line.x0 - a, line.x1 + b, line.intercept, line.slope, line.thickness)
        for line, a, b in zip(lines, left, right, strict=True)
    ]


def _walked(binary: np.ndarray, walks: tuple, steps: np.ndarray) -> np.ndarray:
    """Ink on each walk's course `steps` columns from its start, one walk a row."""
    starts, directions, course = walks
    xs = starts[:, None] + directions[:, None] * steps
    return _course(binary, course[:, :1], course[:, 1:], xs)


def _runs(inked: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """How many columns each row's dotted line carries on, within its `valid` columns: up to the
    first window of GROW_WINDOW columns less than half inked."""
    counts = np.zeros((len(inked), inked.shape[1] + 1), np.int32)
    np.cumsum(inked, axis=1, dtype=np.int32, out=counts[:, 1:])
    windows = counts[:, GROW_WINDOW:] - counts[:, :-GROW_WINDOW]
    inside = np.arange(windows.shape[1]) <= valid[:, None] - GROW_WINDOW
    thin = (2 * windows < GROW_WINDOW) & inside
    return np.where(thin.any(axis=1), thin.argmax(axis=1), valid)


def _course(binary: np.ndarray, intercept, slope, xs: np.ndarray) -> np.ndarray:
    """Whether each column `xs` has ink on the course y = intercept + slope * x (within a pixel
    of it); columns off the page read the nearest one."""
    height, width = binary.shape
    ys = np.rint(intercept + slope * xs).astype(np.intp)
    # Gathers from the flat page, clipped in place: ~3x cheaper than np.clip and 2-D indexing
    # on these short rows.
    at = np.minimum(np.maximum(ys, 1, out=ys), height - 2, out=ys) * width
    at += np.minimum(np.maximum(xs, 0), width - 1)
    flat = np.ascontiguousarray(binary).reshape(-1)
    return (flat[at] | flat[at - width] | flat[at + width]) > 0


def _length(line: _Line) -> int:
    return line.x1 - line.x0


def _joined(lines: list[_Line], gap: float) -> list[_Line]:
    """Collinear pieces of one line joined, left to right."""
    out: list[_Line] = []
    for line in sorted(lines, key=lambda item: item.x0):
        for i, previous in enumerate(out):
            near = 0 <= line.x0 - previous.x1 <= gap
            if near and abs(previous.y_at(line.x0) - line.y0) <= 1 + previous.thickness:
                # The longer piece's slope (a short piece's is easily bent by a crossing digit).
                longer = max(previous, line, key=_length)
                slope = longer.slope
                intercept = longer.y_at(longer.x0) - slope * longer.x0
                thickness = max(previous.thickness, line.thickness)
                out[i] = _Line(previous.x0, line.x1, intercept, slope, thickness)
                break
        else:
            out.append(line)
    return out


def _measured(mask: np.ndarray, boxes: list[tuple]) -> list[_Line]:
    """Lines fitted through the centre of their stroke, column by column, for the components
    of the mask in `boxes` (x, y, w, h); columns where something touches a line (a currency
    sign, a digit) are thicker and left out. All at once: the components side by side."""
    if not boxes:
        return []
    widths = np.array([box[2] for box in boxes])
    block = np.zeros((max(box[3] for box in boxes), int(widths.sum())), np.uint8)
    starts = np.cumsum(widths) - widths
    for (x, y, w, h), start in zip(boxes, starts.tolist(), strict=True):
        block[:h, start : start + w] = mask[y : y + h, x : x + w]
    # Each column's ink count and its rows' sum in one product (whole numbers: exact in float32).
    weight, rows = _counting(len(block)) @ block / 255
    owner = np.repeat(np.arange(len(boxes)), widths)
    # Each line's most common column thickness (a median costs ~10x more).
    bins = len(block) + 1
    counts = np.bincount(owner * bins + weight.astype(np.intp), minlength=len(boxes) * bins)
    typical = counts.reshape(len(boxes), bins)[:, 1:].argmax(axis=1) + 1.0
    kept = ((weight > 0) & (weight <= typical[owner] * 1.5 + 1)).astype(np.float64)
    # Per line, over its kept columns: their count and the sums of x, y, x*x and x*y.
    xs = (np.arange(len(weight)) - starts[owner]) * kept
    ys = rows / np.maximum(weight, 1) * kept
    terms = np.stack((kept, xs, ys, xs * xs, xs * ys), axis=1)
    sums = np.add.reduceat(terms, starts, axis=0)  # each line's columns are side by side
    return [
        _fitted(box, *line_sums, thickness)
        for box, line_sums, thickness in zip(boxes, sums.tolist(), typical.tolist(), strict=True)
    ]


def _fitted(box: tuple, count, sum_x, sum_y, sum_xx, sum_xy, typical: float) -> _Line:
    """The least-squares line through a component's column centres, from their sums (np.polyfit
    costs ~10x more); the mask is the stroke thickened by a pixel above and below."""
    x, y, w, h = box
    slope, intercept = 0.0, y + h / 2
    if count >= 2:
        mean_x, mean_y = sum_x / count, sum_y / count
        slope = (sum_xy - sum_x * mean_y) / max(sum_xx - sum_x * mean_x, 1e-9)
        intercept = y + mean_y - slope * (x + mean_x)
    return _Line(x, x + w, intercept, slope, max(1.0, typical - 2))


@functools.lru_cache(maxsize=128)
def _counting(height: int) -> np.ndarray:
    """[ones; 0..height-1]: multiplied by a component, its column counts and row sums."""
    return np.stack((np.ones(height), np.arange(height))).astype(np.float32)


@dataclass(frozen=True, slots=True)
class _Word:
    """Printed or written marks close together: x0, y0, x1, y1 in working pixels."""

    x0: int
    y0: int
    x1: int
    y1: int
    height = property(lambda self: self.y1 - self.y0)


def _marks(binary: np.ndarray, long: list, x0: int, y0: int, x1: int, y1: int):
    """Boxes [N, 4] (x0, y0, x1, y1, page coordinates) of the marks that are not printed lines
    inside a window of the page, sorted by x0: only where a currency sign may be is labelled."""
    height, width = binary.shape
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(width, x1), min(height, y1)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return np.zeros((0, 4), np.int64)
    # Only long runs (`long`: their outlines) are masked out of the marks: the bars of a sign
    # such as ₩ € ¥ stay on it. They are drawn inside the window only (a page-sized mask costs
    # more than the one or two windows a page looks in).
    lines = np.zeros((y1 - y0, x1 - x0), np.uint8)
    if long:
        cv2.drawContours(lines, long, -1, 255, cv2.FILLED, offset=(-x0, -y0))
    lines = cv2.dilate(lines, np.ones((3, 3), np.uint8))
    marks = cv2.subtract(binary[y0:y1, x0:x1], lines)  # ink & ~lines, both 0/255
    _, _, stats, _ = cv2.connectedComponentsWithStats(marks, connectivity=8, ltype=cv2.CV_16U)
    stats = stats[1:]
    boxes = stats[(stats[:, 4] >= 4) & (stats[:, 3] >= 3), :4].astype(np.int64)
    boxes[:, 2:] += boxes[:, :2]  # x, y, w, h -> x0, y0, x1, y1
    boxes += (x0, y0, x0, y0)
    return boxes[np.argsort(boxes[:, 0], kind="stable")]


def _words(boxes: np.ndarray) -> list[_Word]:
    """Marks grouped into words: neighbours closer than 0.35 of their height join."""
    words: list[list[int]] = []
    for x0, y0, x1, y1 in boxes.tolist():
        for word in reversed(words[-4:]):
            height = max(y1 - y0, word[3] - word[1])
            overlap = min(y1, word[3]) - max(y0, word[1])
            if overlap > 0.3 * height and x0 - word[2] < 0.35 * height:
                word[:] = [word[0], min(y0, word[1]), max(x1, word[2]), max(y1, word[3])]
                break
        else:
            words.append([x0, y0, x1, y1])
    return [_Word(*word) for word in words]


def _sign(page: tuple, left: float, top: float, bottom: float) -> _Word | None:
    """The currency sign beside a box whose left edge is at `left` and spans top..bottom: one
    isolated mark or short group (not a word such as DATE) ending just left of the box."""
    span, page_height = bottom - top, page[0].shape[0]
    near = _marks(
        *page, int(left - 3 * span), int(top - span / 2), int(left), int(bottom + span / 2) + 1
    )
    near = near[near[:, 2] <= left - 1]
    best = None
    for word in _words(near):
        centre = (word.y0 + word.y1) / 2
        if not (word.x1 >= left - SIGN_GAP * span and top <= centre <= bottom):
            continue
        if left - word.x1 > SIGN_NEAR * word.height:
            continue
        tall = 0.2 * span <= word.height <= 1.05 * span
        if not tall or not SIGN_HEIGHT[0] <= word.height / page_height <= SIGN_HEIGHT[1]:
            continue
        if word.x1 - word.x0 > 1.7 * word.height:
            continue
        if best is None or word.x1 > best.x1:
            best = word
    return best


@dataclass(frozen=True, slots=True)
class _Candidate:
    top: _Line | None  # None for an underline
    bottom: _Line
    sign: _Word | None
    score: float

    @property
    def kind(self) -> str:
        return "underline" if self.top is None else "box"


def _sides_inked(binary: np.ndarray, top: _Line, bottom: _Line) -> bool:
    """Both ends of two lines joined by ink: the vertical sides of a printed rectangle."""
    height, width = binary.shape
    y0, y1 = int(max(top.y0, top.y1) + top.thickness), int(min(bottom.y0, bottom.y1))
    if y1 - y0 < 3:
        return False
    for x in (max(top.x0, bottom.x0), min(top.x1, bottom.x1) - 1):
        band = binary[y0:y1, max(0, x - 3) : min(width, x + 4)]
        if np.count_nonzero(band.any(axis=1)) < 0.75 * len(band):  # (a mean costs more)
            return False
    return True


def _inked_along(binary: np.ndarray, line: _Line, x0: int, x1: int) -> bool:
    """Half the columns x0..x1 or more have ink on the line's course (a faint or broken
    stretch of it)."""
    xs = np.arange(max(0, x0), min(binary.shape[1], x1))
    course = _course(binary, line.intercept, line.slope, xs)
    return len(course) == 0 or 2 * int(np.count_nonzero(course)) >= len(course)


def _spanning(line: _Line, slope: float, x0: int, x1: int) -> _Line:
    middle = (line.x0 + line.x1) / 2
    return _Line(x0, x1, line.y_at(middle) - slope * middle, slope, line.thickness)


def _reaches(binary: np.ndarray, line: _Line, x0: int, x1: int, tolerance: float) -> bool:
    """The line (re-anchored) carries on from its own ends to x0..x1, faint or broken."""
    return all(
        stop - start <= tolerance or _inked_along(binary, line, start, stop)
        for start, stop in ((x0, line.x0), (line.x1, x1))
    )


def _matched(top: _Line, bottom: _Line, binary: np.ndarray, tolerance: float):
    """Top and bottom lines of one rectangle, or None: both at the longer one's slope (a short
    piece's is easily bent by a crossing digit), spanning the columns of either line when the
    other carries on there (a faint or broken line), else the columns they share (a line joined
    with a printed word beside the box); either way the box's sides must be inked there."""
    slope = max(top, bottom, key=_length).slope
    top = _spanning(top, slope, top.x0, top.x1)
    bottom = _spanning(bottom, slope, bottom.x0, bottom.x1)
    union = min(top.x0, bottom.x0), max(top.x1, bottom.x1)
    shared = max(top.x0, bottom.x0), min(top.x1, bottom.x1)
    for x0, x1 in (union, shared):
        reached = all(_reaches(binary, line, x0, x1, tolerance) for line in (top, bottom))
        if (x0, x1) == union and not reached:
            continue
        lines = _spanning(top, slope, x0, x1), _spanning(bottom, slope, x0, x1)
        if _sides_inked(binary, *lines):
            return lines
    return None


def _rectangles(lines: list[_Line], binary: np.ndarray) -> list[tuple[_Line, _Line]]:
    height, width = binary.shape
    tolerance = END_TOLERANCE * width
    pairs, low, high = [], BOX_HEIGHT_SHARE[0] * height, BOX_HEIGHT_SHARE[1] * height
    heights = [line.y for line in lines]  # looked up once, not once a pair
    for top, top_y in zip(lines, heights, strict=True):
        for bottom, bottom_y in zip(lines, heights, strict=True):
            gap = bottom_y - top_y
            if not low <= gap <= high:
                continue
            shared = max(top.x0, bottom.x0), min(top.x1, bottom.x1)
            if shared[1] - shared[0] < 0.6 * max(top.x1 - top.x0, bottom.x1 - bottom.x0):
                continue
            # The box spans the columns both lines share or all of them: if neither lies where
            # an amount box can be, the candidates would drop it.
            union = min(top.x0, bottom.x0), max(top.x1, bottom.x1)
            if not (_right_side(*shared, width) or _right_side(*union, width)):
                continue
            matched = _matched(top, bottom, binary, tolerance)
            if matched is not None and gap <= 0.9 * (matched[0].x1 - matched[0].x0):
                pairs.append((top, bottom, *matched))
    return pairs


def _right_side(x0: float, x1: float, width: int) -> bool:
    """Where an amount box or underline can be: centred on the right half, from 35% across."""
    return (x0 + x1) / 2 >= width / 2 and x0 >= 0.35 * width


def _candidates(lines: list[_Line], pages: tuple, long: list) -> list[_Candidate]:
    """Rectangles and underlines on the right half, scored: a currency sign beside counts most.
    `pages`: the binary working page and its faint ink."""
    binary, faint = pages
    height, width = binary.shape
    found, in_box, marks = [], set(), (binary, long)
    for found_top, found_bottom, top, bottom in _rectangles(lines, faint):
        if not _right_side(top.x0, top.x1, width):
            continue
        in_box.update((id(found_top), id(found_bottom)))
        left = max(top.x0, bottom.x0)
        sign = _sign(marks, left, top.y0, bottom.y0)
        found.append(_Candidate(top, bottom, sign, 1.0 + _sign_score(sign, left, 2.0)))
    found = _innermost(found)
    if any(candidate.sign is not None for candidate in found):
        # A box with a sign beside it (score >= 2.8) beats any underline (score <= 2): the
        # underlines' signs need not be looked for.
        return sorted(found, key=lambda c: c.score, reverse=True)
    for line in lines:
        if id(line) in in_box or not _right_side(line.x0, line.x1, width):
            continue
        if line.x1 - line.x0 < MIN_UNDERLINE_SHARE * width:
            continue
        span = max(0.1 * height, 0.35 * (line.x1 - line.x0))
        sign = _sign(marks, line.x0, line.y0 - span, line.y0)
        if sign is not None:
            found.append(_Candidate(None, line, sign, _sign_score(sign, line.x0, 2.0)))
    return sorted(found, key=lambda c: c.score, reverse=True)


def _sign_score(sign: _Word | None, left: float, weight: float) -> float:
    """A sign beside the box counts `weight`, a little less the further it is (ties between two
    candidates with a sign go to the one whose sign is closer)."""
    if sign is None:
        return 0.0
    return weight - 0.1 * min(SIGN_NEAR, (left - sign.x1) / max(1, sign.height))


def _innermost(found: list[_Candidate]) -> list[_Candidate]:
    """Of nested rectangles (a box printed with a double outline) only the inner one: the
    reader must not see the inner outline as strokes."""

    def inside(a: _Candidate, b: _Candidate) -> bool:
        if (a.top, a.bottom) == (b.top, b.bottom):
            return False
        across = b.top.x0 <= a.top.x0 + 1 and a.top.x1 <= b.top.x1 + 1
        return across and b.top.y <= a.top.y and a.bottom.y <= b.bottom.y

    return [b for b in found if not any(inside(a, b) for a in found)]


def as_uint8(page: np.ndarray) -> np.ndarray:
    """Pages come as uint8 (decode_page) or float in [0, 1] (decode_image)."""
    page = np.asarray(page)
    if page.dtype == np.uint8:
        return page
    return (np.clip(page, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _work_page(page: np.ndarray) -> tuple[np.ndarray, float]:
    """The page shrunk by a whole factor to WORK_WIDTH..2*WORK_WIDTH pixels across (box
    averaging by a whole factor is ~100x cheaper than by a fractional one), and page pixels per
    working pixel."""
    height, width = page.shape
    factor = max(1, round(width / WORK_WIDTH))
    size = (width // factor, max(1, height // factor))
    page = page[: size[1] * factor, : size[0] * factor]
    if factor in (3, 4) and height >= factor:
        page = _area_shrunk(page, factor)
    elif factor > 1:
        page = cv2.resize(page, size, interpolation=cv2.INTER_AREA)
    return page, width / page.shape[1]


def _area_shrunk(page: np.ndarray, factor: int) -> np.ndarray:
    """cv2.resize(INTER_AREA) by a whole factor of 3 or 4, to the same bytes (each block's
    mean, rounded) for ~1/3 less CPU: OpenCV has a fast path for halving only."""
    wide = page.astype(np.uint16)
    rows = wide[0::factor]
    for k in range(1, factor):  # each block's columns summed over its rows...
        rows = cv2.add(rows, wide[k::factor])
    # ...then each block's sums (as channels) added and divided: no ties to round at 1/9, 1/16.
    blocks = rows.reshape(rows.shape[0], -1, factor)
    mean = cv2.transform(blocks, np.full((1, factor), 1.0 / (factor * factor)))
    return mean.astype(np.uint8)


def locate_amount(page: np.ndarray) -> AmountBox | None:
    """The courtesy-amount box of a grayscale cheque page (float [H, W] in [0, 1], dark ink on
    light paper), in the page's pixels; None when there is no box beside a currency sign."""
    work, factor = _work_page(as_uint8(page))
    binary, faint = _inks(work)
    lines, long = _lines(binary, faint)
    candidates = _candidates(lines, (binary, faint), long)
    if not candidates:
        return None
    best = candidates[0]
    return _amount_box(best, factor)


def _amount_box(found: _Candidate, factor: float) -> AmountBox:
    """The region to read, in page pixels: the box with its outline (the outline is painted
    out later), or the band above an underline up to past the currency sign's top."""
    bottom, top, sign = found.bottom, found.top, found.sign
    # The longer line's angle: handwriting crossing a line shortens and bends its pieces.
    angle = bottom.angle if top is None else max(top, bottom, key=_length).angle
    cos = math.cos(math.radians(angle))
    if top is not None:
        x0, x1 = max(top.x0, bottom.x0) - PAD, min(top.x1, bottom.x1) + PAD
        y0 = top.y_at(x0) - top.thickness / 2 - PAD
        y1 = bottom.y_at(x0) + bottom.thickness / 2 + PAD
    else:
        # From just past the sign: the amount may start before its underline does.
        x0, x1 = min(bottom.x0 - PAD, sign.x1 + PAD), bottom.x1 + PAD
        y1 = bottom.y_at(x0) + bottom.thickness / 2 + PAD
        y0 = min(sign.y0 - sign.height, y1 - 2.6 * sign.height)
    return AmountBox(
        box=_scaled(x0, y0, (x1 - x0) / cos, (y1 - y0) * cos, factor),
        kind=found.kind,
        angle=angle,
        sign=_scaled(sign.x0, sign.y0, sign.x1 - sign.x0, sign.height, factor) if sign else None,
        score=found.score,
    )


def _scaled(x: float, y: float, width: float, height: float, factor: float) -> Box:
    return Box(
        round(x * factor),
        round(y * factor),
        max(1, round(width * factor)),
        max(1, round(height * factor)),
    )


def amount_crop(page: np.ndarray, found: AmountBox, height: int | None = None) -> np.ndarray:
    """The box's inside cut from the page and straightened (rotated by the measured angle about
    its top-left corner): what the field reader reads. Above an underline, marks high up in
    the band (a label such as AMOUNT, the field above) are painted out. With `height`, a taller
    cut is shrunk to that many pixels first (`found.box.width / crop.shape[1]` page pixels a
    pixel): the reader needs far fewer pixels than a 300 dpi scan has."""
    box, page = found.box, as_uint8(page)
    if abs(found.angle) < 0.2:
        crop = page[box.y : box.y + box.height, box.x : box.x + box.width]
    else:
        theta = math.radians(found.angle)
        c, s = math.cos(theta), math.sin(theta)
        # Maps a crop pixel (u, v) to the page: along the box's top edge and perpendicular to it.
        matrix = np.array([[c, -s, box.x], [s, c, box.y]], dtype=np.float32)
        crop = cv2.warpAffine(
            page,
            matrix,
            (box.width, box.height),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )
    if height is not None and crop.shape[0] > height:
        size = (max(1, round(crop.shape[1] * height / crop.shape[0])), height)
        crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
    crop = _without_top_marks(crop) if found.kind == "underline" else _inside_frame(crop)
    return crop.astype(np.float32) / 255.0


def _inside_frame(crop: np.ndarray) -> np.ndarray:
    """The crop painted out up to the innermost printed vertical line near each side: a box printed
    with a double outline merges into one line on the working page, and its inner sides would
    otherwise be read as 1s. A column near a side inked along FRAME_COVER of the height is a
    printed line (handwritten digits are shorter than the box)."""
    level, ink = cv2.threshold(crop, 0, 1, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)
    height, width = ink.shape
    # A side spans the inner box only (a double outline's inner box is shorter than the cut).
    y0, y1 = _inner_rows(ink)
    # Ink per column (cv2.reduce: ~3x cheaper than numpy's sum down uint8 columns).
    columns = cv2.reduce(ink[y0:y1], 0, cv2.REDUCE_SUM, dtype=cv2.CV_32S)[0]
    inked = columns >= FRAME_COVER * (y1 - y0)
    near = max(2, int(FRAME_SIDE * width))
    left = np.flatnonzero(inked[:near])
    right = np.flatnonzero(inked[width - near :])
    x0 = int(left[-1]) + 1 if len(left) else 0
    x1 = width - near + int(right[0]) if len(right) else width
    if (x0 == 0 and x1 == width) or x1 - x0 <= width // 2:
        return crop
    out = crop.copy()  # painted as paper, not cut: the digits' boxes keep their coordinates
    paper = _paper(crop[:, x0:x1], int(level))
    out[:, :x0], out[:, x1:] = paper, paper
    return out


def _inner_rows(ink: np.ndarray) -> tuple[int, int]:
    """The rows between the innermost printed horizontal lines (rows inked along FRAME_COVER
    of the width) within FRAME_BAND of the top and of the bottom; the whole height without."""
    height, width = ink.shape
    lines = cv2.reduce(ink, 1, cv2.REDUCE_SUM, dtype=cv2.CV_32S)[:, 0] >= FRAME_COVER * width
    band = int(FRAME_BAND * height)
    top, bottom = np.flatnonzero(lines[:band]), np.flatnonzero(lines[height - band :])
    y0 = int(top[-1]) + 1 if len(top) else 0
    y1 = height - band + int(bottom[0]) if len(bottom) else height
    return (y0, y1) if y1 - y0 > height // 2 else (0, height)


def _paper(crop: np.ndarray, level: int) -> np.uint8:
    """The median of the crop's paper (values above Otsu's `level`) as np.median's uint8 gives
    it (the two middle values' mean, truncated), from a histogram: ~10x cheaper than sorting."""
    counts = cv2.calcHist([crop], [0], None, [256], [0, 256]).ravel()[level + 1 :]
    total = int(counts.sum())
    if total == 0:
        return np.uint8(255)
    # The values at sorted positions (total - 1) // 2 and total // 2 among the paper's.
    ranks = np.cumsum(counts)
    low, high = np.searchsorted(ranks, [(total - 1) // 2 + 1, total // 2 + 1]) + level + 1
    return np.uint8((float(low) + float(high)) / 2)


def _without_top_marks(crop: np.ndarray) -> np.ndarray:
    """Marks that end in the band's upper 40% painted as paper: the amount is written on the
    line, so they come from above it (a label, another field). Where they start does not
    matter: a label's lower-case letters start lower than its capitals."""
    level, ink = cv2.threshold(crop, 0, 255, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    height = crop.shape[0]
    top = stats[1:, cv2.CC_STAT_TOP]
    bottom = top + stats[1:, cv2.CC_STAT_HEIGHT]
    drop = 1 + np.flatnonzero(bottom < 0.4 * height)
    if len(drop) == 0:
        return crop
    out = crop.copy()
    out[np.isin(labels, drop)] = _paper(crop, int(level))
    return out


# A box's side: a column within FRAME_SIDE of the crop's width from a side, inked along
# FRAME_COVER of its height.
FRAME_SIDE = 0.1
FRAME_COVER = 0.8
# A double outline's inner top and bottom lines lie within this share of the cut's height.
FRAME_BAND = 0.3
AMOUNT_FORMAT = "amount_format"
# Separators a written amount may hold between its digits; "-" and gaps may also close it.
DECIMAL_MARKS = (".", ",")
THOUSANDS_MARKS = (",", ".", " ", "'")


def _groups(digits: int, separators) -> tuple[list[int], list[str]]:
    """Digit counts between the separators inside the amount (not before its first digit or
    after its last), and those separators, left to right."""
    inner = sorted((s.position, s.char) for s in separators if 0 < s.position < digits)
    counts, marks, previous = [], [], 0
    for position, char in inner:
        if position == previous and counts:  # two marks in one gap: ". -", ", " and the like
            marks[-1] = marks[-1] if marks[-1] != " " else char
            continue
        counts.append(position - previous)
        marks.append(char)
        previous = position
    counts.append(digits - previous)
    return counts, marks


def amount_format_problem(digits: int, separators) -> bool:
    """True when the separators read inside an amount make no amount: a written amount is whole
    digits, or thousands groups of three after a first group of one to three, optionally
    followed by one decimal mark and two digits of cents (1,250.00 / 1 250,00 / 1'250.00 /
    125000 / 907-). A slash, a second decimal mark or a group of the wrong size means a digit
    was lost, added or taken for a mark, so the reading is not trusted without a look."""
    if any(0 < s.position < digits and s.char not in THOUSANDS_MARKS for s in separators):
        return True  # "/" or "-" between digits (a 1 or a 7 taken for a mark)
    counts, marks = _groups(digits, separators)
    if not marks:
        return False
    if marks[-1] in DECIMAL_MARKS and counts[-1] == 2:
        counts, marks = counts[:-1], marks[:-1]  # the cents
        if not marks:
            return False
    if len(set(marks)) > 1 or not 1 <= counts[0] <= 3:
        return True
    return any(count != 3 for count in counts[1:])


# --- decoding a page and cutting the amount at the reader's resolution ----------------------
