"""Decode budget of the synchronous path: one client's big image cannot stall everyone's batch.

A request is first tried inside the canvas micro-batch with a small pixel limit
(`inline_decode_max_pixels`), checked on the image header before any pixel is decoded. An image
over it (a scan, or a decompression bomb just under the hard limit) is refused there cheaply and
decoded instead in the threadpool, at most `heavy_decode_concurrency` at a time, under the hard
limit (`max_image_pixels`); the batch then only runs the model on the finished 28x28 array.
Memory for heavy decodes is thus bounded by the concurrency, not by how many arrive, and each
client address gets `rate_limit_heavy_per_address` of them (429 past it), so one client looping
bombs cannot take the CPU the canvas needs.

When the raw image bytes are at hand (an upload), their header is checked on the event loop
first (microseconds for a PNG, tens of them for other formats): a heavy image then never enters
the batch, and a client over its heavy limit is refused at once, so a 429 storm costs little.
"""

import asyncio
from collections.abc import Callable

import numpy as np
from starlette.concurrency import run_in_threadpool

from api.config import Settings
from api.errors import ApiError
from api.predict.batcher import MicroBatcher
from api.security import RateLimiter
from recognition import DigitPrediction, check_image
from recognition.errors import ImageError, ImageTooLarge

# make(max_pixels) -> a function that decodes and prepares the request's image
JobFactory = Callable[[int], Callable[[], np.ndarray]]


class HeavyRateLimited(ApiError):
    def __init__(self, retry_after: int):
        super().__init__(429, "rate_limited", "too many large images from this client; retry later")
        self.headers = {"Retry-After": str(retry_after)}


class DecodeBudget:
    def __init__(self, settings: Settings, limiter: RateLimiter):
        self.limiter = limiter
        self.inline_bytes = settings.inline_decode_max_bytes
        self.inline_pixels = min(settings.inline_decode_max_pixels, settings.max_image_pixels)
        self.max_pixels = settings.max_image_pixels
        self._heavy = asyncio.Semaphore(settings.heavy_decode_concurrency)
        self.heavy_decodes = 0  # how many requests took the heavy path (tests, metrics)

    async def predict(
        self, batcher: MicroBatcher, make: JobFactory, size: int, address: str,
        image: bytes | None = None,
    ) -> DigitPrediction:  # fmt: skip
        """Read the request's image; `image`, its raw bytes if known, is checked up front."""
        if size <= self.inline_bytes and (image is None or self._fits_inline(image)):
            try:
                return await batcher.predict(make(self.inline_pixels))
            except ImageTooLarge:
                pass  # over the inline budget (maybe within the hard limit): decode aside
        wait = self.limiter.retry_after("heavy", address)
        if wait is not None:
            raise HeavyRateLimited(wait)
        self.heavy_decodes += 1
        async with self._heavy:
            array = await run_in_threadpool(make(self.max_pixels))
        return await batcher.predict(array)

    def _fits_inline(self, image: bytes) -> bool:
        try:
            check_image(image, self.inline_pixels)
        except ImageTooLarge:
            return False
        except ImageError:
            return True  # damaged or not an image: the batch's decode names the problem
        return True
