"""Bytes in, grayscale pixels out.

Reads PNG, JPEG, TIFF (first page), BMP, GIF (first frame) and WebP, and `data:image/...;base64,`
URLs as sent by a browser canvas. Transparency is composited onto a background that contrasts
with the ink, so a canvas PNG with dark strokes on a transparent background reads as dark ink on
white paper, and light strokes on transparency as light ink on black.

Decode budget: what an image may cost is decided from its header, before any pixel is decoded.
`max_pixels` (8 MP by default: a whole cheque scanned at 600 dpi is ~4,000 x 1,800 = 7.2 MP,
and a field needs far less) bounds the pixels decoded; 16-bit and float images cost four times
as much memory a pixel, so they get a quarter of it; a JPEG over the budget is decoded at 1/2,
1/4 or 1/8 scale (draft mode, done by libjpeg itself) instead of refused. Animated or multi-page
files decode their first frame only.
"""

import base64
import binascii
import ctypes
import functools
import io
import re
import struct
import warnings

import cv2
import numpy as np
from PIL import Image, ImageChops, UnidentifiedImageError

from recognition.errors import (
    ImageTooLarge,
    InvalidDataURL,
    TruncatedImage,
    UndecodableImage,
)

SUPPORTED_FORMATS = ("PNG", "JPEG", "TIFF", "BMP", "GIF", "WEBP")
DEFAULT_MAX_PIXELS = 8_000_000
# Modes that hold more than a byte a channel: their budget is max_pixels / WIDE_COST.
WIDE_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
WIDE_COST = 4
# libjpeg decodes at 1/1, 1/2, 1/4 or 1/8 scale: a JPEG may have up to 64x the budget.
JPEG_MAX_DRAFT_SCALE = 8
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# PNG colour types libspng decodes here: grey, RGB, RGBA (8 bits a channel). Palette, grey +
# alpha, 16-bit and tRNS transparency go through Pillow, which handles every case.
SPNG_COLOUR_TYPES = (0, 2, 6)

try:  # libspng: ~3x faster than Pillow on the canvas's RGBA PNGs (docs/benchmarks.md)
    import pyspng
except ImportError:  # optional: Pillow decodes everything too
    pyspng = None
try:  # libdeflate: inflates a PNG's pixel stream ~7x faster than the zlib libspng is built with
    import deflate
except ImportError:  # optional: libspng inflates by itself
    deflate = None

# Channels a pixel of each colour type libspng decodes here (8 bits a channel).
PNG_CHANNELS = {0: 1, 2: 3, 6: 4}
# Stored (uncompressed) deflate blocks hold at most this many bytes each.
STORED_BLOCK = 65535
# mallopt(3) parameters (glibc): keep this much freed heap; serve buffers under this from it.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
KEEP_FREED_HEAP, MMAP_THRESHOLD = 32 << 20, 8 << 20
PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"

_DATA_URL = re.compile(r"^data:(image/[a-z0-9.+-]+)?(;[^,]*)?,", re.IGNORECASE)


def decode_data_url(url: str, max_bytes: int | None = None) -> bytes:
    """The bytes inside a `data:image/...;base64,` URL."""
    match = _DATA_URL.match(url.strip()[:200])
    if not match:
        raise InvalidDataURL("expected a data URL of the form 'data:image/png;base64,...'")
    if match.group(1) is None or ";base64" not in (match.group(2) or "").lower():
        raise InvalidDataURL("the data URL must declare an image type and base64 encoding")
    payload = url.strip()[match.end() :]
    if max_bytes is not None and len(payload) * 3 // 4 > max_bytes:
        raise ImageTooLarge(f"the image is larger than the limit of {max_bytes} bytes")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidDataURL("the data URL's payload is not valid base64") from exc


def check_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """Width and height of a supported image within the pixel limit, from its header alone.

    Cheap enough for intake: pixel data that later turns out damaged is reported by
    `decode_image`.
    """
    if data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR" and len(data) >= 25:
        # PNG, the common case, straight from its IHDR chunk: ~50x cheaper than opening it.
        size = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        _check_size(*size, max_pixels // WIDE_COST if data[24] == 16 else max_pixels)
        return size
    frame = _jpeg_frame(data)
    if frame and frame[:2] in ((1, 8), (3, 8)) and 0 < frame[2] * frame[3] <= max_pixels:
        # A whole 8-bit grey or colour JPEG within the budget, from its frame header: ~10x
        # cheaper than Pillow's open (~0.1 ms). Anything else (over the budget, where a reduced
        # scale may still fit) is opened as before.
        return frame[2], frame[3]
    with _open(data, max_pixels) as image:
        _fit_budget(image, max_pixels)
        return image.size


def decode_image(
    data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, min_side: int | None = None
) -> np.ndarray:
    """Decode image bytes to float32 luminance in [0, 1] (0 = black), shape (height, width).

    With `min_side`, a large image is shrunk by a whole factor (box averaging, in Pillow) as long
    as its shorter side stays at least `min_side`: a digit needs far fewer pixels than a canvas
    or a scan has, and everything after decoding costs in proportion to the pixels.
    """
    pixels = decode_png(data, max_pixels)
    if pixels is not None:
        return _array_luminance(pixels, _factor(pixels.shape[1], pixels.shape[0], min_side))
    pixels = _grey_jpeg(data, max_pixels)
    if pixels is not None:  # `_luminance` of Pillow's "L" image, to the bit
        factor = _factor(pixels.shape[1], pixels.shape[0], min_side)
        channel = Image.fromarray(pixels).reduce(factor) if factor > 1 else pixels
        return np.asarray(channel, dtype=np.float32) / 255.0
    image = _open(data, max_pixels)
    # Checked on the header, before any pixel is decoded: this is what stops decompression bombs.
    if draft := _fit_budget(image, max_pixels):
        image.draft(image.mode, draft)
    _load(image)
    return _luminance(image, _factor(*image.size, min_side))


def _factor(width: int, height: int, min_side: int | None) -> int:
    """The whole shrink factor that keeps the shorter side at least `min_side`."""
    return min(width, height) // min_side if min_side and min(width, height) >= 2 * min_side else 1


def decode_png(data: bytes, max_pixels: int) -> np.ndarray | None:
    """An 8-bit grey, RGB or RGBA PNG decoded by libspng, within the budget (checked on the
    header first); None for anything else, and for damage, which Pillow then names."""
    if pyspng is None or data[:8] != PNG_SIGNATURE or data[12:16] != b"IHDR" or len(data) < 33:
        return None
    if data[24] != 8 or data[25] not in SPNG_COLOUR_TYPES:
        return None
    idat = data.find(b"IDAT", 33)
    if idat < 0 or data.find(b"tRNS", 33, idat) >= 0:
        return None
    _check_size(int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big"), max_pixels)
    try:
        return pyspng.load(_inflated(data) or data)
    except (RuntimeError, ValueError):
        return None


def _inflated(data: bytes) -> bytes | None:
    """The same PNG with its pixel stream inflated by libdeflate and stored uncompressed, for
    libspng to unfilter: zlib's inflate was ~0.5 ms of a canvas drawing's ~0.7 ms decode, and
    libspng has no other inflater. Only a plain PNG (not interlaced) whose chunks' checksums and
    pixel stream are all intact; None for anything else, which libspng then reads as sent (and
    reports as it always did). Ancillary chunks are left out: none of them changes the 8-bit
    grey, RGB or RGBA pixels libspng returns (no gamma or colour profile is applied)."""
    if deflate is None or data[28] != 0:
        return None
    _keep_freed_heap()
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    size = height * (1 + width * PNG_CHANNELS[data[25]])  # a filter byte starts each row
    stream = _idat_stream(data)
    try:
        raw = memoryview(deflate.zlib_decompress(stream, size)) if stream else None
    except deflate.DeflateError:
        return None
    if raw is None or len(raw) != size:
        return None
    # One IDAT chunk: a zlib header (deflate, 32 KiB window), stored blocks, the Adler-32.
    blocks = -(-size // STORED_BLOCK)
    parts = [data[:33], (2 + 5 * blocks + size + 4).to_bytes(4, "big"), b"IDAT", b"\x78\x01"]
    for start in range(0, size, STORED_BLOCK):
        block = raw[start : start + STORED_BLOCK]
        last = start + STORED_BLOCK >= size
        parts += [struct.pack("<BHH", last, len(block), len(block) ^ 0xFFFF), block]
    parts.append(deflate.adler32(raw).to_bytes(4, "big"))
    crc = 0
    for part in parts[2:]:  # the chunk's type and data, without copying them into one first
        crc = deflate.crc32(part, crc)
    return b"".join((*parts, crc.to_bytes(4, "big"), PNG_IEND))


@functools.cache
def _keep_freed_heap() -> None:
    """glibc hands the top of its heap back to the OS once 128 KiB+ lies free there, so the
    ~300 KB buffers `_inflated` and libspng take and free (a canvas's inflated rows, their copy
    in a PNG, libspng's own copy) came back as fresh pages on every request: ~200 page faults,
    which cost more than libdeflate saves. Up to KEEP_FREED_HEAP of freed heap is kept instead,
    and buffers under MMAP_THRESHOLD come from the heap. Once, on first use, not at import;
    nothing to do where the C library is not glibc."""
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(M_TRIM_THRESHOLD, KEEP_FREED_HEAP)
        libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    except (OSError, AttributeError):
        pass


def _idat_stream(data: bytes) -> bytes | None:
    """The PNG's IDAT chunks joined (its zlib stream), each chunk's CRC checked; None if a chunk
    is damaged, cut short or the stream is missing."""
    at, stream = 33, []  # past the signature and IHDR
    while at + 12 <= len(data):
        length = int.from_bytes(data[at : at + 4], "big")
        end = at + 12 + length
        if end > len(data):
            return None
        kind = data[at + 4 : at + 8]
        crc = deflate.crc32(data[at + 8 : end - 4], deflate.crc32(kind))
        if crc != int.from_bytes(data[end - 4 : end], "big"):
            return None
        if kind == b"IDAT":
            stream.append(data[at + 8 : end - 4])
        elif kind == b"IEND":
            return b"".join(stream) or None
        at = end
    return None


JPEG_START, JPEG_END = b"\xff\xd8\xff", b"\xff\xd9"
# libjpeg-turbo decodes straight at 1/2, 1/4 or 1/8 scale (DCT scaling); OpenCV asks for it
# without Pillow's Python-level read loop (~30% less CPU a cheque). EXIF orientation is ignored,
# as Pillow does.
_REDUCED = {
    1: cv2.IMREAD_GRAYSCALE,
    2: cv2.IMREAD_REDUCED_GRAYSCALE_2,
    4: cv2.IMREAD_REDUCED_GRAYSCALE_4,
    8: cv2.IMREAD_REDUCED_GRAYSCALE_8,
}


def _jpeg_scale(width: int, height: int, max_pixels: int, min_width: int) -> int:
    """The largest DCT scale that keeps the page at least `min_width` wide (Pillow's draft
    rule), and at least the one that brings it within the pixel budget."""
    wanted = max(1, width // min_width) if min_width else 1
    scale = next(s for s in (8, 4, 2, 1) if s <= wanted)
    for budget_scale in (1, 2, 4, 8):
        if -(-width // budget_scale) * -(-height // budget_scale) <= max_pixels:
            return max(scale, budget_scale)
    return 8  # check_image has refused anything over budget even at 1/8


def decode_page(
    data: bytes,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_width: int = 0,
    size: tuple[int, int] | None = None,
) -> tuple[np.ndarray, float]:
    """A whole document page (a cheque, a form, a field) as uint8 luminance (0 = black),
    shrunk while it stays at least `min_width` pixels wide, and how many upload pixels one
    returned pixel spans. The scanners' formats take the cheap way, to the same pixels as
    `_pillow_page`: a whole JPEG decoded by OpenCV straight at the reduced DCT scale, a grey PNG
    by libspng (~20% less CPU). Anything else, or a file OpenCV cannot read whole, goes through
    Pillow (which names what is wrong with a damaged file). `size`: the image's (width, height)
    as `check_image(data, max_pixels)` gave it, when the caller has it (a JPEG's header is
    not parsed twice)."""
    if data[:8] == PNG_SIGNATURE:
        return _grey_png(data, max_pixels, min_width) or _pillow_page(data, max_pixels, min_width)
    frame = _jpeg_frame(data)
    if frame is None or frame[0] not in (1, 3):
        # Not a JPEG, cut short, or CMYK. A colour scan's grey is libjpeg's either way (its
        # luminance channel, as Pillow's draft gives it): ~40% less CPU than through Pillow.
        return _pillow_page(data, max_pixels, min_width)
    # The header alone: refuses decode bombs.
    width, height = size or check_image(data, max_pixels)
    scale = _jpeg_scale(width, height, max_pixels, min_width)
    flags = _REDUCED[scale] | cv2.IMREAD_IGNORE_ORIENTATION
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if pixels is None or pixels.shape[1] != -(-width // scale):
        return _pillow_page(data, max_pixels, min_width)
    return pixels, width / pixels.shape[1]


def _jpeg_frame(data: bytes) -> tuple[int, int, int, int] | None:
    """(components, sample precision in bits, width, height) from a whole JPEG's frame header
    (an EXIF thumbnail inside APP1 is skipped with its segment); None for anything else: not a
    JPEG, cut short, or no frame header."""
    if data[:3] != JPEG_START or data[-2:] != JPEG_END:
        return None
    at = 2
    while at + 9 < len(data) and data[at] == 0xFF:
        marker, length = data[at + 1], int.from_bytes(data[at + 2 : at + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # a frame header
            height, width = (int.from_bytes(data[at + k : at + k + 2], "big") for k in (5, 7))
            return data[at + 9], data[at + 4], width, height
        at += 2 + length
    return None


def _grey_jpeg(data: bytes, max_pixels: int) -> np.ndarray | None:
    """A whole greyscale (one-component, 8-bit) JPEG within the budget, decoded by OpenCV: the
    same libjpeg pixels as Pillow's "L" image, without its Python read loop (~0.2 ms less a
    300 dpi field). None for anything else (colour, over budget, cut short, damaged), which
    Pillow then decodes or names."""
    frame = _jpeg_frame(data)
    if frame is None or frame[:2] != (1, 8) or not 0 < frame[2] * frame[3] <= max_pixels:
        return None
    flags = cv2.IMREAD_GRAYSCALE | cv2.IMREAD_IGNORE_ORIENTATION
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    return pixels if pixels is not None and pixels.shape == (frame[3], frame[2]) else None


def _grey_png(data: bytes, max_pixels: int, min_width: int) -> tuple[np.ndarray, float] | None:
    """An 8-bit grey PNG (a scanner's) through libspng, shrunk by decode_page's whole factor
    (Pillow's box reduce, as _pillow_page does); None for every other PNG."""
    pixels = decode_png(data, max_pixels)  # within the budget, checked on the header
    if pixels is None or pixels.ndim != 2:
        return None
    height, width = pixels.shape
    factor = width // min_width if min_width and width >= 2 * min_width else 1
    if factor > 1:
        pixels = np.asarray(Image.fromarray(pixels).reduce(factor))
    return pixels, width / pixels.shape[1]


def _pillow_page(data: bytes, max_pixels: int, min_width: int) -> tuple[np.ndarray, float]:
    """`decode_page` by Pillow, for every format: a whole document page as uint8 luminance
    (0 = black), shrunk while it stays at least `min_width` pixels wide, and how many original
    pixels one returned pixel spans.

    A JPEG is decoded straight at 1/2, 1/4 or 1/8 scale (DCT scaling: several times cheaper
    than decoding every pixel); other formats are shrunk by box averaging after decoding.
    """
    image = _open(data, max_pixels)
    draft = _fit_budget(image, max_pixels)  # refuses what is over budget even at 1/8
    width, height = image.size
    if image.format == "JPEG" and min_width and width >= 2 * min_width:
        wanted = (min_width, max(1, height * min_width // width))
        draft = wanted if draft is None or wanted[0] < draft[0] else draft
    if image.format == "JPEG" and image.mode != "CMYK":
        draft = draft or image.size  # libjpeg's grey at every scale: decode_page's OpenCV pixels
    if draft:
        image.draft("L", draft)  # Pillow takes only the first draft request
    _load(image)
    factor = image.size[0] // min_width if min_width and image.size[0] >= 2 * min_width else 1
    if image.mode == "L" and "transparency" not in image.info:
        pixels = np.asarray(image.reduce(factor) if factor > 1 else image)
    else:
        pixels = (_luminance(image, factor) * 255.0 + 0.5).astype(np.uint8)
    return pixels, width / pixels.shape[1]


def _load(image: Image.Image) -> None:
    try:
        image.seek(0)  # first page of a TIFF, first frame of a GIF
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image.load()
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        if "truncated" in str(exc).lower() or isinstance(exc, EOFError):
            raise TruncatedImage("the image file is truncated: its pixel data ends early") from exc
        raise UndecodableImage(f"the image data is damaged: {exc}") from exc


def _open(data: bytes, max_pixels: int) -> Image.Image:
    if not data:
        raise UndecodableImage("the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS)
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"the image has more pixels than the limit of {max_pixels}") from exc
    except UnidentifiedImageError as exc:
        raise UndecodableImage(
            "not an image in a supported format (PNG, JPEG, TIFF, BMP, GIF, WebP)"
        ) from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise UndecodableImage(f"the image header is damaged: {exc}") from exc


def _fit_budget(image: Image.Image, max_pixels: int) -> tuple[int, int] | None:
    """Refuse an image over the decode budget; for a JPEG that fits only at a reduced DCT scale
    (1/2, 1/4, 1/8), the size to ask `Image.draft` for, None when every pixel fits."""
    width, height = image.size
    if image.format == "JPEG" and width * height > max_pixels:
        scale = next((s for s in (2, 4, JPEG_MAX_DRAFT_SCALE)
                      if (-(-width // s)) * (-(-height // s)) <= max_pixels), None)  # fmt: skip
        if scale is not None:
            # Pillow picks the scale from whole quotients (width // asked), so a rounded-up size
            # would make it pick the next smaller scale, over the budget: ask rounded down.
            return max(1, width // scale), max(1, height // scale)
    budget = max_pixels // WIDE_COST if image.mode in WIDE_MODES else max_pixels
    _check_size(width, height, budget)
    return None


def _check_size(width: int, height: int, max_pixels: int) -> None:
    if width < 1 or height < 1:
        raise UndecodableImage("the image has no pixels")
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"the image is {width}x{height} pixels, above the limit of {max_pixels} pixels"
        )


def _array_luminance(pixels: np.ndarray, factor: int) -> np.ndarray:
    """`_luminance` for a decoded uint8 array (grey, RGB or RGBA), in OpenCV: the same weights
    as Pillow's "L" conversion, alpha premultiplied before shrinking by area averaging."""
    height, width = pixels.shape[:2]
    exact = width % factor == 0 and height % factor == 0
    if exact and pixels.ndim == 3 and pixels.shape[2] == 4:
        return _drawing_luminance(pixels, factor)

    def shrink(channel: np.ndarray) -> np.ndarray:
        if factor > 1 and exact:
            return _shrunk(channel, factor)
        if factor > 1:  # partial boxes at the edges, as the Pillow path does
            channel = np.asarray(Image.fromarray(channel).reduce(factor))
        return np.multiply(channel, np.float32(1 / 255), dtype=np.float32)

    if pixels.ndim == 2:
        return shrink(pixels)
    if pixels.shape[2] == 3:
        return shrink(cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY))
    alpha = np.ascontiguousarray(pixels[:, :, 3])
    gray = cv2.cvtColor(pixels, cv2.COLOR_RGBA2GRAY)
    return _composite(shrink(cv2.multiply(gray, alpha, scale=1 / 255)), shrink(alpha))


def _shrunk(channel: np.ndarray, factor: int) -> np.ndarray:
    """uint8 averaged over whole `factor` x `factor` boxes (Pillow's box reduce), as float32 in
    [0, 1]. Each output pixel is its own box's rounded mean, so a part of the image aligned to
    the boxes shrinks to the very pixels it has in the whole."""
    if factor > 1:
        height, width = channel.shape
        channel = cv2.resize(channel, (width // factor, height // factor),
                             interpolation=cv2.INTER_AREA)  # fmt: skip
    return np.multiply(channel, np.float32(1 / 255), dtype=np.float32)


def _drawing_luminance(pixels: np.ndarray, factor: int) -> np.ndarray:
    """`_array_luminance` of RGBA pixels whose size `factor` divides (a canvas drawing), to the
    same bits, with the colour work done only inside the box of pixels that have any opacity,
    widened to whole shrink boxes: outside it the premultiplied luminance and the opacity are
    0 whatever the colour. On a canvas that box is the strokes' (~1/4 of the canvas)."""
    height, width = pixels.shape[:2]
    alpha = np.ascontiguousarray(pixels[:, :, 3])
    x, y, w, h = cv2.boundingRect(alpha)  # of the non-zero pixels; all 0 when none is
    x0, y0 = x - x % factor, y - y % factor
    x1, y1 = -(-(x + w) // factor) * factor, -(-(y + h) // factor) * factor
    premultiplied = np.zeros((height // factor, width // factor), np.float32)
    opacity = np.zeros_like(premultiplied)
    if w and h:
        part, part_alpha = pixels[y0:y1, x0:x1], alpha[y0:y1, x0:x1]
        gray = cv2.multiply(cv2.cvtColor(part, cv2.COLOR_RGBA2GRAY), part_alpha, scale=1 / 255)
        inside = slice(y0 // factor, y1 // factor), slice(x0 // factor, x1 // factor)
        premultiplied[inside] = _shrunk(gray, factor)
        opacity[inside] = _shrunk(part_alpha, factor)
    return _composite(premultiplied, opacity)


def _composite(premultiplied: np.ndarray, opacity: np.ndarray) -> np.ndarray:
    """Luminance on a background that contrasts with the ink, from premultiplied luminance and
    opacity in [0, 1]."""
    opaque = float(opacity.sum())
    if opaque == 0:
        return np.ones_like(opacity)  # fully transparent: blank paper
    # Composite onto white when the visible marks are dark (a canvas with black strokes), onto
    # black when they are light: the background must contrast with the ink. Both arrays are
    # the caller's own: `premultiplied + 1.0 * (1.0 - opacity)` is done in place (the same
    # bits), and onto black nothing is added.
    if premultiplied.sum() / opaque >= 0.5:
        return premultiplied
    np.subtract(1.0, opacity, out=opacity)
    opacity += premultiplied
    return opacity


def _luminance(image: Image.Image, factor: int) -> np.ndarray:
    """Grayscale float32 in [0, 1], shrunk `factor` times by box averaging (done in Pillow, in C,
    before anything is converted to floats: this is the canvas hot path)."""

    def shrink(channel: Image.Image) -> np.ndarray:
        channel = channel.reduce(factor) if factor > 1 else channel
        pixels = np.asarray(channel, dtype=np.float32)
        return pixels / 255.0 if channel.mode == "L" else pixels

    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        pixels = np.asarray(image, dtype=np.float32)
        top = float(pixels.max())
        scale = 65535.0 if top > 255 else 255.0 if top > 1 else 1.0
        return shrink(Image.fromarray(np.clip(pixels / scale, 0, 1).astype(np.float32), mode="F"))
    if not (image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info):
        return shrink(image.convert("L"))

    if image.mode not in ("RGBA", "LA"):
        image = image.convert("RGBA")
    alpha = image.getchannel("A")
    # Premultiplied luminance (L * alpha) averages correctly when shrunk.
    return _composite(shrink(ImageChops.multiply(image.convert("L"), alpha)), shrink(alpha))
