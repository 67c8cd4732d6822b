"""Document types: named field regions on a page, each read by the field reader.

A deployment describes the forms it receives in small JSON or YAML files (one type a file) in a
folder named by a setting, or registers them through the admin API, which writes the same files:

    name: account_form
    description: Account-opening form, A4 portrait
    primary: account_number          # whose text is the document's `text` (default: the first)
    fields:
      - name: account_number
        kind: digits                 # digits | amount | digit
        region: [0.55, 0.20, 0.40, 0.06]   # x, y, width, height as shares of the page
      - name: branch
        kind: digit
        region: [0.10, 0.20, 0.08, 0.06]

`cheque` is built in: its one field, `amount`, has no fixed region — the courtesy-amount box is
found on the page (recognition.cheque). `layout=<type name>` reads every field of the type; the
answer carries one entry per field, with the region it read in page pixels.
"""

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recognition.cheque import (
    AMOUNT_BOX_NOT_FOUND,
    AMOUNT_FORMAT,
    amount_crop,
    amount_format_problem,
    locate_amount,
)
from recognition.decode import DEFAULT_MAX_PIXELS, decode_page
from recognition.errors import EmptyImage
from recognition.fields import Box, FieldReading, find_digits, read_segmentations

KINDS = ("amount", "digits", "digit")
# The field reader's layout for each kind of field.
KIND_LAYOUT = {"amount": "field", "digits": "field", "digit": "digit"}
LOCATORS = ("courtesy_amount",)
NAME = re.compile(r"^[a-z][a-z0-9_]{0,15}$")
RESERVED = ("auto", "digit", "field")
MAX_FIELDS = 32
# Pages are decoded at least this wide: ~130 dpi on a cheque, plenty for digits normalised to
# 20 px (a JPEG decodes straight at 1/2, 1/4 or 1/8 scale when it is much wider).
PAGE_MIN_WIDTH = 800
# A located amount is read from a cut this many pixels tall (shrunk when taller): its digits are
# 35-55% of it, ~25-40 px, and the field reader normalises digits to 20 px. The segmenter's cost
# grows with the pixels it is given (72 reads as well as the full cut on tuning cheques; 48-64
# flag more for review).
READ_HEIGHT = 72
DEFINITION_SUFFIXES = (".json", ".yaml", ".yml")


class DocumentTypeError(ValueError):
    """A document-type definition that cannot be used (the message says why)."""


@dataclass(frozen=True, slots=True)
class FieldRegion:
    name: str
    kind: str
    region: tuple[float, float, float, float] | None = None  # shares of the page: x, y, w, h
    locate: str | None = None  # or found on the page by a locator

    def as_dict(self) -> dict:
        out: dict = {"name": self.name, "kind": self.kind}
        if self.region is not None:
            out["region"] = list(self.region)
        if self.locate is not None:
            out["locate"] = self.locate
        return out


@dataclass(frozen=True, slots=True)
class DocumentType:
    name: str
    fields: tuple[FieldRegion, ...]
    primary: str
    description: str = ""
    builtin: bool = False

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "primary": self.primary,
            "builtin": self.builtin,
            "fields": [f.as_dict() for f in self.fields],
        }


CHEQUE = DocumentType(
    name="cheque",
    fields=(FieldRegion("amount", "amount", locate="courtesy_amount"),),
    primary="amount",
    description="A cheque front: the courtesy-amount box is found beside its currency sign.",
    builtin=True,
)
BUILTIN = {CHEQUE.name: CHEQUE}


def _region(value, where: str) -> tuple[float, float, float, float]:
    if not isinstance(value, list | tuple) or len(value) != 4:
        raise DocumentTypeError(f"{where}.region: give [x, y, width, height] as page shares")
    try:
        x, y, w, h = (float(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise DocumentTypeError(f"{where}.region: four numbers between 0 and 1") from exc
    if not all(map(math.isfinite, (x, y, w, h))) or min(x, y) < 0 or min(w, h) <= 0:
        raise DocumentTypeError(f"{where}.region: x, y >= 0 and width, height > 0")
    if x + w > 1.0 + 1e-9 or y + h > 1.0 + 1e-9:
        raise DocumentTypeError(f"{where}.region: the region must lie on the page (<= 1)")
    return x, y, w, h


def _field(value, index: int) -> FieldRegion:
    where = f"fields[{index}]"
    if not isinstance(value, dict):
        raise DocumentTypeError(f"{where}: an object with name, kind and region")
    name, kind = value.get("name"), value.get("kind", "digits")
    if not isinstance(name, str) or not NAME.match(name):
        raise DocumentTypeError(f"{where}.name: 1-16 characters: a-z, 0-9, _ (a letter first)")
    if kind not in KINDS:
        raise DocumentTypeError(f"{where}.kind: one of {', '.join(KINDS)}")
    locate = value.get("locate")
    if locate is not None:
        if locate not in LOCATORS or "region" in value:
            raise DocumentTypeError(f"{where}.locate: one of {', '.join(LOCATORS)}, no region")
        return FieldRegion(name, kind, locate=locate)
    return FieldRegion(name, kind, region=_region(value.get("region"), where))


def parse_document_type(value) -> DocumentType:
    """A definition (parsed JSON or YAML) -> DocumentType; DocumentTypeError says what is wrong."""
    if not isinstance(value, dict):
        raise DocumentTypeError("a document type is an object with name and fields")
    name = value.get("name")
    if not isinstance(name, str) or not NAME.match(name) or name in RESERVED:
        raise DocumentTypeError(
            "name: 1-16 characters: a-z, 0-9, _ (a letter first), not auto, digit or field"
        )
    raw_fields = value.get("fields")
    if not isinstance(raw_fields, list) or not 1 <= len(raw_fields) <= MAX_FIELDS:
        raise DocumentTypeError(f"fields: a list of 1 to {MAX_FIELDS} fields")
    fields = tuple(_field(f, i) for i, f in enumerate(raw_fields))
    names = [f.name for f in fields]
    if len(set(names)) != len(names):
        raise DocumentTypeError("fields: every field needs a name of its own")
    primary = value.get("primary", names[0])
    if primary not in names:
        raise DocumentTypeError(f"primary: one of the fields ({', '.join(names)})")
    description = value.get("description", "")
    if not isinstance(description, str) or len(description) > 500:
        raise DocumentTypeError("description: a string of at most 500 characters")
    return DocumentType(name, fields, primary, description)


def _parse_file(path: Path) -> DocumentType:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        value = json.loads(text)
    else:
        import yaml  # only deployments with YAML definitions need PyYAML

        value = yaml.safe_load(text)
    return parse_document_type(value)


class DocumentTypes:
    """The built-in types plus the definitions in `folder`, re-read when the folder changes
    (a type registered through the API by another process shows up without a restart)."""

    def __init__(self, folder: Path | None):
        self.folder = Path(folder) if folder else None
        self._stamp: tuple | None = None
        self._types: dict[str, DocumentType] = dict(BUILTIN)
        self.errors: dict[str, str] = {}

    def _current_stamp(self) -> tuple:
        if self.folder is None or not self.folder.is_dir():
            return ()
        return tuple(
            sorted(
                (p.name, p.stat().st_mtime_ns)
                for p in self.folder.iterdir()
                if p.suffix in DEFINITION_SUFFIXES
            )  # fmt: skip
        )

    def _refresh(self) -> None:
        stamp = self._current_stamp()
        if stamp == self._stamp:
            return
        types, errors = dict(BUILTIN), {}
        for name, _ in stamp:
            try:
                doc_type = _parse_file(self.folder / name)
            except (OSError, ValueError, DocumentTypeError) as exc:
                errors[name] = str(exc)  # a broken file must not take the others down
                continue
            types.setdefault(doc_type.name, doc_type)
        self._types, self.errors, self._stamp = types, errors, stamp

    def get(self, name: str) -> DocumentType | None:
        self._refresh()
        return self._types.get(name)

    def all(self) -> list[DocumentType]:
        self._refresh()
        return sorted(self._types.values(), key=lambda t: t.name)

    def register(self, doc_type: DocumentType) -> bool:
        """Write the type's definition file; True if it replaced an existing definition."""
        if doc_type.name in BUILTIN:
            raise DocumentTypeError(f"{doc_type.name} is built in and cannot be redefined")
        if self.folder is None:
            raise DocumentTypeError("no document-type folder is configured")
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{doc_type.name}.json"
        existed = self.get(doc_type.name) is not None
        body = {k: v for k, v in doc_type.as_dict().items() if k != "builtin"}
        temporary = path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
        temporary.replace(path)  # atomic: readers never see half a file
        return existed


@dataclass(frozen=True, slots=True)
class _Plan:
    """One field of one page, ready for the model: its segmentation (None when there is nothing
    to read) and where it was cut from (decoded pixels)."""

    field: FieldRegion
    box: Box | None
    segmentation: object | None
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PreparedDocument:
    """A page cut into its fields' segmentations: the image work, done before the model."""

    doc_type: DocumentType
    width: int  # the page as uploaded, in pixels
    height: int
    scale: float  # uploaded pixels per decoded pixel
    plans: tuple[_Plan, ...]


def _region_crop(page: np.ndarray, region) -> tuple[Box, np.ndarray]:
    height, width = page.shape
    x, y, w, h = region
    x0, y0 = min(width - 1, round(x * width)), min(height - 1, round(y * height))
    x1, y1 = max(x0 + 1, round((x + w) * width)), max(y0 + 1, round((y + h) * height))
    crop = page[y0:y1, x0:x1].astype(np.float32) / 255.0
    return Box(x0, y0, x1 - x0, y1 - y0), crop


def _plan(page: np.ndarray, field: FieldRegion) -> _Plan:
    options = {}
    if field.locate is not None:
        found = locate_amount(page)
        if found is None:
            return _Plan(field, None, None, (AMOUNT_BOX_NOT_FOUND,))
        box, crop = found.box, amount_crop(page, found, READ_HEIGHT)
        # Already straightened by the box's measured angle; boxes in page pixels.
        options = {"deskew": False, "pixel_scale": box.width / crop.shape[1]}
    else:
        box, crop = _region_crop(page, field.region)
    try:
        segmentation = find_digits(crop, KIND_LAYOUT[field.kind], **options)
    except EmptyImage as exc:  # an empty box or region: nothing to read, someone must look
        return _Plan(field, box, None, (exc.code,))
    return _Plan(field, box, segmentation)


def prepare_page(page: np.ndarray, scale: float, doc_type: DocumentType) -> PreparedDocument:
    """A decoded page (uint8, dark ink on light paper) -> its fields' segmentations."""
    height, width = page.shape
    return PreparedDocument(
        doc_type,
        round(width * scale),
        round(height * scale),
        scale,
        tuple(_plan(page, field) for field in doc_type.fields),
    )


def prepare_document(
    data: bytes, doc_type: DocumentType, max_pixels: int = DEFAULT_MAX_PIXELS
) -> PreparedDocument:
    """Image bytes -> PreparedDocument. Raises ImageError subclasses for unreadable files."""
    page, scale = decode_page(data, max_pixels, PAGE_MIN_WIDTH)
    return prepare_page(page, scale, doc_type)


@dataclass(frozen=True, slots=True)
class FieldResult:
    name: str
    kind: str
    reading: FieldReading | None
    box: Box | None  # the region read, in the uploaded page's pixels
    needs_review: bool
    review_reasons: tuple[str, ...]
    origin: tuple[int, int]  # where the region starts, in decoded pixels
    scale: float

    @property
    def text(self) -> str:
        return self.reading.text if self.reading else ""

    @property
    def confidence(self) -> float:
        return self.reading.confidence if self.reading else 0.0

    def _page_box(self, box: dict) -> dict:
        """A box in the region's pixels -> the uploaded page's pixels."""
        s, (ox, oy) = self.scale, self.origin
        return {
            "x": round((ox + box["x"]) * s),
            "y": round((oy + box["y"]) * s),
            "width": round(box["width"] * s),
            "height": round(box["height"] * s),
        }

    def as_dict(self) -> dict:
        body = self.reading.as_dict() if self.reading else {"text": "", "digits": []}
        for item in (*body.get("digits", []), *body.get("separators", [])):
            item["box"] = self._page_box(item["box"])
        body.update(
            kind=self.kind,
            confidence=self.confidence,
            needs_review=self.needs_review,
            review_reasons=list(self.review_reasons),
            box=_box_dict(self.box),
        )
        return body


def _box_dict(box: Box | None) -> dict | None:
    if box is None:
        return None
    return {"x": box.x, "y": box.y, "width": box.width, "height": box.height}


@dataclass(frozen=True, slots=True)
class DocumentReading:
    layout: str
    fields: tuple[FieldResult, ...]
    primary: str
    width: int
    height: int

    @property
    def main(self) -> FieldResult:
        return next(f for f in self.fields if f.name == self.primary)

    @property
    def text(self) -> str:
        return self.main.text

    @property
    def confidence(self) -> float:
        """The chance every field is right: the product of the fields' confidences."""
        return math.prod(f.confidence for f in self.fields)

    @property
    def needs_review(self) -> bool:
        return any(f.needs_review for f in self.fields)

    @property
    def review_reasons(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r for f in self.fields for r in f.review_reasons))

    def as_dict(self) -> dict:
        fields = {f.name: f.as_dict() for f in self.fields}
        return {
            "layout": self.layout,
            "text": self.text,
            "confidence": self.confidence,
            "needs_review": self.needs_review,
            "review_reasons": list(self.review_reasons),
            "digits": fields[self.primary]["digits"],
            "fields": fields,
            "page": {"width": self.width, "height": self.height},
        }


def _result(plan: _Plan, reading: FieldReading | None, doc: PreparedDocument) -> FieldResult:
    reasons = plan.reasons + (reading.review_reasons if reading else ())
    if plan.field.kind == "amount" and reading is not None:
        if amount_format_problem(len(reading.digits), reading.separators):
            reasons += (AMOUNT_FORMAT,)
    box = plan.box
    page_box = None
    if box is not None:
        s = doc.scale
        page_box = Box(round(box.x * s), round(box.y * s), round(box.width * s),
                       round(box.height * s))  # fmt: skip
    return FieldResult(
        name=plan.field.name,
        kind=plan.field.kind,
        reading=reading,
        box=page_box,
        needs_review=bool(reasons) or reading is None,
        review_reasons=reasons,
        origin=(box.x, box.y) if box else (0, 0),
        scale=doc.scale,
    )


def read_prepared(docs: list[PreparedDocument], recognizer) -> list[DocumentReading]:
    """Read the fields of many prepared pages with ONE model call."""
    segmentations = [p.segmentation for d in docs for p in d.plans if p.segmentation is not None]
    readings = iter(read_segmentations(segmentations, recognizer))
    out = []
    for doc in docs:
        results = tuple(
            _result(plan, next(readings) if plan.segmentation is not None else None, doc)
            for plan in doc.plans
        )
        out.append(
            DocumentReading(doc.doc_type.name, results, doc.doc_type.primary, doc.width, doc.height)
        )
    return out


def read_document(data: bytes, doc_type: DocumentType, recognizer,
                  max_pixels: int = DEFAULT_MAX_PIXELS) -> DocumentReading:  # fmt: skip
    """One page: bytes in, one entry per field out."""
    return read_prepared([prepare_document(data, doc_type, max_pixels)], recognizer)[0]
