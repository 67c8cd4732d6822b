"""Typed errors for images the core cannot read.

Callers map them to user-facing answers (the API to 4xx JSON, the worker to a failed document),
so each carries a stable machine-readable `code` and a message that says what was wrong.
"""


class ImageError(ValueError):
    """Base class: the input is not a usable image. Never a bug in the platform."""

    code = "invalid_image"

    def __init_subclass__(cls, code: str | None = None, **kwargs):
        super().__init_subclass__(**kwargs)
        if code is not None:
            cls.code = code


class UndecodableImage(ImageError, code="undecodable_image"):
    """The bytes are not an image in a supported format (PNG, JPEG, TIFF, BMP, GIF, WebP)."""


class TruncatedImage(UndecodableImage, code="truncated_image"):
    """The header was readable but the pixel data ends early."""


class InvalidDataURL(ImageError, code="invalid_data_url"):
    """A `data:image/...;base64,` URL that is malformed or not base64."""


class EmptyImage(ImageError, code="empty_image"):
    """The image decoded but holds no ink: blank canvas, uniform scan."""


class ImageTooLarge(ImageError, code="image_too_large"):
    """More bytes or pixels than the configured limit (guards against decompression bombs)."""


class NoDigits(EmptyImage, code="no_digits"):
    """The image holds ink, but none of it is a digit: only printed lines, dots or dashes."""
