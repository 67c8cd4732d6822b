"""Document types for the API: registration, and which reader a `layout` value names."""

import json

from api.errors import ApiError, InvalidRequest
from api.predict.schemas import prediction_json
from recognition import LAYOUTS
from recognition.doctypes import (
    BUILTIN,
    DocumentType,
    DocumentTypeError,
    DocumentTypes,
    parse_document_type,
    prepare_document,
    read_prepared,
)


def unknown_document_type(name: str) -> ApiError:
    return ApiError(404, "unknown_document_type", f"no document type named {name!r}")


def register(types: DocumentTypes, name: str, body: bytes) -> tuple[DocumentType, bool]:
    """Validate a JSON definition and write it; (the type, whether it replaced one)."""
    if name in BUILTIN:
        raise ApiError(409, "builtin_document_type", f"{name} is built in and cannot be replaced")
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"the body is not valid JSON: {exc}") from exc
    if isinstance(value, dict):
        value.setdefault("name", name)
    try:
        doc_type = parse_document_type(value)
        if doc_type.name != name:
            raise DocumentTypeError(f"name: the body says {doc_type.name!r}, the path {name!r}")
        return doc_type, types.register(doc_type)
    except DocumentTypeError as exc:
        raise InvalidRequest(str(exc)) from exc


def document_type_for(layout: str | None, types: DocumentTypes | None) -> DocumentType | None:
    """The document type a `layout` names; None for the field layouts (auto, digit, field)."""
    if not layout or layout in LAYOUTS:
        return None
    found = types.get(layout) if types is not None else BUILTIN.get(layout)
    if found is None:
        raise InvalidRequest(
            f"layout: must be one of {', '.join(LAYOUTS)}, cheque or a registered document "
            f"type, got {layout!r}"
        )
    return found


def read_page_json(data: bytes, doc_type: DocumentType, recognizer, max_pixels: int) -> bytes:
    """A whole page read as `doc_type`: one entry per field, the primary field's text as
    `text`. Image work and a small model call: run it in the threadpool."""
    reading = read_prepared([prepare_document(data, doc_type, max_pixels)], recognizer)[0]
    return prediction_json(reading.as_dict(), recognizer.version)
