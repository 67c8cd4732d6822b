"""Synthetic scanned cheque fronts composed from MNIST digits, for tuning and evaluation.

A cheque carries much more than its courtesy amount, and most of it is a trap for a reader that
looks for digits: a printed bank name and address, a printed cheque number, a date written by
hand (digits!), payee and legal-amount lines in cursive, a memo, a signature and a MICR line full
of printed digits. `render_cheque` draws all of that on one of several templates (bank layouts),
puts the handwritten amount (MNIST digits, with separators such as 1,250.00 / 1 250,00 / 907-)
in a printed box or on an underline beside a printed currency sign, and scans the page: 150-300
dpi, slight rotation, noise, uneven light, blur, JPEG.

Use training digits to tune the reader and test digits to evaluate it. Everything is drawn from
a `numpy.random.Generator`, so a seed gives the same cheques every time.
"""

import json
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from training.synthetic_fields import encode_scan

CURRENCIES = ("$", "€", "£", "¥", "₹", "Fr", "R$", "₩", "₽", "kr")
# Amount styles: thousands separator, decimal separator, whether cents are written, a trailing
# dash for whole amounts ("907-", a common way to close an amount against tampering).
STYLES = {
    "us": (",", ".", True, False),
    "eu_space": (" ", ",", True, False),
    "eu_dot": (".", ",", True, False),
    "plain_cents": ("", ".", True, False),
    "swiss": ("'", ".", True, False),
    "whole_dash": ("", "", False, True),
    "whole": ("", "", False, False),
}
FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))
# Typefaces of the printed text and the currency sign (the MICR line is always monospaced).
FACES = (
    "DejaVuSans.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSansCondensed.ttf",
    "DejaVuSerifCondensed-Italic.ttf",
    "DejaVuSans-Oblique.ttf",
)
BANKS = ("FIRST NATIONAL BANK", "Banque du Lac", "NORTHERN TRUST CO.", "Caisse Populaire",
         "Harbour Savings Bank", "CREDIT MUTUEL DU SUD", "Union Bank of Elm")  # fmt: skip
STREETS = ("12 Market Street, Springfield", "4 rue de la Gare 1003 Lausanne",
           "700 Main St. Suite 21, Portland OR 97201", "Kings Road 18, London SW3 4RP")  # fmt: skip


@dataclass(frozen=True)
class Template:
    """A bank layout: page size in inches and where things go, in page fractions (x, y)."""

    name: str
    size: tuple[float, float]
    amount: tuple[float, float, float, float]  # x0, y0, x1, y1 of the amount box
    amount_kind: str  # "box" or "underline"
    date: tuple[float, float, float]  # x0, x1, y of the date line
    payee: tuple[float, float, float]
    legal: tuple[float, float, float]
    memo: tuple[float, float, float]
    signature: tuple[float, float, float]
    number: tuple[float, float]
    micr_y: float = 0.91


# The bank layouts: one JSON object a template, the fields of Template (lists for tuples).
TEMPLATE_FILE = Path(__file__).with_name("cheque_templates.json")


def _templates() -> tuple[Template, ...]:
    rows = json.loads(TEMPLATE_FILE.read_text(encoding="utf-8"))
    return tuple(
        Template(**{k: tuple(v) if isinstance(v, list) else v for k, v in row.items()})
        for row in rows
    )


TEMPLATES = _templates()


@dataclass
class ChequeSpec:
    template: Template
    dpi: int
    currency: str
    style: str
    rotation: float = 0.0
    noise: float = 0.01
    blur: float = 0.0
    uneven_light: bool = False
    jpeg_quality: int | None = 85
    security_pattern: bool = False
    face: str = FACES[0]  # the printed text's typeface
    sign_face: str = FACES[0]
    double_frame: bool = False  # the amount box printed with two nested outlines
    amount_label: str = ""  # a small printed word above the box (AMOUNT, MONTANT, ...)
    speckles: float = 0.0  # share of pixels turned black or white (dust, a dirty platen)
    tags: list[str] = field(default_factory=list)


@dataclass
class SyntheticCheque:
    image: bytes
    amount: str  # the amount's digits, without separators (what `text` answers)
    written: str  # the amount as written, separators included
    box: tuple[int, int, int, int]  # the amount box in page pixels after scanning: x, y, w, h
    spec: ChequeSpec


LABELS = ("AMOUNT", "MONTANT", "BETRAG", "IMPORTE", "Amount")


def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def random_spec(rng: np.random.Generator, template: Template | None = None) -> ChequeSpec:
    """A cheque as scanners deliver them: every effect with some probability. Without a
    template, one of TEMPLATES, half the time with its amount box moved and resized."""
    if template is None:
        template = _pick(rng, TEMPLATES)
        template = vary_template(template, rng) if rng.random() < 0.5 else template
    steep = rng.random() < 0.2
    return ChequeSpec(
        template=template,
        dpi=int(rng.integers(150, 301)),
        currency=_pick(rng, CURRENCIES),
        style=_pick(rng, list(STYLES)),
        rotation=float(rng.uniform(-3.0, 3.0) if steep else rng.uniform(-2.0, 2.0))
        if rng.random() < 0.7
        else 0.0,
        noise=float(rng.uniform(0.005, 0.035)),
        blur=float(rng.uniform(0.3, 1.0)) if rng.random() < 0.3 else 0.0,
        uneven_light=bool(rng.random() < 0.4),
        jpeg_quality=int(rng.integers(40, 95)) if rng.random() < 0.8 else None,
        security_pattern=bool(rng.random() < 0.4),
        face=_pick(rng, FACES),
        sign_face=_pick(rng, FACES),
        double_frame=bool(template.amount_kind == "box" and rng.random() < 0.15),
        amount_label=_pick(rng, LABELS) if rng.random() < 0.3 else "",
        speckles=float(rng.uniform(0.0005, 0.003)) if rng.random() < 0.2 else 0.0,
        tags=[template.name],
    )


def _clear_of(line: tuple[float, float, float], box, margin: float) -> tuple[float, float, float]:
    """A printed line shortened to end before the amount box (and its sign) when they share
    the same height on the page, as bank layouts do."""
    x0, x1, y = line
    left, top, _, bottom = box
    if top - 0.04 <= y <= bottom + 0.04 and x1 > left - margin:
        x1 = max(x0 + 0.05, left - margin)
    return x0, x1, y


def vary_template(template: Template, rng: np.random.Generator) -> Template:
    """The template with its amount box moved and resized on the right half, the printed
    lines that would run into it shortened and the cheque number elsewhere on the top."""
    x0, y0, x1, y1 = template.amount
    width = (x1 - x0) * rng.uniform(0.8, 1.3)
    height = (y1 - y0) * rng.uniform(0.8, 1.3)
    right = min(0.97, x1 + rng.uniform(-0.04, 0.02))
    left = max(0.58, right - width)
    top = float(np.clip(y0 + rng.uniform(-0.05, 0.05), 0.08, 0.7 - height))
    box = (left, top, right, top + height)
    margin = 0.12 + 0.6 * height
    number_x = rng.uniform(0.35, left - 0.15) if top < 0.22 else rng.uniform(0.5, 0.88)
    return replace(
        template,
        name=f"{template.name}_moved",
        amount=box,
        date=_clear_of(template.date, box, margin),
        payee=_clear_of(template.payee, box, margin),
        legal=_clear_of(template.legal, box, margin + 0.1),
        number=(float(number_x), float(rng.uniform(0.03, 0.08))),
    )


def format_amount(digits: str, style: str) -> str:
    """'125000' written in `style`: 1,250.00 / 1 250,00 / 1.250,00 / 1250.00 / 907- / 907."""
    thousands, decimal, cents, dash = STYLES[style]
    whole, tail = (digits[:-2], digits[-2:]) if cents else (digits, "")
    groups = []
    while len(whole) > 3 and thousands:
        groups.insert(0, whole[-3:])
        whole = whole[:-3]
    text = thousands.join([whole, *groups]) if whole else thousands.join(groups)
    if cents:
        text += decimal + tail
    return text + ("-" if dash else "")


def random_amount(rng: np.random.Generator, style: str) -> str:
    """The digits of an amount: 1 to 5 digits before the cents, no leading zero."""
    cents = STYLES[style][2]
    whole = int(rng.integers(1, 6))
    digits = str(int(rng.integers(1, 10))) + "".join(str(d) for d in rng.integers(0, 10, whole - 1))
    return digits + ("".join(str(d) for d in rng.integers(0, 10, 2)) if cents else "")


MONO = "DejaVuSansMono.ttf"


@lru_cache(maxsize=256)
def _font(size: int, name: str = FACES[0]) -> ImageFont.ImageFont:
    for folder in FONT_DIRS:
        if (folder / name).exists():
            return ImageFont.truetype(str(folder / name), size)
    return ImageFont.load_default(size=size)


class _Page:
    """Ink coverage (0 = paper, 1 = full ink) of a cheque front at `dpi`."""

    def __init__(self, spec: ChequeSpec, rng: np.random.Generator):
        self.dpi, self.rng, self.face = spec.dpi, rng, spec.face
        self.w = round(spec.template.size[0] * spec.dpi)
        self.h = round(spec.template.size[1] * spec.dpi)
        self.ink = np.zeros((self.h, self.w), np.float32)

    def px(self, fx: float, fy: float) -> tuple[int, int]:
        return round(fx * self.w), round(fy * self.h)

    def text(self, fx, fy, text, inches, face: str | None = None, level=1.0) -> tuple:
        font = _font(max(6, round(inches * self.dpi)), face or self.face)
        layer = Image.new("L", (self.w, self.h), 0)
        ImageDraw.Draw(layer).text(self.px(fx, fy), text, fill=round(255 * level), font=font)
        np.maximum(self.ink, np.asarray(layer, np.float32) / 255.0, out=self.ink)
        return ImageDraw.Draw(layer).textbbox(self.px(fx, fy), text, font=font)

    def line(self, p0, p1, thickness: int, level: float = 1.0) -> None:
        cv2.line(self.ink, p0, p1, level, thickness, cv2.LINE_AA)

    def paste(self, ink: np.ndarray, x: int, y: int) -> None:
        h, w = ink.shape
        x, y = max(0, x), max(0, y)
        region = self.ink[y : y + h, x : x + w]
        np.maximum(region, ink[: region.shape[0], : region.shape[1]], out=region)

    def thickness(self) -> int:
        return max(1, round(self.dpi / 100 * self.rng.uniform(0.7, 1.6)))


def _digit_ink(image: np.ndarray, height: int) -> np.ndarray:
    rows = np.flatnonzero(image.max(axis=1) > 40)
    cols = np.flatnonzero(image.max(axis=0) > 40)
    crop = image[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].astype(np.float32) / 255.0
    width = max(2, round(crop.shape[1] * height / crop.shape[0]))
    return np.clip(cv2.resize(crop, (width, height), interpolation=cv2.INTER_CUBIC), 0, 1)


def _separator_ink(char: str, height: int) -> tuple[np.ndarray, int]:
    """A handwritten separator's ink and its top offset from the digits' top."""
    pen = max(2, height // 10)
    if char == " ":
        return np.zeros((height, height // 2), np.float32), 0
    if char == "/":
        ink = np.zeros((height, height // 2 + pen), np.float32)
        cv2.line(ink, (ink.shape[1] - pen, 0), (pen, height - 1), 1.0, pen, cv2.LINE_AA)
        return ink, 0
    if char == "-":
        ink = np.zeros((pen + 2, max(pen * 3, height // 2)), np.float32)
        cv2.line(ink, (1, pen // 2 + 1), (ink.shape[1] - 2, pen // 2 + 1), 1.0, pen)
        return ink, height // 2 - pen // 2
    side = pen + 2
    ink = np.zeros((side * 2 if char == "," else side, side + 2), np.float32)
    cv2.circle(ink, (side // 2 + 1, side // 2), max(1, side // 2), 1.0, -1, cv2.LINE_AA)
    if char == ",":
        cv2.line(ink, (side // 2 + 1, side // 2), (1, ink.shape[0] - 1), 1.0, max(1, pen // 2))
    return ink, height - side


def _handwriting(written: str, height: int, images, labels, rng) -> np.ndarray:
    """`written` (digits and separators) as one ink strip `height` pixels tall plus a margin."""
    by_label = _by_label(labels)
    pieces, x = [], 0
    for char in written:
        if char.isdigit():
            pool = by_label[int(char)]
            size = max(8, round(height * rng.uniform(0.85, 1.05)))
            ink, top = _digit_ink(images[pool[int(rng.integers(len(pool)))]], size), 0
            top = int(rng.integers(-height // 14, height // 14 + 1)) + height - size
        else:
            ink, top = _separator_ink(char, height)
        x += int(height * rng.uniform(0.08, 0.3)) if pieces else 0
        pieces.append((ink, x, top + height // 6))
        x += ink.shape[1]
    strip = np.zeros((height + height // 3, x + 1), np.float32)
    for ink, left, top in pieces:
        region = strip[top : top + ink.shape[0], left : left + ink.shape[1]]
        np.maximum(region, ink[: region.shape[0], : region.shape[1]], out=region)
    return strip


_LABEL_CACHE: dict[int, list[np.ndarray]] = {}


def _by_label(labels: np.ndarray) -> list[np.ndarray]:
    key = id(labels)
    if key not in _LABEL_CACHE:
        _LABEL_CACHE[key] = [np.flatnonzero(labels == d) for d in range(10)]
    return _LABEL_CACHE[key]


def _scribble(page: _Page, x0: int, x1: int, baseline: int, height: int) -> None:
    """Cursive-like handwriting: a pen trace of loops and waves along a baseline."""
    rng = page.rng
    steps = max(8, (x1 - x0) // max(2, height // 6))
    xs = np.linspace(x0, x1, steps) + rng.normal(0, height * 0.08, steps)
    phase = np.cumsum(rng.uniform(0.6, 1.6, steps))
    ys = baseline - height * (0.35 + 0.3 * np.sin(phase * 2.2) + 0.15 * rng.standard_normal(steps))
    points = np.stack([xs, ys], axis=1).round().astype(np.int32)
    for start in range(0, steps, int(rng.integers(6, 14))):  # words: pen lifts between them
        stop = min(steps, start + int(rng.integers(5, 12)))
        cv2.polylines(page.ink, [points[start:stop]], False, 1.0, page.thickness(), cv2.LINE_AA)


def _draw_printed(page: _Page, t: Template, rng) -> None:
    pen = page.thickness()
    bank = BANKS[int(rng.integers(len(BANKS)))]
    page.text(0.04, 0.04, bank, 0.16, face=_pick(rng, FACES))
    page.text(0.04, 0.13, STREETS[int(rng.integers(len(STREETS)))], 0.08)
    page.text(*t.number, f"{int(rng.integers(100, 99999)):05d}"[: int(rng.integers(3, 6))], 0.12)
    date_x0, date_x1, date_y = t.date
    page.text(date_x0 - 0.075, date_y - 0.09, "DATE", 0.08)
    page.line(page.px(date_x0, date_y), page.px(date_x1, date_y), pen)
    for label, (x0, x1, y), dx in (("PAY TO THE ORDER OF", t.payee, -0.18), ("", t.legal, 0.0),
                                   ("MEMO", t.memo, -0.07), ("", t.signature, 0.0)):  # fmt: skip
        if label:
            page.text(x0 + dx, y - 0.08, label, 0.07)
        page.line(page.px(x0, y), page.px(x1, y), pen)
    page.text(min(t.legal[1] + 0.01, 0.9), t.legal[2] - 0.08, "DOLLARS", 0.07)
    micr = "".join(str(d) for d in rng.integers(0, 10, 9))
    account = "".join(str(d) for d in rng.integers(0, 10, int(rng.integers(8, 13))))
    page.text(0.08, t.micr_y - 0.05, f"|:{micr}|: {account}||' {int(rng.integers(100, 9999))}",
              0.11, face=MONO)  # fmt: skip


def _draw_amount_frame(page: _Page, spec: ChequeSpec) -> tuple[int, int, int, int]:
    """The printed box or underline and the currency sign; returns the box in pixels."""
    rng, t = page.rng, spec.template
    x0, y0, x1, y1 = t.amount
    jitter = rng.uniform(-0.015, 0.015, 2)
    left, top = page.px(x0 + jitter[0], y0 + jitter[1])
    right, bottom = page.px(x1 + jitter[0] + rng.uniform(-0.02, 0.0), y1 + jitter[1])
    pen = page.thickness()
    level = float(rng.uniform(0.6, 1.0))
    if t.amount_kind == "box":
        cv2.rectangle(page.ink, (left, top), (right, bottom), level, pen)
        if spec.double_frame:
            d = pen + max(2, page.dpi // 50)
            cv2.rectangle(page.ink, (left - d, top - d), (right + d, bottom + d), level, 1)
    else:
        page.line((left, bottom), (right, bottom), pen, level)
    if spec.amount_label:
        page.text(left / page.w, (top - 0.11 * page.dpi) / page.h, spec.amount_label, 0.06)
    sign_h = (bottom - top) * rng.uniform(0.45, 0.7) / page.dpi
    font = _font(max(6, round(sign_h * page.dpi)), spec.sign_face)
    width = ImageDraw.Draw(Image.new("L", (1, 1))).textbbox((0, 0), spec.currency, font=font)[2]
    gap = round(page.dpi * rng.uniform(0.03, 0.08))
    sign_top = (top + bottom) / 2 - sign_h * page.dpi * 0.65
    page.text((left - gap - width) / page.w, sign_top / page.h, spec.currency, sign_h,
              face=spec.sign_face)  # fmt: skip
    return left, top, right - left, bottom - top


def _draw_amount(page: _Page, box, written: str, images, labels) -> None:
    rng = page.rng
    left, top, width, height = box
    digit_h = round(height * rng.uniform(0.5, 0.68))
    strip = _handwriting(written, digit_h, images, labels, rng)
    room = width - round(height * 0.3)
    if strip.shape[1] > room:  # a long amount is written smaller, as people do
        scale = room / strip.shape[1]
        size = (room, max(4, round(strip.shape[0] * scale)))
        strip = cv2.resize(strip, size, interpolation=cv2.INTER_AREA)
    x = left + int(
        rng.integers(
            round(height * 0.12),
            max(round(height * 0.13), width - strip.shape[1] - round(height * 0.12)),
        )
    )  # noqa: E501
    y = top + (height - strip.shape[0]) // 2 + int(rng.integers(-height // 12, height // 12 + 1))
    page.paste(strip, x, y)


def _draw_handwritten_rest(page: _Page, t: Template, images, labels) -> None:
    rng = page.rng
    x0, x1, y = t.date
    line_y = round(y * page.h)
    height = round(page.dpi * rng.uniform(0.15, 0.22))
    date = f"{int(rng.integers(1, 29)):02d}/{int(rng.integers(1, 13)):02d}/{int(rng.integers(0, 100)):02d}"  # noqa: E501
    strip = _handwriting(date, height, images, labels, rng)
    left = round(x0 * page.w) + round(page.dpi * 0.05)
    strip = strip[:, : max(1, round(x1 * page.w) - left)]
    page.paste(strip, left, line_y - strip.shape[0])
    for (lx0, lx1, ly), share in ((t.payee, 0.8), (t.legal, 0.9), (t.memo, 0.6)):
        if rng.random() < 0.9:
            end = lx0 + (lx1 - lx0) * rng.uniform(0.4, share)
            _scribble(page, round(lx0 * page.w), round(end * page.w), round(ly * page.h) - 3,
                      round(page.dpi * rng.uniform(0.12, 0.2)))  # fmt: skip
    sx0, sx1, sy = t.signature
    _scribble(page, round((sx0 + 0.05) * page.w), round((sx1 - 0.05) * page.w),
              round(sy * page.h) - 2, round(page.dpi * rng.uniform(0.2, 0.3)))  # fmt: skip


def _security_pattern(page: _Page) -> None:
    """Faint guilloche-like waves behind everything, as printed on real cheque paper."""
    xs = np.arange(page.w, dtype=np.float32)
    period = page.dpi * page.rng.uniform(0.1, 0.3)
    for y in range(0, page.h, max(4, page.dpi // 12)):
        ys = y + page.dpi * 0.03 * np.sin(xs / period + y)
        points = np.stack([xs, ys], axis=1).round().astype(np.int32)
        cv2.polylines(page.ink, [np.ascontiguousarray(points[::4])], False, 0.12, 1, cv2.LINE_AA)


def _scan(page: _Page, spec: ChequeSpec, box) -> tuple[bytes, tuple[int, int, int, int]]:
    rng, ink = page.rng, page.ink
    h, w = ink.shape
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), spec.rotation, 1.0)
    if spec.rotation:
        ink = cv2.warpAffine(ink, matrix, (w, h), flags=cv2.INTER_LINEAR)
    if spec.blur:
        ink = cv2.GaussianBlur(ink, (0, 0), spec.blur * spec.dpi / 150)
    paper = np.full((h, w), rng.uniform(0.8, 0.97), np.float32)
    if spec.uneven_light:
        yy, xx = np.ogrid[0:h, 0:w]
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        paper -= rng.uniform(0.1, 0.3) * (((xx - cx) / w) ** 2 + ((yy - cy) / h) ** 2)
    page_light = paper * (1 - ink) + rng.uniform(0.03, 0.25) * ink
    page_light += rng.normal(0.0, spec.noise, (h, w)).astype(np.float32)
    if spec.speckles:
        spots = rng.random((h, w)) < spec.speckles
        page_light[spots] = rng.integers(0, 2, int(spots.sum())).astype(np.float32)
    scan = encode_scan(page_light, spec.jpeg_quality)
    left, top, width, height = box
    corners = np.array([[left, top, 1], [left + width, top, 1], [left, top + height, 1],
                        [left + width, top + height, 1]], np.float32) @ matrix.T  # fmt: skip
    x0, y0 = corners.min(axis=0)
    x1, y1 = corners.max(axis=0)
    return scan, (round(x0), round(y0), round(x1 - x0), round(y1 - y0))


def render_cheque(spec: ChequeSpec, images: np.ndarray, labels: np.ndarray,
                  rng: np.random.Generator) -> SyntheticCheque:  # fmt: skip
    """Draw one cheque front with a handwritten amount made of digits from `images`/`labels`."""
    page = _Page(spec, rng)
    if spec.security_pattern:
        _security_pattern(page)
    _draw_printed(page, spec.template, rng)
    _draw_handwritten_rest(page, spec.template, images, labels)
    box = _draw_amount_frame(page, spec)
    amount = random_amount(rng, spec.style)
    written = format_amount(amount, spec.style)
    _draw_amount(page, box, written, images, labels)
    image, scanned_box = _scan(page, spec, box)
    return SyntheticCheque(image, amount, written, scanned_box, spec)


def cheques(count: int, images: np.ndarray, labels: np.ndarray, seed: int) -> list:
    """`count` random cheques (every template, currency, style and scan effect)."""
    rng = np.random.default_rng(seed)
    return [render_cheque(random_spec(rng), images, labels, rng) for _ in range(count)]
