"""Request payloads to segmented fields, and readings to JSON — no HTTP here."""

from pydantic import ValidationError

from api.errors import InvalidRequest
from api.predict.schemas import DrawingRequest, prediction_json
from recognition import LAYOUTS, FieldReading, decode_data_url, segment_image
from recognition.segment import Segmentation


def check_layout(layout: str | None) -> str:
    if layout is None or layout == "":
        return "auto"
    if layout not in LAYOUTS:
        raise InvalidRequest(f"layout: must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    return layout


def parse_drawing(body: bytes, layout: str | None) -> DrawingRequest:
    """The JSON body through its request model; a `?layout=` query wins over the body's."""
    try:
        request = DrawingRequest.model_validate_json(body)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in ("body", *error["loc"]))
        raise InvalidRequest(
            f'{where}: {error["msg"]}, e.g. {{"image": "data:image/png;base64,..."}}'
        ) from exc
    if layout is not None:
        request.layout = check_layout(layout)
    return request


def drawing_field(body: bytes, layout: str | None, max_bytes: int, max_pixels: int) -> Segmentation:
    """A `{"image": "data:image/...;base64,...", "layout"?}` JSON body, segmented as a canvas
    drawing (no printed lines to look for)."""
    request = parse_drawing(body, layout)
    data = decode_data_url(request.image, max_bytes)
    return segment_image(data, request.layout, max_pixels, drawn=True)


def upload_field(data: bytes, layout: str, max_pixels: int) -> Segmentation:
    return segment_image(data, layout, max_pixels)


def reading_json(reading: FieldReading, model_version: str) -> bytes:
    return prediction_json(reading.as_dict(), model_version)
