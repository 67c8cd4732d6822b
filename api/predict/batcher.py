"""Micro-batching: concurrent requests share one model call.

Each request is a field (one digit or several): its image is segmented into digit crops, and
the crops of every field in a batch go through the model together (`read_segmentations`).

While one batch runs in the worker thread, new requests queue up; when it finishes, everything
queued (up to `max_batch`) becomes the next batch. A lone request never waits for company, and
under load the model is called once per batch, never once per request. Each queued item may be
a ready Segmentation or a function that makes one from raw bytes: decoding small payloads inside
the batch's thread costs one thread hop per batch instead of one per request. The items of a
batch are decoded in the batch's thread, one after another: with one API process per core
(`digitflow serve`) a pool of decode threads adds no throughput, only a hand-off per item and GIL
contention with the event loop (measured at 32 clients: 0.2-0.3 ms more CPU a request, and a p99
no better). A single process on a many-core box can still ask for `decode_threads` > 1.

Shutdown: `aclose` (the lifespan's last step) lets every queued and running batch finish before
the threads stop; a request that reaches the batcher after that is answered 503, never with
"cannot schedule new futures after shutdown".
"""

import asyncio
import ctypes
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from api.errors import ModelUnavailable
from recognition import FieldReading, Recognizer, read_segmentations
from recognition.segment import Segmentation

Item = Segmentation | Callable[[], Segmentation]
PR_SET_NAME = 15  # prctl(2): set the calling thread's name


class MicroBatcher:
    def __init__(self, recognizer: Recognizer, max_batch: int = 64, decode_threads: int = 1,
                 inline: bool = True):  # fmt: skip
        self._recognizer = recognizer
        self.model_version = recognizer.version
        self._max_batch = max_batch
        self._queue: list[tuple[Item, asyncio.Future]] = []
        self._draining = False
        self._closed = False
        self._inline = inline  # a batch of one is read on the event loop, not in the thread
        # One thread: the model runs one batch at a time, and batches form while it is busy.
        self._executor = ThreadPoolExecutor(
            1, "digitflow-batch", initializer=name_os_thread, initargs=("digitflow-batch",)
        )
        self._decoders = (
            ThreadPoolExecutor(decode_threads, "digitflow-decode", initializer=name_os_thread,
                               initargs=("digitflow-decode",))
            if decode_threads > 1 else None
        )  # fmt: skip
        self.batches = 0  # model calls so far (the benchmark reports images per call)
        self.images = 0
        self.requests = 0  # items submitted

    async def read(self, item: Item) -> FieldReading:
        return await self._submit(item)

    # What the decode budget (api.budget) calls.
    predict = read

    async def _submit(self, item: Item) -> FieldReading:
        if self._closed:
            raise ModelUnavailable("the server is shutting down")
        self.requests += 1
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.append((item, future))
        if not self._draining:
            self._draining = True
            # After the requests that are ready now have queued theirs: they batch together.
            loop.call_soon(self._start, loop)
        return await future

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Alone (nothing else arrived meanwhile): read here, on the event loop, without a task
        of its own. The hand-off to the batch thread and back costs more than batching saves for
        one item: ~0.2 ms CPU and the wake-ups' latency."""
        if len(self._queue) == 1 and self._inline:
            try:
                self._settle(self._queue.pop())
            finally:
                self._draining = False
        else:
            loop.create_task(self._drain())

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._queue:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                items = [item for item, _ in batch]
                try:
                    if len(items) == 1 and self._inline:  # alone again: as in `_start`
                        outcomes = self._run(items)
                    else:
                        outcomes = await loop.run_in_executor(self._executor, self._run, items)
                except Exception as exc:  # the model itself failed: every request hears it
                    outcomes = [exc] * len(batch)
                _resolve(batch, outcomes)
        finally:
            self._draining = False

    def _settle(self, queued: tuple[Item, asyncio.Future]) -> None:
        try:
            outcomes = self._run([queued[0]])
        except Exception as exc:  # the model itself failed
            outcomes = [exc]
        _resolve([queued], outcomes)

    def _run(self, items: list[Item]) -> list:
        """In the worker thread: decode what needs decoding, then one model call for the batch."""
        if len(items) == 1 or self._decoders is None:
            outcomes = [_decode(item) for item in items]
        else:
            outcomes = list(self._decoders.map(_decode, items))
        positions = [i for i, outcome in enumerate(outcomes) if isinstance(outcome, Segmentation)]
        fields = [outcomes[i] for i in positions]
        if fields:
            readings = read_segmentations(fields, self._recognizer)
            for position, reading in zip(positions, readings, strict=True):
                outcomes[position] = reading
            self.batches += 1
            self.images += sum(len(field.crops) for field in fields)
        return outcomes

    async def aclose(self, timeout: float = 30.0) -> None:
        """Wait (up to `timeout` s) until no request is queued or being read, then stop."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (self._draining or self._queue) and loop.time() < deadline:
            await asyncio.sleep(0.01)
        self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self._decoders is not None:
            self._decoders.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        self._closed = True
        self._executor.shutdown(wait=True, cancel_futures=True)
        if self._decoders is not None:
            self._decoders.shutdown(wait=True, cancel_futures=True)


def name_os_thread(name: str) -> None:
    """Give the thread its name in the OS too (top -H, /proc/PID/task/TID/comm: how
    benchmarks/fastpath_cpu.py tells the batch thread's CPU from the HTTP server's threads)."""
    try:
        libc = ctypes.CDLL(None)
        libc.prctl(PR_SET_NAME, name.encode()[:15], 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the name is only cosmetic
        pass


def _resolve(batch: list[tuple[Item, asyncio.Future]], outcomes: list) -> None:
    for (_, future), outcome in zip(batch, outcomes, strict=True):
        if future.done():  # the client went away
            continue
        if isinstance(outcome, Exception):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


def _decode(item: Item) -> Segmentation | Exception:
    try:
        return item() if callable(item) else item
    except Exception as exc:  # bad input of one request fails that request only
        return exc
