"""Document-type definitions and the page decoder the cheque reader uses."""

import io

import numpy as np
import pytest
from PIL import Image

from recognition.decode import decode_page
from recognition.doctypes import (
    CHEQUE,
    DocumentTypeError,
    DocumentTypes,
    parse_document_type,
)


def test_parse_fills_defaults_and_keeps_order():
    doc_type = parse_document_type(
        {"name": "slip", "fields": [
            {"name": "account", "region": [0.1, 0.1, 0.5, 0.2]},
            {"name": "branch", "kind": "digit", "region": [0.7, 0.1, 0.1, 0.2]},
        ], "primary": "branch"}
    )  # fmt: skip
    assert [f.name for f in doc_type.fields] == ["account", "branch"]
    assert doc_type.fields[0].kind == "digits" and doc_type.primary == "branch"


@pytest.mark.parametrize(
    "value, fragment",
    [
        ([], "object"),
        ({"name": "field", "fields": [{"name": "a", "region": [0, 0, 1, 1]}]}, "name"),
        ({"name": "x", "fields": [{"name": "a", "region": [0, 0, 1, 1]}] * 2}, "own"),
        ({"name": "x", "fields": [{"name": "a", "region": [0, 0, "w", 1]}]}, "numbers"),
        ({"name": "x", "fields": [{"name": "a", "region": [0, 0, 0, 1]}]}, "> 0"),
        ({"name": "x", "fields": [{"name": "a", "locate": "anywhere"}]}, "locate"),
        ({"name": "x", "primary": "b", "fields": [{"name": "a", "region": [0, 0, 1, 1]}]},
         "primary"),
    ],
)  # fmt: skip
def test_parse_refuses_with_the_reason(value, fragment):
    with pytest.raises(DocumentTypeError, match=fragment):
        parse_document_type(value)


def test_folder_is_reread_when_it_changes(tmp_path):
    types = DocumentTypes(tmp_path)
    assert [t.name for t in types.all()] == ["cheque"]
    (tmp_path / "a.yml").write_text("name: form_a\nfields:\n  - {name: n, region: [0, 0, 1, 1]}\n")
    assert types.get("form_a") is not None
    (tmp_path / "a.yml").unlink()
    assert types.get("form_a") is None and types.get("cheque") is CHEQUE
    with pytest.raises(DocumentTypeError, match="built in"):
        types.register(CHEQUE)


def _jpeg(width: int, height: int) -> bytes:
    pixels = np.full((height, width), 230, np.uint8)
    pixels[height // 2 - 2 : height // 2 + 2, width // 4 : 3 * width // 4] = 20
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=90)
    return out.getvalue()


def test_decode_page_scales_large_jpegs_down_and_says_by_how_much():
    page, scale = decode_page(_jpeg(2400, 1100), min_width=800)
    assert page.dtype == np.uint8 and page.shape == (550, 1200) and scale == 2.0
    assert page[275, 600] < 60 and page[100, 100] > 200  # the line survives, the paper too
    page, scale = decode_page(_jpeg(900, 400), min_width=800)
    assert page.shape == (400, 900) and scale == 1.0
