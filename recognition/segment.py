"""Find the digits of a scanned field: printed lines out, ink pieces grouped into digits.

Pure image work (OpenCV), no model: `find_digits` turns a grayscale field into MNIST-form crops
and, where the ink is ambiguous (pieces that may be one broken digit, a blob that may be two
touching digits), into several hypotheses whose crops the model reads in the same batch as
everything else. `recognition.fields` picks the hypotheses and builds the reading.

Steps, each a small function:
1. ink: polarity from the border, the paper's uneven light removed by a morphological opening
   wider than any stroke, contrast normalised;
2. binarise (Otsu on the lightly blurred ink);
3. deskew: the angle of long straight lines (probabilistic Hough), when the field has them;
4. printed lines out: openings with long horizontal and vertical kernels find box outlines, comb
   cells, underlines; strokes that cross a line are bridged back by a closing across it;
5. connected components; specks and leftovers of lines dropped; pieces stacked in one column
   (a broken stroke) joined;
6. separators: marks much smaller than the field's digits (`.` `,` `-`), steep thin strokes much
   more slanted than a handwritten 1 (`/`), and wide gaps (` `) are reported, never read;
7. hypotheses: a mark wider than one digit may be split at column-projection minima; two narrow
   neighbouring marks may be one digit.
"""

import functools
import itertools
import math
import statistics
from dataclasses import dataclass, replace

import cv2
import numpy as np

from recognition.errors import EmptyImage, NoDigits
from recognition.frames import SIDE_PERCENTILE, frame_interior
from recognition.preprocess import MIN_CONTRAST, fit_crop, fit_digit, ink_and_mask

LAYOUTS = ("auto", "digit", "field")
# Fields are worked on with their shorter side at most this many pixels: a digit needs ~20.
WORK_SIDE = 96
# ... and a field whose shorter side is at least SHRINK_FROM (a 300 dpi scan: digits 70-110 px)
# is first shrunk by the whole factor that keeps that side at least SHRINK_SIDE: its digits (at
# least 40% of the shorter side) keep 23 px or more. Fields of MNIST-sized digits stay below.
SHRINK_SIDE, SHRINK_FROM = 56, 128
# A printed line spans at least this share of the field's width (or height, for vertical
# lines between a box's top and bottom) and is at least as long as the digits are tall.
LINE_SHARE = 0.5
VERTICAL_LINE_SHARE = 0.9
LONGEST_SHARE = 0.85
# A comb's cells are about as wide as its box is tall: a vertical run nearer than this share of
# the box's height to another line is a digit's stroke (a 1 against a side), not a cell wall.
MIN_CELL = 0.3
# A box with a single wall inside is a comb of two cells only if the narrower is at least this
# share of the wider (printed cells are equal; a 1 written in a box splits it anywhere).
EQUAL_CELLS = 0.8
# Separators: marks lower than this share of the digits' height.
SEPARATOR_HEIGHT = 0.45
# Gaps wider than this share of the digits' height are spaces.
SPACE_GAP = 1.0
# A mark this much wider than the digits are tall may hold several digits.
SPLIT_ASPECT = 1.15
# Cutting a mark must make its digits this many times more confident (geometric mean) than
# reading it whole: a wide 2 stays a 2 even if its halves read well. Joining two marks into one
# digit has no such handicap: halves of a broken digit read poorly on their own.
SPLIT_PRIOR = 0.5
# A "/" leans at least this many degrees from vertical: 0.13% of MNIST training 1s lean more.
# Between SLASH_DOUBT and it a thin stroke stays a digit (most are 1s) but its field goes to
# review: people's slashes lean 40-60 degrees, and 40-45 held a quarter of them.
SLASH_LEAN = 45
SLASH_DOUBT = 40
# A small mark whose middle stands above this share of the digits' height over the baseline.
STRAY_HEIGHT = 0.65
# ... joined to a digit at most this share of the digits' height away.
STRAY_GAP = 0.25
# A tall mark this much thinner than the field's strokes is no pen's: the field goes to review
# (8,000 test-digit cheque amounts: 5 fields, 2 of them wrong and not flagged; 0 of 4,000
# tuning amounts).
HAIRLINE = 0.3
# ... and is one thin straight stroke: its length over its width, squared (a 4 written with a
# slanted stem has arms that keep this low).
SLASH_ELONGATION = 30


@dataclass(frozen=True, slots=True)
class Box:
    """A rectangle in the pixels of the image as decoded: x, y of the top-left corner."""

    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class Separator:
    char: str  # one of . , - / and space
    box: Box
    position: int = -1  # how many digits come before it (set once the digits are read)


@dataclass(frozen=True, slots=True)
class Hypothesis:
    crops: tuple[int, ...]  # indices into Segmentation.crops, one per digit, left to right
    boxes: tuple[Box, ...]
    changed: bool  # the ink was cut or joined to make it (an ambiguity)
    prior: float = 1.0  # how much likelier than the marks as they are it must read to win


@dataclass(frozen=True)
class Segmentation:
    crops: np.ndarray  # float32 [M, 28, 28], every hypothesis's digits
    slots: tuple[tuple[Hypothesis, ...], ...]  # left to right; each slot holds >= 1 digit
    separators: tuple[Separator, ...]
    # The whole image as one digit (`plain_digit`), read instead when the slots come to one digit.
    plain: Hypothesis | None = None
    # A mark read as a digit leans nearly like a slash (SLASH_DOUBT): a person decides.
    doubtful: bool = False


@dataclass(slots=True)
class _Piece:
    """Some connected components (ids) and their bounding box, in working pixels."""

    ids: list[int]
    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0


class _Page:
    """The field in working pixels: normalised ink, the clean binary, its components."""

    def __init__(self, gray: np.ndarray, lines: bool = True, deskew: bool = True,
                 pixel_scale: float = 1.0):  # fmt: skip
        gray, shrink = _working(gray if gray.dtype == np.uint8 else np.asarray(gray, np.float32))
        # Working pixels per pixel of the upload.
        self.scale = shrink / pixel_scale
        self.ink = _ink(gray)
        binary, faint = _binarise(self.ink)
        angle = _skew_degrees(faint) if deskew else 0.0
        if angle:
            self.ink = _rotate(self.ink, angle)
            binary, faint = _binarise(self.ink)
        self.binary, self.lines = remove_lines(binary, faint) if lines else (binary, binary * 0)
        # Faint ink that is not a printed line: what a digit's crop may grow into (`_grown`).
        self.faint = faint & ~cv2.dilate(self.lines, _KERNEL3) if _inked(self.lines) else faint
        self.labels, self.stats = _components(self.binary, self.lines)
        self.rows = self.stats.tolist()  # plain lists: looked up once per crop
        self._masks: dict = {}  # a digit's mask serves its lean, its cuts and its crop

    def box(self, x0: int, y0: int, x1: int, y1: int) -> Box:
        s = 1.0 / self.scale
        return Box(round(x0 * s), round(y0 * s), round((x1 - x0) * s), round((y1 - y0) * s))

    def mask(self, ids: list[int], x0: int, x1: int) -> tuple[int, np.ndarray]:
        """(top row, mask): which pixels of columns x0..x1 belong to components `ids`, over
        the rows their boxes span (no other row holds any of them). Shared: not to be changed."""
        key = (tuple(ids), x0, x1)
        if key not in self._masks:
            self._masks[key] = self._mask(ids, x0, x1)
        return self._masks[key]

    def _mask(self, ids: list[int], x0: int, x1: int) -> tuple[int, np.ndarray]:
        if not ids:
            return 0, np.zeros((0, max(0, x1 - x0)), dtype=bool)
        top = min(self.rows[i][cv2.CC_STAT_TOP] for i in ids)
        bottom = max(self.rows[i][cv2.CC_STAT_TOP] + self.rows[i][cv2.CC_STAT_HEIGHT] for i in ids)
        labels = self.labels[top:bottom, x0:x1]
        if len(ids) == 1:
            return top, labels == ids[0]
        wanted = np.zeros(len(self.stats), dtype=bool)
        wanted[ids] = True
        return top, wanted[labels]

    def crop(self, ids: list[int], x0: int, x1: int) -> tuple[np.ndarray, Box] | None:
        """One digit's MNIST-form crop: the ink of components `ids` between columns x0 and x1."""
        left = min((self.rows[i][cv2.CC_STAT_LEFT] for i in ids), default=x0)
        right = max((self.rows[i][cv2.CC_STAT_LEFT] + self.rows[i][cv2.CC_STAT_WIDTH]
                     for i in ids), default=x1)  # fmt: skip
        if ids and x0 <= left and right <= x1:
            # Whole components: the union of their boxes is the ink box.
            top, mask = self.mask(ids, left, right)
            mask = self._grown(mask.view(np.uint8), top, left)
            piece = self.ink[top : top + mask.shape[0], left:right] * mask
            return fit_crop(piece), self.box(left, top, right, top + mask.shape[0])
        top, mask = self.mask(ids, x0, x1)
        rows = np.flatnonzero(mask.any(axis=1))
        cols = np.flatnonzero(mask.any(axis=0))
        if len(rows) == 0:
            return None
        ya, yb = int(rows[0]), int(rows[-1]) + 1
        xa, xb = x0 + int(cols[0]), x0 + int(cols[-1]) + 1
        mask = self._grown(mask[ya:yb, cols[0] : cols[-1] + 1].view(np.uint8), top + ya, xa)
        piece = self.ink[top + ya : top + yb, xa:xb] * mask
        return fit_crop(piece), self.box(xa, top + ya, xb, top + yb)

    def _grown(self, mask: np.ndarray, top: int, left: int) -> np.ndarray:
        """A digit's mask (uint8, its top-left pixel at `top`, `left`) widened by a pixel, with
        the faint ink that joins it inside the same window: hysteresis, so a faint digit's thin
        strokes (a 7's light bar, an 8's pale waist), under the field's ink level but connected
        to the strokes above it, stay in its crop. Most crops have no faint ink beyond the
        widened mask, and pay for no labelling."""
        grown = cv2.dilate(mask, _KERNEL3)
        faint = self.faint[top : top + mask.shape[0], left : left + mask.shape[1]]
        if not _inked(cv2.subtract(faint, grown)):
            return grown
        count, labels = cv2.connectedComponents(faint | grown, connectivity=8)
        joined = np.zeros(count, np.uint8)
        joined[labels[mask > 0]] = 1
        joined[0] = 0
        return joined[labels]


def _working(gray: np.ndarray) -> tuple[np.ndarray, float]:
    """The field at its working size, and working pixels per pixel of `gray`. A large field
    (SHRINK_FROM) is shrunk by a whole factor: a box average, several times cheaper than
    OpenCV's area resampling by any other factor (the last pixels of a row or column that do
    not fill a box are dropped). What is still above WORK_SIDE is shrunk to it. uint8 pixels
    (a decoded upload) stay uint8: a quarter of the bytes to shrink, and `_ink` reads them
    through a table."""
    height, width = gray.shape
    factor = min(height, width) // SHRINK_SIDE if min(height, width) >= SHRINK_FROM else 1
    if factor >= 2:
        height, width = height // factor, width // factor
        gray = cv2.resize(gray[: height * factor, : width * factor], (width, height),
                          interpolation=cv2.INTER_AREA)  # fmt: skip
    shrink = min(1.0, WORK_SIDE / min(height, width))
    if shrink < 1.0:
        size = (max(1, round(width * shrink)), max(1, round(height * shrink)))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    return gray, shrink / max(factor, 1)


# Up to this many pixels, 16-bit labels fit however the ink is scattered.
LABELS_16U_MAX_PIXELS = 65534


def _labelled(binary: np.ndarray) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """`cv2.connectedComponentsWithStats(binary, connectivity=8)` at its cheapest, the same
    labels and stats: 16-bit labels where they fit (a canvas digit: ~0.05 ms against
    ~0.12-0.15), else Grana's block-based algorithm (~2/3 of the default's time on a field)."""
    if binary.size <= LABELS_16U_MAX_PIXELS:
        return cv2.connectedComponentsWithStats(binary, connectivity=8, ltype=cv2.CV_16U)
    return cv2.connectedComponentsWithStatsWithAlgorithm(binary, 8, cv2.CV_32S, cv2.CCL_GRANA)


def _sums(image: np.ndarray, axis: int) -> np.ndarray:
    """`image.sum(axis)` of a uint8 image, as int32, by OpenCV (a third of numpy's cost)."""
    return cv2.reduce(image, axis, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel()


def _inked(image: np.ndarray) -> bool:
    """`image.any()` of a uint8 image by OpenCV, at a sixth of numpy's cost (a field asks often)."""
    return cv2.hasNonZero(image)


_KERNEL3 = np.ones((3, 3), np.uint8)
# Widening across a line: a pixel of wobble each way, for horizontal and vertical lines.
_ACROSS = {True: np.ones((3, 1), np.uint8), False: np.ones((1, 3), np.uint8)}


def _ink(gray: np.ndarray) -> np.ndarray:
    """Ink intensity in [0, 1] (1 = full ink) with the paper's light levelled out. `gray`:
    float in [0, 1], or uint8 levels (read as level / 255, to the same ink)."""
    if gray.dtype == np.uint8:
        ink8 = cv2.LUT(gray, _ink_table(_mostly_light_levels(gray)))
    else:
        ink8 = _ink_levels(gray, _mostly_light(gray))
    return _levelled(ink8)


def _ink_levels(gray: np.ndarray, light: bool) -> np.ndarray:
    """uint8 ink of float `gray`: its complement on light paper, itself on dark, times 255."""
    # Paper covers most of a field (its border may be a printed box): the median is paper.
    ink = np.subtract(1.0, gray, dtype=np.float32) if light else gray.copy()
    ink *= 255.0
    # `np.clip(ink, 0, 255).astype(np.uint8)` (which truncates): the floor of what is not
    # negative, which OpenCV's saturating conversion then takes as it is, at a third of the cost.
    return cv2.convertScaleAbs(np.floor(np.maximum(ink, 0, out=ink), out=ink))


@functools.cache
def _ink_table(light: bool) -> np.ndarray:
    """`_ink_levels` of every uint8 level as float (level / 255), as a table for `cv2.LUT`."""
    return _ink_levels(np.arange(256, dtype=np.float32)[None] / 255.0, light)


def _mostly_light_levels(gray: np.ndarray) -> bool:
    """`_mostly_light(gray / 255)` of uint8 levels: a level is above half from 128 on."""
    light = 2 * np.count_nonzero(gray >= 128)
    if light != gray.size:
        return light > gray.size
    return _mostly_light(gray.astype(np.float32) / 255.0)


def _levelled(ink8: np.ndarray) -> np.ndarray:
    """Ink levels with the paper's uneven light taken out, as float in [0, 1]."""
    # An opening wider than any stroke or blot keeps only the paper (uneven light, grey
    # backgrounds); done at a quarter of the size, where it costs a sixteenth.
    small = cv2.resize(ink8, (max(1, ink8.shape[1] // 4), max(1, ink8.shape[0] // 4)),
                       interpolation=cv2.INTER_AREA)  # fmt: skip
    side = max(5, min(small.shape) // 2) | 1
    paper = cv2.morphologyEx(small, cv2.MORPH_OPEN, np.ones((side, side), np.uint8))
    paper = cv2.resize(paper, (ink8.shape[1], ink8.shape[0]), interpolation=cv2.INTER_LINEAR)
    levelled = cv2.subtract(ink8, paper)
    peak = float(levelled.max())
    if peak < MIN_CONTRAST * 255:
        raise EmptyImage("the image holds no ink: it is blank or has no visible strokes")
    flat = levelled.astype(np.float32)
    flat /= max(_top_decile(levelled, 0.5 * peak), 1.0)
    return np.minimum(flat, 1.0, out=flat)  # np.clip, in place (nothing is below 0)


def _mostly_light(gray: np.ndarray) -> bool:
    """`np.median(gray) > 0.5`, from a count: only a tie at exactly half needs the median."""
    light = 2 * np.count_nonzero(gray > 0.5)
    return light > gray.size if light != gray.size else float(np.median(gray)) > 0.5


def _top_decile(levels: np.ndarray, above: float) -> float:
    """`np.percentile(levels[levels > above], 90)` of uint8 levels, from their histogram: the
    sorted values around the 90th percentile's place are usually all equal, and then they are
    the answer (no interpolation); otherwise numpy's own, of the same values in order."""
    counts = cv2.calcHist([levels], [0], None, [256], [0, 256]).ravel().astype(np.int64)
    counts[: int(math.floor(above)) + 1] = 0  # only levels strictly above
    ends = np.cumsum(counts)  # the sorted values' ranks: value v ends at ends[v]
    place = int(0.9 * (ends[-1] - 1))
    low, high = max(place - 1, 0), min(place + 2, int(ends[-1]) - 1)
    first, last = np.searchsorted(ends, [low, high], side="right")
    if first == last:
        return float(first)
    values = np.repeat(np.arange(256, dtype=np.float32), counts)
    return float(np.percentile(values, 90))


def _binarise(ink: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ink (Otsu) and, at half its level, faint ink: thin printed lines are found in the latter,
    where they are not broken into dashes."""
    ink8 = (ink * 255).astype(np.uint8)
    blurred = cv2.GaussianBlur(ink8, (3, 3), 0)
    level, _ = cv2.threshold(blurred, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    # Otsu splits paper from ink; on a nearly empty page keep it above the paper's noise.
    level = max(level, 0.3 * 255)
    # cv2.threshold of uint8 is `blurred > level` (it floors the level), in one call.
    binary = cv2.threshold(blurred, level, 1, cv2.THRESH_BINARY)[1]
    return binary, cv2.threshold(blurred, level / 2, 1, cv2.THRESH_BINARY)[1]


def _skew_degrees(binary: np.ndarray) -> float:
    """The tilt of the field's long straight lines (0 when it has none), in degrees.

    Short horizontal runs survive a tilt of a few degrees and stay 8-connected along a line;
    each long chain of them gives a slope (`_line_slope`). A chain no taller than its own
    thickness is straight and costs nothing more."""
    height, width = binary.shape
    runs = cv2.morphologyEx(binary, cv2.MORPH_OPEN, np.ones((1, max(9, width // 30)), np.uint8))
    # An 8-connected chain has a pixel in every column it spans: with fewer inked columns than
    # a long line needs, there is none (most fields without printed lines stop here).
    if np.count_nonzero(runs.any(axis=0)) < width * LINE_SHARE:
        return 0.0
    count, labels, stats, _ = _labelled(runs)
    slopes = []
    for i in 1 + np.flatnonzero(stats[1:, cv2.CC_STAT_WIDTH] >= width * LINE_SHARE):
        x, y, w, h, area = (int(v) for v in stats[i])
        rise = h - area / w  # bounding height minus the line's thickness
        slopes.append(0.0 if rise < 1.5 else _line_slope(labels[y : y + h, x : x + w] == i))
    if not slopes:
        return 0.0
    angle = float(np.degrees(np.arctan(statistics.median(slopes))))
    return angle if 0.3 <= abs(angle) <= 6 else 0.0


def _line_slope(mask: np.ndarray) -> float:
    """Slope of a line drawn in `mask`: the mean row of each column, summarised in eight
    stretches by their medians (digit strokes touching the line move a few columns, not a
    median), and the median of the slopes between stretches (Theil-Sen)."""
    counts = mask.sum(axis=0)
    cols = np.flatnonzero(counts)
    rows = (np.arange(mask.shape[0], dtype=np.float32) @ mask[:, cols]) / counts[cols]
    size = len(cols) // 8
    if size == 0:
        return 0.0
    xs = _row_medians(cols[: 8 * size].reshape(8, size), ordered=True)
    ys = _row_medians(rows[: 8 * size].reshape(8, size))
    a, b = np.triu_indices(8, 1)
    return float(statistics.median(((ys[b] - ys[a]) / (xs[b] - xs[a])).tolist()))


def _row_medians(values: np.ndarray, ordered: bool = False) -> np.ndarray:
    """`np.median(values, axis=1)` to the same bits (the mean of the two middle values, in the
    values' own precision), without its generic overhead; `ordered` rows are sorted already."""
    size = values.shape[1]
    middle = (size - 1) // 2, size // 2
    if not ordered:
        values = np.partition(values, sorted(set(middle)), axis=1)
    if middle[0] == middle[1]:
        return values[:, middle[1]]
    return (values[:, middle[0]] + values[:, middle[1]]) / 2


def _rotate(ink: np.ndarray, angle: float) -> np.ndarray:
    height, width = ink.shape
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    return cv2.warpAffine(ink, matrix, (width, height), flags=cv2.INTER_LINEAR)


def _line_mask(binary: np.ndarray, length: int, horizontal: bool, at: np.ndarray | None = None,
               thick: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """Straight runs at least `length` long (tolerating a pixel of wobble across them). For
    horizontal lines, looked for only in the rows `at` when given: the opening runs along each
    row on its own, so a caller that knows the others hold no run spares their work (a field's
    lines are a few of its rows; columns are not gathered: strided, they cost more than they
    save). `thick`: the widened ink, when the caller has it."""
    thick = cv2.dilate(binary, _ACROSS[horizontal]) if thick is None else thick
    if at is None or not horizontal:
        return _open_runs(thick, length, horizontal) & binary
    lines = np.zeros_like(binary)
    lines[at] = _open_runs(thick[at], length, horizontal) & binary[at]
    return lines


def _open_runs(thick: np.ndarray, length: int, horizontal: bool) -> np.ndarray:
    """The opening of `thick` by a line `length` long along rows (or columns)."""
    if length >= LONG_KERNEL[horizontal]:
        return _open_along(thick, length, horizontal)
    along = (1, length) if horizontal else (length, 1)
    return cv2.morphologyEx(thick, cv2.MORPH_OPEN, np.ones(along, np.uint8))


# OpenCV's morphology costs in proportion to a kernel's length; from these lengths on
# (horizontal, vertical: measured), the opening by a line is done in log2(length) steps instead.
LONG_KERNEL = {True: 64, False: 24}


def _open_along(binary: np.ndarray, length: int, horizontal: bool) -> np.ndarray:
    """`cv2.morphologyEx(binary, MORPH_OPEN, a 1 x length line)` of a 0/1 image, to the same
    pixels: an erosion then a dilation over the window [x - length // 2, x - length // 2 +
    length - 1] along the line (OpenCV's anchor, for both), pixels beyond the image ignored."""
    if horizontal:  # a field's few line rows: two running sums beat the doubling's many steps
        return _open_by_counts(binary, length)
    eroded = _window(binary, length, horizontal, np.bitwise_and, 1)
    if not _inked(eroded):  # most fields: no column holds a run that long
        return eroded
    return _window(eroded, length, horizontal, np.bitwise_or, 0)


def _open_by_counts(binary: np.ndarray, length: int) -> np.ndarray:
    """`_open_along` of rows by box sums (OpenCV's cost does not grow with the window): a pixel
    survives the erosion when its window holds no paper (beyond the image counts as ink), and
    the dilation when its window holds a survivor (beyond the image counts as nothing)."""
    options = {"anchor": (length // 2, 0), "normalize": False,
               "borderType": cv2.BORDER_CONSTANT}  # fmt: skip
    paper = cv2.boxFilter(binary ^ 1, cv2.CV_32S, (length, 1), **options)
    eroded = (paper == 0).view(np.uint8)
    return (cv2.boxFilter(eroded, cv2.CV_32S, (length, 1), **options) > 0).view(np.uint8)


def _window(image: np.ndarray, length: int, horizontal: bool, combine, neutral: int):
    """`combine` (AND or OR) of the pixels in each one's window above, by doubling spans:
    after k steps each value covers 2**k pixels; two overlapping spans cover the window."""
    axis = 1 if horizontal else 0
    size, start = image.shape[axis], length // 2

    def cut(lo: int, hi: int) -> tuple:  # columns (or rows) lo..hi
        return (slice(None), slice(lo, hi)) if horizontal else (slice(lo, hi),)

    shape = list(image.shape)
    shape[axis] = size + length - 1
    padded = np.full(shape, neutral, np.uint8)
    padded[cut(start, start + size)] = image
    span = 1
    while 2 * span <= length:
        padded = combine(padded[cut(0, padded.shape[axis] - span)], padded[cut(span, None)])
        span *= 2
    return combine(padded[cut(0, size)], padded[cut(length - span, length - span + size)])


def _extend(binary: np.ndarray, long: np.ndarray, thick: dict, horizontal: bool) -> np.ndarray:
    """Long lines plus the shorter straight runs along them (a faint or broken stretch);
    `thick`: `binary` widened across lines, each way."""
    height, width = binary.shape
    reach = max(3, (width if horizontal else height) // 8)
    band = cv2.dilate(long, np.ones((5, reach) if horizontal else (reach, 5), np.uint8))
    at = np.flatnonzero(_sums(band, 1 if horizontal else 0))  # runs elsewhere are dropped
    short = _line_mask(binary, max(5, (width if horizontal else height) // 15), horizontal, at,
                       thick[horizontal])  # fmt: skip
    return long | (short & band)


def _longest(lines: np.ndarray) -> np.ndarray:
    """Only the runs nearly as long as the longest: a box's lines, not a digit's straight bar
    inside it (a 7's bar or a 2's foot is shorter than the box around it)."""
    if not _inked(lines):
        return lines
    count, labels, stats, _ = _labelled(lines)
    if count <= 2:
        return lines
    widths = stats[:, cv2.CC_STAT_WIDTH].copy()
    widths[0] = 0
    keep = widths >= LONGEST_SHARE * widths.max()
    if keep[1:].all():  # every run is long (a box's top and bottom): all of them, as they are
        return lines
    return keep[labels].astype(np.uint8)


def _aligned(horizontal: np.ndarray, rows: np.ndarray) -> bool:
    """A box's top and bottom lines start and end together (a 3's top and bottom strokes do
    not)."""
    width = horizontal.shape[1]
    top = np.flatnonzero(horizontal[rows[0] : rows[0] + 3].any(axis=0))
    bottom = np.flatnonzero(horizontal[max(0, rows[-1] - 2) : rows[-1] + 1].any(axis=0))
    return abs(top[0] - bottom[0]) <= 0.08 * width and abs(top[-1] - bottom[-1]) <= 0.08 * width


def _box_sides(vertical: np.ndarray, horizontal: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Only the vertical lines that reach a box's top and bottom lines, or stand at their ends
    (a side whose corners a tilt took out of the image): a tall 1 inside the box is neither.
    Nor is a 1 written beside a side: a run between the sides must stand a cell away from the
    others (`MIN_CELL`)."""
    count, labels, stats, _ = _labelled(vertical)
    top, bottom = rows[0], rows[-1]
    reach = max(3, round(0.08 * (bottom - top)))
    ends = stats[:, cv2.CC_STAT_TOP], stats[:, cv2.CC_STAT_TOP] + stats[:, cv2.CC_STAT_HEIGHT]
    keep = (ends[0] <= top + reach) & (ends[1] >= bottom - reach)
    cols = np.flatnonzero(_sums(horizontal, 0))
    left, right = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_LEFT] + stats[:, 2]
    keep |= (left <= cols[0] + reach) | (right >= cols[-1] - reach)
    keep[0] = False
    kept = sorted(np.flatnonzero(keep), key=lambda i: left[i])
    if len(kept) >= 3:  # the outermost two are the sides; the rest must be cell walls
        walls = [kept[0], kept[-1]]
        for i in kept[1:-1]:
            gaps = [max(left[i] - right[j], left[j] - right[i]) for j in walls]
            if min(gaps) >= MIN_CELL * (bottom - top):
                walls.append(i)
        if len(walls) == 3:  # one wall: a comb of two cells, as wide as each other
            cells = sorted((left[walls[2]] - right[walls[0]], left[walls[1]] - right[walls[2]]))
            if cells[0] < EQUAL_CELLS * cells[1]:
                walls.pop()  # a tall 1 touching the box's top and bottom, not a wall
        keep[:] = False
        keep[walls] = True
    return keep[labels].astype(np.uint8)


def remove_lines(binary: np.ndarray, faint: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(binary without printed lines, the lines' mask). Box outlines, comb cells, underlines.

    A lone straight stroke (a 7's bar, a 2's foot) is not a line: a single horizontal line must
    be 1.5 times longer than the rest of the ink is tall; two far apart (a box's or a comb's top
    and bottom) always are, and then vertical lines joining them are the box's sides. The lines
    found are cut back to their printed width (`_printed_width`): ink merged with them is ink.
    """
    height, width = binary.shape
    # The ink widened across lines each way, shared by the search for lines and its extension.
    thick = {way: cv2.dilate(faint, _ACROSS[way]) for way in (True, False)}
    horizontal = _longest(_bounded_lines(faint, max(12, int(width * LINE_SHARE)), thick, True))
    rows = np.flatnonzero(_sums(horizontal, 1))
    # In a field wider than tall no digit stroke spans half its width; in a squarer image a
    # digit's strokes might (a 3's top and foot), so there the two lines must also align.
    boxed = len(rows) > 0 and rows[-1] - rows[0] > 0.3 * height
    boxed = boxed and (width > 1.5 * height or _aligned(horizontal, rows))
    if not boxed and len(rows):  # (no rows: no line to weigh)
        ink_rows = np.flatnonzero(_sums(binary & ~horizontal, 1) >= 2)
        ink_height = (ink_rows[-1] - ink_rows[0] + 1) if len(ink_rows) else 0
        if np.count_nonzero(_sums(horizontal, 0)) < 2 * ink_height:
            horizontal = np.zeros_like(binary)
    horizontal = _extend(faint, horizontal, thick, True) if _inked(horizontal) else horizontal
    # A box's sides join its top and bottom; without them only a line spanning the whole
    # height is printed (a box whose top and bottom were too faint to find).
    span = rows[-1] - rows[0] if boxed else height
    vertical = _bounded_lines(faint, max(8, int(span * VERTICAL_LINE_SHARE)), thick, False)
    if boxed and _inked(vertical):
        vertical = _box_sides(vertical, horizontal, rows)
    ways = _inked(horizontal), _inked(vertical)
    if not any(ways):
        return binary, horizontal
    vertical = _extend(faint, vertical, thick, False) if ways[1] else vertical
    if ways[0]:
        horizontal, vertical = _printed_width(horizontal, vertical)
    return _bridged(binary, horizontal, vertical, ways), horizontal | vertical


def _printed_width(horizontal: np.ndarray, vertical: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Printed lines (a box's, an underline) cut back to the thickness one pen printed them
    with, from their outer edge: ink lying along a line and merged with it (a 7's bar against
    a box's top, a 1 against its side, a 2's foot on an underline) is the digit's. The
    thickness is the percentile a box's side is measured by (`frames.SIDE_PERCENTILE`) of the
    horizontal lines' across the columns, the thinner half's (a digit along them covers few)."""
    height, width = horizontal.shape
    counts = [_sums(half, 0) for half in (horizontal[: height // 2], horizontal[height // 2 :])]
    thicknesses = [np.sort(c[c > 0]) for c in counts if c.any()]
    keep = min(int(t[(len(t) - 1) * SIDE_PERCENTILE // 100]) for t in thicknesses) + 1
    horizontal = _cut_back(horizontal, counts, keep)
    if _inked(vertical):
        across = [_sums(side, 1) for side in (vertical[:, : width // 2], vertical[:, width // 2 :])]
        vertical = _cut_back(vertical.T, across, keep).T
    return horizontal, vertical


def _cut_back(lines: np.ndarray, counts: list[np.ndarray], keep: int) -> np.ndarray:
    """`lines` (0/1) with the outermost run of each column, seen from the top down in its top
    half and from the bottom up in its bottom half, cut back to its first `keep` pixels; other
    runs (a comb's walls, further in) stay. `counts`: each half's line pixels by column; only
    the columns holding more than `keep` are looked at (most hold a line's own width), and
    nothing is copied if none does."""
    out = None
    size = lines.shape[0]
    for top, count in zip((True, False), counts, strict=True):
        cols = np.flatnonzero(count > keep)
        if not len(cols):
            continue
        if out is None:
            out = lines.copy()
        part, target = ((lines[: size // 2], out[: size // 2]) if top
                        else (lines[size // 2 :][::-1], out[size // 2 :][::-1]))  # fmt: skip
        band = part[:, cols]
        run = np.cumsum(band, axis=0, dtype=np.int32)
        gaps = np.cumsum((run > 0) & (band == 0), axis=0, dtype=np.int32)
        target[:, cols] = band & ~((gaps == 0) & (run > keep))
    return lines if out is None else out


def _bridged(binary: np.ndarray, horizontal: np.ndarray, vertical: np.ndarray,
             ways: tuple[bool, bool]) -> np.ndarray:  # fmt: skip
    """The ink without the lines (and a pixel around them), strokes that crossed a line bridged
    back across it; `ways`: whether there are horizontal, vertical lines (a way without any
    costs nothing)."""
    present = [(lines, axis) for lines, axis, way in ((horizontal, 0, ways[0]),
                                                      (vertical, 1, ways[1])) if way]  # fmt: skip
    bands = [cv2.dilate(lines, _KERNEL3) for lines, _ in present]
    clean = binary & ~(bands[0] if len(bands) == 1 else bands[0] | bands[1])
    span = min(max(int(_sums(lines, axis).max()) for lines, axis in present), 8) + 4
    # A horizontal line (axis 0) is crossed by vertical strokes, and the other way round.
    kernels = [np.ones((span, 1) if axis == 0 else (1, span), np.uint8) for _, axis in present]
    bridges = [cv2.morphologyEx(clean, cv2.MORPH_CLOSE, kernel) & band
               for kernel, band in zip(kernels, bands, strict=True)]  # fmt: skip
    for bridge in bridges:
        clean |= bridge
    return clean


def _bounded_lines(faint: np.ndarray, length: int, thick: dict, horizontal: bool) -> np.ndarray:
    """`_line_mask`, skipped (no line) where the cheap bound `_line_rows` shows none can be:
    most fields have no printed line one way or the other, many none at all."""
    at = _line_rows(faint, length, horizontal, thick[horizontal])
    if not len(at):
        return np.zeros_like(faint)
    return _line_mask(faint, length, horizontal, at, thick[horizontal])


def _components(binary: np.ndarray, lines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels and stats of the ink's connected components, specks and line remnants zeroed."""
    count, labels, stats, _ = _labelled(binary)
    stats = stats.copy()
    if count <= 1:
        return labels, stats
    areas = stats[1:, cv2.CC_STAT_AREA]
    drop = areas < max(3, 0.02 * float(areas.max()))
    if _inked(lines):
        band = cv2.dilate(lines, np.ones((5, 5), np.uint8))
        in_band = np.bincount(labels[band > 0], minlength=count)[1:]
        drop |= (in_band > 0.6 * areas) & (stats[1:, cv2.CC_STAT_HEIGHT] < 0.5 * binary.shape[0])
    stats[1:][drop, cv2.CC_STAT_AREA] = 0
    return labels, stats


def _pieces(page: _Page) -> list[_Piece]:
    """Components as pieces, left to right, with pieces stacked in one column joined."""
    pieces = []
    for i in np.flatnonzero(page.stats[:, cv2.CC_STAT_AREA] > 0):
        if i == 0:
            continue
        x, y, w, h = page.rows[i][:4]
        pieces.append(_Piece([int(i)], x, y, x + w, y + h))
    pieces.sort(key=lambda p: p.x0)
    joined: list[_Piece] = []
    for piece in pieces:
        last = joined[-1] if joined else None
        if last and min(last.x1, piece.x1) - max(last.x0, piece.x0) >= 0.5 * min(
            last.width, piece.width
        ):
            last.ids += piece.ids
            last.x0, last.y0 = min(last.x0, piece.x0), min(last.y0, piece.y0)
            last.x1, last.y1 = max(last.x1, piece.x1), max(last.y1, piece.y1)
        else:
            joined.append(piece)
    return joined


def _lean_degrees(page: _Page, piece: _Piece) -> float:
    """How far a mark's main axis leans from vertical, and 0 for marks that are not thin."""
    _, mask = page.mask(piece.ids, piece.x0, piece.x1)  # the rows piece.y0 .. piece.y1
    m = cv2.moments(mask.view(np.uint8), binaryImage=True)
    if m["m00"] == 0:
        return 0.0
    a, b, c = m["mu20"] / m["m00"], m["mu11"] / m["m00"], m["mu02"] / m["m00"]
    spread = math.sqrt(4 * b * b + (a - c) ** 2)
    major, minor = (a + c + spread) / 2, (a + c - spread) / 2
    if minor <= 0 or major / minor < SLASH_ELONGATION:  # not one thin straight stroke
        return 0.0
    return abs(90.0 - abs(np.degrees(0.5 * np.arctan2(2 * b, a - c))))


def _small(piece: _Piece, digit_height: float) -> bool:
    """Much lower than the field's digits and no wider than one: a separator's size."""
    return piece.height < SEPARATOR_HEIGHT * digit_height and piece.width < digit_height


def _separator_char(piece: _Piece, digit_height: float, baseline: float, lean: float) -> str:
    """The separator a mark is, or "" for a digit; `lean`: its stroke's (`_slant`)."""
    if _small(piece, digit_height):
        if piece.width >= 1.8 * piece.height:
            return "-"
        return "," if piece.y1 > baseline + 0.15 * digit_height else "."
    return "/" if lean > SLASH_LEAN else ""


def _stray(piece: _Piece, digit_height: float, baseline: float) -> bool:
    """A small mark in the upper part of the digits' band: no separator is written there
    (dots and commas sit on the baseline, dashes across the middle), but a broken digit's
    part may be (a 7's faint bar, a 5's flag) and the digit beside it read without it."""
    high = (piece.y0 + piece.y1) / 2 < baseline - STRAY_HEIGHT * digit_height
    return _small(piece, digit_height) and high


def _join_strays(pieces: list[_Piece], digit_height: float, baseline: float) -> list[_Piece]:
    """Each small mark high in the digits' band (`_stray`) joined to the digit beside it when
    one stands within STRAY_GAP of it: a 5's flag or a 7's bar written apart from the rest."""
    out = list(pieces)
    for stray in pieces:
        if not _stray(stray, digit_height, baseline):
            continue
        tall = [p for p in out if p.height >= SEPARATOR_HEIGHT * digit_height]
        if not tall:
            continue
        gap = [max(p.x0 - stray.x1, stray.x0 - p.x1, 0) for p in tall]
        near = tall[int(np.argmin(gap))]
        if min(gap) <= STRAY_GAP * digit_height:
            out.remove(stray)
            out[out.index(near)] = _Piece(near.ids + stray.ids, min(near.x0, stray.x0),
                                          min(near.y0, stray.y0), max(near.x1, stray.x1),
                                          max(near.y1, stray.y1))  # fmt: skip
    return out


def _stroke_width(page: _Page, piece: _Piece) -> float:
    """A mark's mean stroke width in working pixels: its area over its runs of ink across
    rows or down columns, whichever are more (a 1's rows, a bar's columns, a loop's both)."""
    _, mask = page.mask(piece.ids, piece.x0, piece.x1)
    ink = mask.view(np.uint8)
    # A run starts where a pixel is inked and the one before it (or the edge) is not.
    across = _starts(ink[:, 1:], ink[:, :-1]) + cv2.countNonZero(ink[:, :1])
    down = _starts(ink[1:], ink[:-1]) + cv2.countNonZero(ink[:1])
    return cv2.countNonZero(ink) / max(across, down, 1)


def _starts(pixels: np.ndarray, before: np.ndarray) -> int:
    """How many inked pixels follow a blank one (uint8 masks, each pixel after its `before`)."""
    return cv2.countNonZero(cv2.compare(pixels, before, cv2.CMP_GT))


def _hairline(page: _Page, digits: list[_Piece], digit_height: float) -> bool:
    """A tall mark whose stroke is under HAIRLINE of the field's usual width: a pen does not
    draw it (a printed rule cut by the image's edge, a scanner streak), yet it reads as a 1."""
    tall = [d for d in digits if d.height >= 0.6 * digit_height]
    if len(tall) < 2:
        return False
    widths = [_stroke_width(page, d) for d in tall]
    return min(widths) < HAIRLINE * statistics.median(widths)


def _slant(page: _Page, piece: _Piece, digit_height: float) -> float:
    """`_lean_degrees` of a mark tall enough to be a slash or a 1, else 0."""
    return _lean_degrees(page, piece) if piece.height >= 0.6 * digit_height else 0.0


def _join_fragments(pieces: list[_Piece], digit_height: float) -> list[_Piece]:
    """Two small neighbouring pieces that together stand as tall as a digit are one digit's
    (a slanted stroke broken in two), not two separators."""
    small = SEPARATOR_HEIGHT * digit_height
    out: list[_Piece] = []
    for piece in pieces:
        last = out[-1] if out else None
        if (
            last is not None
            and last.height < small
            and piece.height < small
            and piece.x0 - last.x1 <= 0.1 * digit_height
            and max(last.y1, piece.y1) - min(last.y0, piece.y0) >= 0.6 * digit_height
        ):
            out[-1] = _Piece(
                last.ids + piece.ids, min(last.x0, piece.x0), min(last.y0, piece.y0),
                max(last.x1, piece.x1), max(last.y1, piece.y1),
            )  # fmt: skip
        else:
            out.append(piece)
    return out


def _classify(page: _Page, pieces: list[_Piece]):
    """(digit pieces, separators as (char, index among the digits, piece), digit height,
    whether a digit piece leans nearly like a slash)."""
    tall = max(p.height for p in pieces)
    digit_height = float(statistics.median([p.height for p in pieces if p.height >= 0.5 * tall]))
    if len(pieces) == 1:
        return pieces, [], digit_height, False
    baseline = float(statistics.median([p.y1 for p in pieces if p.height >= 0.5 * tall]))
    digits, separators, doubtful = [], [], False
    for piece in _join_strays(_join_fragments(pieces, digit_height), digit_height, baseline):
        lean = _slant(page, piece, digit_height)
        char = _separator_char(piece, digit_height, baseline, lean)
        if char:
            separators.append((char, len(digits), piece))
            doubtful = doubtful or _stray(piece, digit_height, baseline)
        else:
            if digits and piece.x0 - digits[-1].x1 > SPACE_GAP * digit_height:
                gap = _Piece([], digits[-1].x1, piece.y0, piece.x0, piece.y1)
                separators.append((" ", len(digits), gap))
            digits.append(piece)
            doubtful = doubtful or lean > SLASH_DOUBT
    return digits, separators, digit_height, doubtful or _hairline(page, digits, digit_height)


def _cuts(page: _Page, piece: _Piece, parts: int) -> list[int]:
    """Columns that cut a wide mark into `parts`: the least inked column near each even cut."""
    _, mask = page.mask(piece.ids, piece.x0, piece.x1)
    profile = mask.sum(axis=0).astype(np.float64)
    window = max(1, piece.width // (3 * parts))
    cuts = []
    for k in range(1, parts):
        centre = piece.x0 + piece.width * k // parts - piece.x0
        lo, hi = max(1, centre - window), min(piece.width - 1, centre + window + 1)
        cuts.append(piece.x0 + lo + int(np.argmin(profile[lo:hi])))
    return cuts


class _Collector:
    """Crops gathered for one model call; hypotheses refer to them by index."""

    def __init__(self, page: _Page):
        self.page, self.crops = page, []

    def hypothesis(self, spans: list[tuple[list[int], int, int]], changed: bool, prior=1.0):
        indices, boxes = [], []
        for ids, x0, x1 in spans:
            made = self.page.crop(ids, x0, x1)
            if made is None:
                return None
            indices.append(len(self.crops))
            self.crops.append(made[0])
            boxes.append(made[1])
        return Hypothesis(tuple(indices), tuple(boxes), changed, prior)


def _slot(collect: _Collector, piece: _Piece, digit_height: float, split: bool) -> tuple:
    whole = collect.hypothesis([(piece.ids, piece.x0, piece.x1)], changed=False)
    options = [whole]
    aspect = piece.width / max(digit_height, 1.0)
    if split and aspect > SPLIT_ASPECT:
        for parts in range(2, max(2, min(4, round(aspect / 0.75))) + 1):
            edges = [piece.x0, *_cuts(collect.page, piece, parts), piece.x1]
            spans = [(piece.ids, a, b) for a, b in zip(edges, edges[1:], strict=False)]
            options.append(collect.hypothesis(spans, changed=True, prior=SPLIT_PRIOR))
    return tuple(o for o in options if o is not None)


def _joinable(a: _Piece, b: _Piece, digit_height: float) -> bool:
    """Two neighbouring marks that may be the pieces of one broken digit."""
    narrow = min(a.width, b.width) < 0.45 * digit_height
    return narrow and b.x0 - a.x1 < 0.12 * digit_height and b.x1 - a.x0 < 1.0 * digit_height


def _slots(collect: _Collector, digits: list[_Piece], digit_height: float, split: bool) -> list:
    slots, i = [], 0
    while i < len(digits):
        piece = digits[i]
        if split and i + 1 < len(digits) and _joinable(piece, digits[i + 1], digit_height):
            nxt = digits[i + 1]
            apart = collect.hypothesis(
                [(piece.ids, piece.x0, piece.x1), (nxt.ids, nxt.x0, nxt.x1)], changed=False
            )
            joined = collect.hypothesis([(piece.ids + nxt.ids, piece.x0, nxt.x1)], changed=True)
            slots.append(tuple(o for o in (apart, joined) if o is not None))
            i += 2
            continue
        slots.append(_slot(collect, piece, digit_height, split))
        i += 1
    return [slot for slot in slots if slot]


# The plain one-digit path (`to_mnist`, as before fields existed) serves an image no wider or
# taller than this many times its other side ...
PLAIN_MAX_ASPECT = 2.2
# ... whose marks make one column group no wider than this share of its height (a wider mark may
# be two touching digits) ...
PLAIN_MAX_WIDTH = 1.3
# A wide group's segmentations are weighed against the plain digit when they are this few.
MAX_COMBINED = 16
# ... and that holds no printed structure: no frame around the ink (its four sides this much
# inked) and no flat stroke across it (height under this share of its width).
FRAME_COVER = 0.8
FRAME_FILL = 0.5
FLAT_SHARE = 0.25
# A piece this close beside the rest (share of the ink's height) is part of the same digit: a
# chip of ink at most this share of the largest piece's area, or any piece across a crack.
CHIP_GAP, CHIP_AREA, CRACK_GAP = 0.2, 0.2, 0.07
# ... unless both it and the rest stand at least this share of the ink's height: two tall marks
# side by side go to the segmenter, which weighs them as one digit and as two.
TALL_SHARE = 0.6
# Printed lines are looked for in ink fainter than a digit's: this share of the ink's peak.
FAINT_INK = 0.15
# A printed box's edge is a row (column) with at least this many pixels of faint ink.
FRAME_EDGE_INK = 2
# Inside a box, a group of marks wider than this share of its height may be two digits.
BOXED_MAX_WIDTH = 1.0
# ... and a mark across this share of its inside's width is a printed line, not a digit.
ACROSS_INSIDE = 0.8


def _is_frame(mask: np.ndarray) -> bool:
    """A rectangle around the rest (a printed box): each side of the component's box inked
    along most of its length. A round 0 or a 7's bar covers one or two sides, not all four."""
    height, width = mask.shape
    band = max(2, round(0.08 * min(height, width)))
    for side in (mask[:band], mask[-band:]):  # top and bottom first: most digits leave one bare
        if np.count_nonzero(side.any(axis=0)) < FRAME_COVER * width:
            return False
    for side in (mask[:, :band], mask[:, -band:]):
        if np.count_nonzero(side.any(axis=1)) < FRAME_COVER * height:
            return False
    return True


def _column_groups(boxes: list[tuple[int, ...]]) -> tuple[int, int, int] | None:
    """(x0, x1, height) of the marks (x0, x1, y0, y1, area) when they stand in one column group,
    else None. The pieces of a broken digit overlap in x, or a chip of it lies just beside it;
    digits side by side leave a column of paper between them."""
    height = max(b[3] for b in boxes) - min(b[2] for b in boxes)
    largest = max(b[4] for b in boxes)
    x0, x1 = boxes[0][0], boxes[0][1]
    tall = boxes[0][3] - boxes[0][2] >= TALL_SHARE * height
    for bx0, bx1, by0, by1, area in boxes[1:]:
        gap = bx0 - x1
        chip = gap <= CHIP_GAP * height and area <= CHIP_AREA * largest
        if gap > 0 and not (chip or gap <= CRACK_GAP * height):
            return None
        if gap > 0 and tall and by1 - by0 >= TALL_SHARE * height:
            return None  # two tall marks side by side: an 8 and a 1 as much as one digit
        x0, x1 = min(x0, bx0), max(x1, bx1)
        tall = tall or by1 - by0 >= TALL_SHARE * height
    return x0, x1, height


def _printed(labels: np.ndarray, boxes: list[list[int]], width: int, height: int) -> bool:
    """A frame around the marks (a box, a comb cell) or a flat stroke across them (a line);
    `boxes` are the components' (id, x, y, w, h, area)."""
    for i, x, y, w, h, area in boxes:
        if h < FLAT_SHARE * w and w >= 0.8 * width:
            return True
        # A frame is hollow (a thick 1 fills its own box, and its ends cover its sides).
        framing = w >= 0.9 * width and h >= 0.9 * height and area <= FRAME_FILL * w * h
        if framing and _is_frame(labels[y : y + h, x : x + w] == i):
            return True
    return False


def _line_rows(faint: np.ndarray, length: int, horizontal: bool,
               thick: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """The rows (columns, for vertical lines) that may hold a run `length` long in
    `_line_mask`: at least `length` pixels of the same widened ink in them, or half that when
    the ink reaches the image's side (the opening counts pixels beyond it as ink). A bound, not
    the search: a superset of `_line_mask`'s rows, so where it finds none neither would the
    morphology, which is then not done. `thick`: the widened ink, when the caller has it."""
    thick = cv2.dilate(faint, _ACROSS[horizontal]) if thick is None else thick
    counts = _sums(thick, 1 if horizontal else 0)
    sides = (faint[:, 0], faint[:, -1]) if horizontal else (faint[0], faint[-1])
    if sides[0].any() or sides[1].any():
        length = min(length // 2, thick.shape[1 if horizontal else 0])
    return np.flatnonzero(counts >= length)


def _ruled(ink: np.ndarray, mask: np.ndarray) -> bool:
    """A box drawn in faint ink around the marks (a thin grey box broken into pieces by noise
    or JPEG is no frame component, but still a box): two straight lines far apart each way,
    and the rest of the ink inside them, clear of at least three of them. A boxy 0's straight
    stretches are its own outline: what is left of it touches them."""
    faint = (ink > FAINT_INK).view(np.uint8)
    height, width = faint.shape
    ways = ((True, width, height), (False, height, width))
    bounds = []
    for horizontal, along, across in ways:  # cheap bound first: most single digits stop here
        at = _line_rows(faint, max(8, int(LINE_SHARE * along)), horizontal)
        if not len(at) or at[-1] - at[0] < 0.5 * across:
            return False
        bounds.append(at)
    found, ruled = [], np.zeros_like(faint)
    for (horizontal, along, across), bound in zip(ways, bounds, strict=True):
        lines = _line_mask(faint, max(8, int(LINE_SHARE * along)), horizontal, bound)
        at = np.flatnonzero(lines.any(axis=1 if horizontal else 0))
        if not len(at) or at[-1] - at[0] < 0.5 * across:
            return False
        found.append(at)
        ruled |= lines
    rest = mask & ~cv2.dilate(ruled, _KERNEL3).astype(bool)
    rows, cols = np.flatnonzero(rest.any(axis=1)), np.flatnonzero(rest.any(axis=0))
    if not len(rows):
        return True  # straight lines both ways and nothing else: a box (around a 1)
    (top, bottom), (left, right) = (found[0][[0, -1]], found[1][[0, -1]])
    gap = 2
    clear = (rows[0] > top + gap, rows[-1] < bottom - gap, cols[0] > left + gap,
             cols[-1] < right - gap)  # fmt: skip
    return sum(clear) >= 3


def _marks(labels: np.ndarray, stats: list[list[int]]) -> str:
    """ "one" (one group of marks, no wider than a digit), "printed" (a box or a line among
    them), "apart" (marks side by side) or "wide" (one group wide enough to be two touching
    digits). `stats` are the components' rows of `connectedComponentsWithStats`, as lists (a
    handful of marks: plain Python beats numpy's per-call cost here)."""
    floor = max(3, 0.02 * float(max(row[4] for row in stats[1:])))
    boxes = [[i, *row] for i, row in enumerate(stats) if i and row[4] >= floor]
    spans = sorted((x, x + w, y, y + h, area) for _, x, y, w, h, area in boxes)
    group = _column_groups(spans)
    if group is None:
        return "apart"  # the segmenter reads them (and finds any printed lines)
    if _printed(labels, boxes, group[1] - group[0], group[2]):
        return "printed"
    return "wide" if group[1] - group[0] > PLAIN_MAX_WIDTH * group[2] else "one"


def plain_digit(
    gray: np.ndarray, drawn: bool = False
) -> tuple[str, Hypothesis | None, np.ndarray | None]:
    """The image as one digit through `to_mnist`'s own normalisation: what its marks are
    (`_marks`, "boxed" for one digit inside a printed box, or "field" for an image too long for
    one digit), and, unless it is a field, the one-digit hypothesis and its crop (for "boxed",
    the inside of the box; none for marks among printed lines, which the segmenter reads).
    This keeps single-digit scans and drawings exactly as they were read before fields
    existed, and nearly as cheap: the ink and its mask are computed once, the components'
    boxes give the ink box, and the search for a faint printed box runs only when the ink
    could hold one, and never for a canvas drawing (`drawn`), which has no printed lines."""
    return _plain_digit(gray, drawn)[:3]


def _plain_digit(gray: np.ndarray, drawn: bool = False):
    """`plain_digit`, and for a printed box around several marks the image with the box
    painted out (else None), for the segmenter. Marks among printed lines get no crop: the
    segmenter reads them, and a large field's crop (Pillow shrinking its whole ink box) would
    cost as much as the rest of the plain path."""
    height, width = gray.shape
    if max(height, width) > PLAIN_MAX_ASPECT * min(height, width):
        return "field", None, None, None
    if gray.dtype == np.uint8:  # decoded levels: `to_mnist` reads floats in [0, 1]
        gray = gray.astype(np.float32) / 255.0
    ink, mask = ink_and_mask(gray, drawn)
    count, labels, stats, _ = _labelled(mask.view(np.uint8))
    rows = stats.tolist()
    framed = None if drawn else _framed(ink, mask, rows)
    if framed is not None and framed[0] != "printed":
        kind, unframed, crop, (x0, y0, x1, y1) = framed
        return kind, Hypothesis((0,), (Box(x0, y0, x1 - x0, y1 - y0),), False), crop, unframed
    kind = _marks(labels, rows) if count > 1 else "one"
    if framed is not None or (kind in ("one", "wide") and not drawn and _ruled(ink, mask)):
        kind = "printed"
    # The ink box is the union of the components' boxes (every inked pixel is in one).
    x0, y0 = min(r[0] for r in rows[1:]), min(r[1] for r in rows[1:])
    x1, y1 = max(r[0] + r[2] for r in rows[1:]), max(r[1] + r[3] for r in rows[1:])
    crop = fit_digit(ink[y0:y1, x0:x1]) if kind != "printed" else None
    plain = Hypothesis((0,), (Box(x0, y0, x1 - x0, y1 - y0),), changed=False)
    return kind, plain, crop, framed[1] if framed else None


def _framed(ink: np.ndarray, mask: np.ndarray, rows: list[list[int]]):
    """What a printed box (`frame_interior`) holds, as (kind, the image with the box painted
    out for the segmenter, the plain crop of the ink inside, its ink box): "boxed" for one
    digit; "wide" for one group of marks wider than a digit, "apart" for pieces side by side
    no wider than one (two narrow digits, a 5 whose bar came off) — the segmenter weighs them
    against the plain crop, as it does for the same marks without a box. ("printed", the image
    with the box painted out) for marks as wide as several digits; ("printed", None) for a
    comb (a divider from the box's top to its bottom) or an empty box, which the segmenter
    takes with the box; None when there is no box."""
    faint = ink > FAINT_INK
    box = _frame_box(faint)
    if box is None:
        return None
    x0, y0, x1, y1 = box
    height, width = mask.shape
    touches = (y0 == 0, y1 == height, x0 == 0, x1 == width)
    inside = frame_interior(faint[y0:y1, x0:x1], touches)
    if inside is None:
        return None
    digit = (mask[y0:y1, x0:x1] & inside).view(np.uint8)
    _, _, stats, _ = _labelled(digit)
    floor = max(3, 0.02 * float(max(row[4] for row in rows[1:])))
    spans = sorted((x, x + w, y, y + h, area) for x, y, w, h, area in stats.tolist()[1:]
                   if area >= floor)  # fmt: skip
    if not spans:
        return ("printed", None)
    inner = np.flatnonzero(inside.any(axis=1))
    top, bottom = min(s[2] for s in spans), max(s[3] for s in spans)
    left, right = spans[0][0], max(s[1] for s in spans)
    divider = len(spans) > 1 and any(
        s[3] - s[2] >= 0.9 * (inner[-1] - inner[0]) and s[1] - s[0] < 0.25 * (s[3] - s[2])
        for s in spans
    )
    if divider:
        return ("printed", None)
    if right - left > PLAIN_MAX_WIDTH * (bottom - top):
        # Several digits. The segmenter reads them with the box painted out here, where a digit
        # touching it keeps its stroke along it (line removal took a 7's bar with the box's
        # top), unless a mark spans the inside from side to side: printed lines the box left
        # (a comb's floor and walls), which the segmenter removes with the rest.
        cols = np.flatnonzero(inside.any(axis=0))
        if all(s[1] - s[0] < ACROSS_INSIDE * (cols[-1] - cols[0]) for s in spans):
            return ("printed", _painted_out(ink, inside, box))
        return ("printed", None)
    group = _column_groups(spans)
    kind = (
        "apart"
        if group is None
        else "wide"
        if right - left > BOXED_MAX_WIDTH * (bottom - top)
        else "boxed"
    )
    piece = ink[y0 + top : y0 + bottom, x0 + left : x0 + right] * inside[top:bottom, left:right]
    crop, ink_box = fit_digit(piece), (x0 + left, y0 + top, x0 + right, y0 + bottom)
    if kind == "boxed":
        return kind, None, crop, ink_box
    return kind, _painted_out(ink, inside, box), crop, ink_box


def _painted_out(ink: np.ndarray, inside: np.ndarray, box: tuple[int, int, int, int]):
    """The image as grey levels (paper 1.0) holding only the ink inside the box: `inside` is
    `frame_interior`'s, over the box's outer edges `box` (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = box
    unframed = np.zeros_like(ink)
    unframed[y0:y1, x0:x1] = ink[y0:y1, x0:x1] * inside
    return np.subtract(1.0, unframed, out=unframed)


def _frame_box(faint: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) where a printed box's outer edges would be: the first and last rows
    and columns with a few inked pixels (a speck of dust outside is not the box's edge)."""
    counts = faint.view(np.uint8)
    rows = np.flatnonzero(cv2.reduce(counts, 1, cv2.REDUCE_SUM, dtype=cv2.CV_32S)[:, 0]
                          >= FRAME_EDGE_INK)  # fmt: skip
    cols = np.flatnonzero(cv2.reduce(counts, 0, cv2.REDUCE_SUM, dtype=cv2.CV_32S)[0]
                          >= FRAME_EDGE_INK)  # fmt: skip
    if len(rows) < 2 or len(cols) < 2:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


@functools.cache
def _single_threaded() -> None:
    """OpenCV's worker threads cost more than they save on images this small (and the API and
    the workers already run fields side by side): once, on first use, not at import."""
    cv2.setNumThreads(1)


def _scaled(box: Box, scale: float) -> Box:
    return Box(*(round(v * scale) for v in (box.x, box.y, box.width, box.height)))


def _page_pieces(gray: np.ndarray, **options) -> tuple[_Page, list[_Piece]]:
    page = _Page(gray, **options)
    pieces = _pieces(page)
    if not pieces and _inked(page.lines) and gray.shape[1] <= 1.5 * gray.shape[0]:
        # Nothing but "lines" in a squarish image: they were the ink itself (a big round 0
        # alone in its image). A wide image of lines alone is an empty field.
        page = _Page(gray, lines=False, **options)
        pieces = _pieces(page)
    if not pieces:
        raise NoDigits("no digits found: the image holds only printed lines or specks")
    return page, pieces


def _field(page: _Page, pieces: list[_Piece]) -> Segmentation:
    digits, separators, digit_height, doubtful = _classify(page, pieces)
    if not digits:
        raise NoDigits("no digits found: only separators (dots, dashes, slashes)")
    collect = _Collector(page)
    slots = _slots(collect, digits, digit_height, split=True)
    found = tuple(Separator(char, page.box(p.x0, p.y0, p.x1, p.y1)) for char, _, p in separators)
    return Segmentation(np.stack(collect.crops), tuple(slots), found, doubtful=doubtful)


def _all_ink(page: _Page, pieces: list[_Piece]) -> Segmentation:
    """All the ink left once printed lines are out, as one digit."""
    collect = _Collector(page)
    ids = [i for p in pieces for i in p.ids]
    whole = collect.hypothesis([(ids, pieces[0].x0, max(p.x1 for p in pieces))], False)
    return Segmentation(np.stack(collect.crops), ((whole,),), ())


def _with_plain(segmentation: Segmentation, plain: Hypothesis, crop: np.ndarray,
                wide: bool) -> Segmentation:  # fmt: skip
    """The field's segmentation plus the whole image as one plain digit, which the reading uses
    whenever the segmentation comes to one digit. A `wide` group of marks (one digit, or two
    touching) becomes one slot: the plain digit, or any of the segmenter's readings of it where
    they read clearly better (by SPLIT_PRIOR, as a cut mark must)."""
    plain = replace(plain, crops=(len(segmentation.crops),))
    crops = np.concatenate([segmentation.crops, crop[None]])
    slots = segmentation.slots
    combined = math.prod(len(slot) for slot in slots)
    if wide and combined <= MAX_COMBINED:
        readings = tuple(
            Hypothesis(
                sum((h.crops for h in parts), ()),
                sum((h.boxes for h in parts), ()),
                changed=True,
                prior=SPLIT_PRIOR * math.prod(h.prior for h in parts),
            )  # fmt: skip
            for parts in itertools.product(*slots)
        )
        slots = ((plain, *readings),)
    return replace(segmentation, crops=crops, slots=slots, plain=plain)


def find_digits(
    gray: np.ndarray,
    layout: str = "auto",
    *,
    deskew: bool = True,
    pixel_scale: float = 1.0,
    drawn: bool = False,
) -> Segmentation:
    """Segment a field (grayscale float [H, W] in [0, 1], or uint8 levels, either polarity)
    into digit crops.

    `layout="digit"` reads all the ink (printed lines removed) as one digit; `"field"` and
    `"auto"` find every digit. With `"digit"` and `"auto"`, an image that plainly holds one
    digit (`plain_digit`) is read exactly as before fields existed, at the same cost. Raises
    EmptyImage when there is no ink, NoDigits when the ink holds no digit (only lines or
    separators). `deskew=False` skips the search for a tilt (a crop already straightened);
    `pixel_scale` is how many pixels of the upload one pixel of `gray` spans (boxes are
    reported in the upload's pixels); `drawn=True` (a canvas drawing: no printed lines) skips
    the search for a faint printed box around a plain digit.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}: use one of {', '.join(LAYOUTS)}")
    _single_threaded()
    kind, plain, crop, unframed = (
        _plain_digit(gray, drawn) if layout != "field" else ("field", None, None, None)
    )
    if plain is not None and pixel_scale != 1.0:
        plain = replace(plain, boxes=tuple(_scaled(b, pixel_scale) for b in plain.boxes))
    if kind in ("one", "boxed"):
        return Segmentation(crop[None], ((plain,),), ())
    try:
        # A printed box painted out leaves the marks inside it for the segmenter.
        inside = gray if unframed is None else unframed
        page, pieces = _page_pieces(inside, deskew=deskew, pixel_scale=pixel_scale)
        unlined = kind == "wide" or (kind == "apart" and not _inked(page.lines))
        if layout == "digit":
            return Segmentation(crop[None], ((plain,),), ()) if unlined else _all_ink(page, pieces)
        segmentation = _field(page, pieces)
    except (EmptyImage, NoDigits):
        if kind not in ("apart", "wide"):
            raise
        # The marks `to_mnist` reads as a digit are one, whatever the segmenter made of them.
        return Segmentation(crop[None], ((plain,),), ())
    return _with_plain(segmentation, plain, crop, kind == "wide") if unlined else segmentation
