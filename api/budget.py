"""Decode budget of the synchronous path: one client's big image cannot stall everyone's batch.

A request is first tried inside the canvas micro-batch with a small pixel limit
(`inline_decode_max_pixels`), checked on the image header before any pixel is decoded. An image
over it (a scan, or a decompression bomb just under the hard limit) is refused there cheaply and
decoded instead in the threadpool, at most `heavy_decode_concurrency` at a time, under the hard
limit (`max_image_pixels`); the batch then only runs the model on the finished 28x28 array.
Memory for heavy decodes is thus bounded by the concurrency, not by how many arrive, and each
client address gets `rate_limit_heavy_per_address` of them (429 past it), so one client looping
bombs cannot take the CPU the canvas needs.

Heavy decodes run in a helper process (one per API process, started on first use, at a lower
CPU priority): Pillow holds the GIL for tens of milliseconds at a time while it decodes some
formats (lossless WebP), which would freeze the event loop and every canvas request with it.

The image's header (an upload's bytes, or the first bytes of a drawing's data URL) is checked on
the event loop first (microseconds for a PNG, tens of them for other formats): an image over the
hard limit is refused at once, a heavy one never enters the batch, and a client over its heavy
limit is refused before anything is decoded, so a 429 storm costs little.
"""

import asyncio
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import numpy as np

from api.config import Settings
from api.errors import ApiError, ModelUnavailable
from api.predict.batcher import MicroBatcher
from api.security import RateLimiter
from recognition import DigitPrediction, check_image
from recognition.errors import ImageError, ImageTooLarge

# make(max_pixels) -> a function that decodes and prepares the request's image (picklable: it
# runs in the helper process when the image is heavy)
JobFactory = Callable[[int], Callable[[], np.ndarray]]
# The helper's niceness (the lowest priority): when the CPU is short, the canvas comes first.
HEAVY_NICENESS = 19


def _lower_priority() -> None:
    os.nice(HEAVY_NICENESS)


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
        self._concurrency = settings.heavy_decode_concurrency
        self._pool: ProcessPoolExecutor | None = None
        self.heavy_decodes = 0  # how many requests took the heavy path (tests, metrics)

    async def predict(
        self, batcher: MicroBatcher, make: JobFactory, size: int, address: str,
        header: bytes | None = None,
    ) -> DigitPrediction:  # fmt: skip
        """Read the request's image. `header`: its first bytes (or all of them) if known, checked
        on the event loop: over the hard limit is refused at once, over the inline budget goes
        straight to the heavy path."""
        heavy = size > self.inline_bytes or (header is not None and self._heavy_header(header))
        if not heavy:
            try:
                return await batcher.predict(make(self.inline_pixels))
            except ImageTooLarge:
                pass  # over the inline budget (maybe within the hard limit): decode aside
        wait = self.limiter.retry_after("heavy", address)
        if wait is not None:
            raise HeavyRateLimited(wait)
        self.heavy_decodes += 1
        async with self._heavy:
            field = await self._decode_aside(make(self.max_pixels))
        return await batcher.predict(field)

    def _heavy_header(self, header: bytes) -> bool:
        """Whether the image is over the inline budget; ImageTooLarge if over the hard limit."""
        try:
            check_image(header, self.max_pixels)
        except ImageError as exc:
            if isinstance(exc, ImageTooLarge):
                raise
            return False  # damaged, cut short or not an image: the batch's decode says which
        try:
            check_image(header, self.inline_pixels)
        except ImageTooLarge:
            return True
        return False

    async def _decode_aside(self, job: Callable[[], np.ndarray]):
        if self._pool is None:  # spawned, not forked: this process runs threads
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(self._concurrency, context, _lower_priority)
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, job)
        except BrokenProcessPool as exc:  # the helper died (out of memory?): a new one next time
            self._pool = None
            raise ModelUnavailable("the large-image decoder stopped; retry") from exc

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
