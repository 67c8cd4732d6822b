"""Concurrent requests share model calls, and one bad input fails only its own request."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import pytest

from api.config import Settings
from api.errors import ModelUnavailable
from api.main import create_app
from api.predict.batcher import MicroBatcher
from recognition import EmptyImage, Recognizer, find_digits, read_segmentations
from tests.api.conftest import canvas_drawing, data_url


class CountingRecognizer(Recognizer):
    """The real recognizer, counting how often the model is called and with how many images."""

    def __init__(self, model_dir):
        super().__init__(model_dir)
        self.calls: list[int] = []

    def predict(self, images):
        self.calls.append(len(images))
        return super().predict(images)


def fields_of(images: np.ndarray) -> list:
    """MNIST digits (white on black) segmented as the API segments an upload."""
    return [find_digits(np.kron(image / 255.0, np.ones((3, 3)))) for image in images]


def test_concurrent_requests_are_batched_and_answered_in_order(model_dir, mnist_test_digits):
    images, labels = mnist_test_digits
    prepared = fields_of(images)
    recognizer = CountingRecognizer(model_dir)
    expected = [r.text for r in read_segmentations(prepared, recognizer)]
    recognizer.calls.clear()
    crops = sum(len(s.crops) for s in prepared)

    async def main():
        batcher = MicroBatcher(recognizer, max_batch=16)
        try:
            return await asyncio.gather(*(batcher.read(field) for field in prepared))
        finally:
            batcher.close()

    answers = asyncio.run(main())
    assert [a.text for a in answers] == expected
    assert sum(recognizer.calls) == crops
    assert len(recognizer.calls) < len(prepared) / 4  # batches, not one call per request
    assert len(recognizer.calls) >= len(prepared) / 16


@pytest.mark.parametrize("decode_threads", [1, 3])
def test_queued_decodes_are_read_alike_in_the_batch_thread_or_a_pool(
    model_dir, mnist_test_digits, decode_threads
):
    images, labels = mnist_test_digits
    prepared = fields_of(images[:12])
    expected = [r.text for r in read_segmentations(prepared, Recognizer(model_dir))]

    async def main():
        batcher = MicroBatcher(Recognizer(model_dir), max_batch=8, decode_threads=decode_threads)
        try:  # functions, as the API queues them: decoded by the batch (its thread or its pool)
            jobs = [lambda field=field: field for field in prepared]
            return await asyncio.gather(*(batcher.read(job) for job in jobs)), batcher
        finally:
            batcher.close()

    answers, batcher = asyncio.run(main())
    assert [a.text for a in answers] == expected
    assert (batcher._decoders is None) == (decode_threads == 1)


def test_a_bad_input_fails_only_its_own_request(model_dir, mnist_test_digits):
    good = fields_of(mnist_test_digits[0][:3])

    def unreadable():
        raise EmptyImage("the image holds no ink")

    async def main():
        batcher = MicroBatcher(Recognizer(model_dir))
        try:
            return await asyncio.gather(
                batcher.read(good[0]),
                batcher.read(unreadable),
                batcher.read(lambda: good[1]),
                return_exceptions=True,
            )
        finally:
            batcher.close()

    first, failed, third = asyncio.run(main())
    assert isinstance(failed, EmptyImage)
    assert first.digit == mnist_test_digits[1][0]
    assert third.digit == mnist_test_digits[1][1]
    assert np.isclose(sum(first.probabilities), 1.0)


@pytest.mark.parametrize("concurrency", [1, 8])
def test_model_failure_reaches_every_waiting_request(concurrency):
    class Broken:
        version = "broken"

        def predict(self, images):
            raise RuntimeError("model exploded")

    field = fields_of(np.full((1, 28, 28), 0, np.uint8) + np.eye(28, dtype=np.uint8)[None] * 255)

    async def main():
        batcher = MicroBatcher(Broken())
        try:
            return await asyncio.gather(
                *(batcher.read(field[0]) for _ in range(concurrency)),
                return_exceptions=True,
            )
        finally:
            batcher.close()

    assert all(isinstance(r, RuntimeError) for r in asyncio.run(main()))


def test_a_cancelled_request_does_not_hold_up_the_rest_of_its_batch(model_dir, mnist_test_digits):
    """A client that goes away mid-batch: the requests after it in the batch still get answers."""
    images = fields_of(mnist_test_digits[0][:4])

    async def main():
        batcher = MicroBatcher(Recognizer(model_dir))
        try:
            tasks = [asyncio.create_task(batcher.read(image)) for image in images]
            await asyncio.sleep(0)  # every request is queued, the batch is forming
            tasks[1].cancel()
            done = await asyncio.wait_for(asyncio.gather(*tasks[2:], tasks[0]), timeout=10)
            return done, tasks[1].cancelled()
        finally:
            batcher.close()

    answers, cancelled = asyncio.run(main())
    assert cancelled
    assert [a.digit for a in answers] == [int(d) for d in mnist_test_digits[1][[2, 3, 0]]]


def test_closing_finishes_requests_in_flight_then_refuses_with_503(model_dir, mnist_test_digits):
    """Shutdown while requests are queued and a batch runs: each of them still gets its reading
    (it used to be RuntimeError: cannot schedule new futures after shutdown); one that arrives
    after the batcher closed is a clean 503."""
    fields = fields_of(mnist_test_digits[0][:12])

    async def main():
        batcher = MicroBatcher(Recognizer(model_dir), max_batch=4)
        tasks = [asyncio.create_task(batcher.read(field)) for field in fields]
        await asyncio.sleep(0)  # queued; the first batch is running
        await batcher.aclose()
        late = await asyncio.gather(batcher.read(fields[0]), return_exceptions=True)
        return await asyncio.gather(*tasks, return_exceptions=True), late[0]

    answers, late = asyncio.run(main())
    assert [a.digit for a in answers] == [int(d) for d in mnist_test_digits[1][:12]]
    assert isinstance(late, ModelUnavailable) and late.status_code == 503


def test_lifespan_shutdown_with_requests_in_flight_answers_them(model_dir, tmp_path):
    """The app's own shutdown (lifespan) with canvas requests in flight: no 500."""
    settings = Settings(
        model_dir=model_dir, data_dir=tmp_path, configure_logging=False, batch_max_size=2
    )  # several batches queue behind the running one
    app = create_app(settings)
    drawing = {"image": data_url(canvas_drawing(np.eye(28, dtype=np.uint8) * 255))}

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            async with app.router.lifespan_context(app):
                tasks = [asyncio.create_task(client.post("/predict-drawing", json=drawing))
                         for _ in range(24)]  # fmt: skip
                await asyncio.sleep(0.005)  # some queued, one batch running; then shut down
            return [(await task).status_code for task in tasks]

    statuses = asyncio.run(main())
    assert set(statuses) <= {200, 503}, statuses
    assert statuses.count(200) >= 1


@pytest.mark.parametrize("inline", [True, False])
def test_a_lone_request_is_read_on_the_event_loop_and_company_in_the_batch_thread(
    model_dir, mnist_test_digits, inline
):
    """BATCH_INLINE: a batch of one is read where the event loop runs (no hand-off to the batch
    thread and back); requests that arrive together still share one model call in the thread.
    Either way the answers are the same."""
    import threading

    prepared = fields_of(mnist_test_digits[0][:6])
    expected = [r.text for r in read_segmentations(prepared, Recognizer(model_dir))]
    threads: list[str] = []

    def job(field):
        threads.append(threading.current_thread().name)
        return field

    async def main():
        recognizer = CountingRecognizer(model_dir)
        batcher = MicroBatcher(recognizer, inline=inline)
        try:
            alone = [await batcher.read(lambda f=f: job(f)) for f in prepared[:2]]
            rest = [batcher.read(lambda f=f: job(f)) for f in prepared[2:]]
            together = await asyncio.gather(*rest)
            return alone + list(together), recognizer.calls
        finally:
            batcher.close()

    answers, calls = asyncio.run(main())
    assert [a.text for a in answers] == expected
    assert calls == [1, 1, 4]  # one model call for the four that came together
    main_thread = threading.main_thread().name
    assert threads[:2] == [main_thread if inline else "digitflow-batch_0"] * 2
    assert threads[2:] == ["digitflow-batch_0"] * 4
