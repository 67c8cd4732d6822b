"""Typed errors for images the core cannot read.

Callers map them to user-facing answers (the API to 4xx JSON, the worker to a failed document),
so each carries a stable machine-readable `code` and a message that says what was wrong.
"""


class ImageError(ValueError):
    """Base class: the input is not a usable image. Never a bug in the platform."""

    code = "invalid_image"


class UndecodableImage(ImageError):
    """The bytes are not an image in a supported format (PNG, JPEG, TIFF, BMP, GIF, WebP)."""

    code = "undecodable_image"


class TruncatedImage(UndecodableImage):
    """The header was readable but the pixel data ends early."""

    code = "truncated_image"


class InvalidDataURL(ImageError):
    """A `data:image/...;base64,` URL that is malformed or not base64."""

    code = "invalid_data_url"


class EmptyImage(ImageError):
    """The image decoded but holds no ink: blank canvas, uniform scan."""

    code = "empty_image"


class ImageTooLarge(ImageError):
    """More bytes or pixels than the configured limit (guards against decompression bombs)."""

    code = "image_too_large"


class NoDigits(EmptyImage):
    """The image holds ink, but none of it is a digit: only printed lines, dots or dashes."""

    code = "no_digits"
