"""Micro-batching: concurrent requests share one model call.

While one batch runs in the worker thread, new requests queue up; when it finishes, everything
queued (up to `max_batch`) becomes the next batch. A lone request never waits for company, and
under load the model is called once per batch, never once per request. Each queued item may be
a ready 28x28 array or a function that makes one from raw bytes: decoding small payloads inside
the batch's thread costs one thread hop per batch instead of one per request.
"""

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from recognition import DigitPrediction, Recognizer

Item = np.ndarray | Callable[[], np.ndarray]


class MicroBatcher:
    def __init__(self, recognizer: Recognizer, max_batch: int = 64):
        self._recognizer = recognizer
        self._max_batch = max_batch
        self._queue: list[tuple[Item, asyncio.Future]] = []
        self._draining = False
        # One thread: the model runs one batch at a time, and batches form while it is busy.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="digitflow-batch")
        self.batches = 0  # model calls so far (the benchmark reports images per call)
        self.images = 0

    async def predict(self, item: Item) -> DigitPrediction:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.append((item, future))
        if not self._draining:
            self._draining = True
            loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._queue:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                try:
                    outcomes = await loop.run_in_executor(
                        self._executor, self._run, [item for item, _ in batch]
                    )
                except Exception as exc:  # the model itself failed: every request hears it
                    outcomes = [exc] * len(batch)
                for (_, future), outcome in zip(batch, outcomes, strict=True):
                    if future.done():  # the client went away
                        continue
                    if isinstance(outcome, Exception):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
        finally:
            self._draining = False

    def _run(self, items: list[Item]) -> list[DigitPrediction | Exception]:
        """In the worker thread: decode what needs decoding, then one model call for the batch."""
        outcomes: list[DigitPrediction | Exception | None] = [None] * len(items)
        images, positions = [], []
        for position, item in enumerate(items):
            try:
                images.append(item() if callable(item) else item)
                positions.append(position)
            except Exception as exc:  # bad input of one request fails that request only
                outcomes[position] = exc
        if images:
            predictions = self._recognizer.predict(np.stack(images))
            for position, prediction in zip(positions, predictions, strict=True):
                outcomes[position] = prediction
            self.batches += 1
            self.images += len(images)
        return outcomes

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
