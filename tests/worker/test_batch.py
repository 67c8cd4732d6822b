"""The worker's batch step and sweeper, run in-process against Postgres and SQLite."""

import io
import threading
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, insert, select, update

from digitflow.db import Document, Job, Prediction, make_sessionmaker
from digitflow.db.migrations import upgrade
from digitflow.storage import LocalStorage
from recognition import Recognizer
from recognition.fields import ReviewPolicy as FieldPolicy
from tests.jobs.support import MODEL_DIR, mnist_test_set, scans
from worker.batch import Runtime, job_layouts, process_batch, stale_documents


@pytest.fixture(scope="module")
def recognizer():
    return Recognizer(MODEL_DIR)


@pytest.fixture(params=["postgres", "sqlite"])
def runtime(request, tmp_path, recognizer):
    if request.param == "postgres":
        url = request.getfixturevalue("postgres").create_database()
    else:
        url = f"sqlite:///{tmp_path / 'batch.db'}"
    upgrade(url)
    return Runtime(
        recognizer=recognizer,
        sessions=make_sessionmaker(url),
        storage=LocalStorage(tmp_path / "storage"),
        max_pixels=40_000_000,
    )


def add_job(rt: Runtime, files: list[tuple[str, bytes]], layout: str = "digit") -> tuple:
    job_id, now, documents = uuid.uuid4(), datetime.now(UTC), []
    for position, (name, data) in enumerate(files):
        key = f"jobs/{job_id}/{position:06d}"
        rt.storage.put(key, data)
        documents.append(
            {"id": uuid.uuid4(), "job_id": job_id, "position": position, "filename": name,
             "content_hash": "0" * 64, "size": len(data), "storage_key": key, "status": "queued",
             "enqueued_at": now, "created_at": now, "updated_at": now}
        )  # fmt: skip
    with rt.sessions.begin() as session:  # a job whose upload is complete, as the API leaves it
        session.add(Job(id=job_id, layout=layout, total=len(documents), uploaded_at=now))
        session.flush()
        session.execute(insert(Document), documents)
    return job_id, [d["id"] for d in documents]


def job(rt, job_id) -> Job:
    with rt.sessions() as session:
        return session.get(Job, job_id)


def texts(rt, job_id) -> list[str | None]:
    with rt.sessions() as session:
        rows = session.execute(
            select(Prediction.text)
            .join(Document, Document.id == Prediction.document_id, isouter=False)
            .where(Document.job_id == job_id)
            .order_by(Document.position)
        )
        return [text for (text,) in rows]


def test_batch_reads_digits_and_finishes_the_job(runtime):
    files = scans(40)
    job_id, ids = add_job(runtime, [(name, data) for name, data, _ in files])
    outcome = process_batch(runtime, job_id, ids[:25])
    assert (outcome.succeeded, outcome.failed) == (25, 0)
    assert job(runtime, job_id).status == "running"
    process_batch(runtime, job_id, ids[25:])
    done = job(runtime, job_id)
    assert (done.status, done.succeeded, done.failed, done.total) == ("succeeded", 40, 0, 40)
    assert done.started_at <= done.finished_at
    labels = [str(label) for _, _, label in files]
    correct = sum(t == label for t, label in zip(texts(runtime, job_id), labels, strict=True))
    assert correct >= 39  # the model is >99% accurate; one slip in 40 is allowed
    with runtime.sessions() as session:
        prediction = session.scalars(select(Prediction)).first()
    assert len(prediction.digits) == 1 and len(prediction.digits[0]["probabilities"]) == 10
    assert prediction.model_version == runtime.recognizer.version
    assert set(prediction.timings) == {"read_ms", "preprocess_ms", "inference_ms"}


def test_a_redelivered_batch_changes_nothing(runtime):
    job_id, ids = add_job(runtime, [(n, d) for n, d, _ in scans(10)])
    process_batch(runtime, job_id, ids)
    again = process_batch(runtime, job_id, ids)
    assert (again.succeeded, again.failed, again.skipped) == (0, 0, 10)
    with runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Prediction)) == 10
    assert job(runtime, job_id).succeeded == 10


def test_concurrent_duplicate_batches_count_each_document_once(runtime):
    job_id, ids = add_job(runtime, [(n, d) for n, d, _ in scans(60)])
    threads = [threading.Thread(target=process_batch, args=(runtime, job_id, ids)) for _ in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with runtime.sessions() as session:
        per_document = session.execute(
            select(Prediction.document_id, func.count()).group_by(Prediction.document_id)
        ).all()
    assert len(per_document) == 60 and all(count == 1 for _, count in per_document)
    finished = job(runtime, job_id)
    assert (finished.succeeded, finished.status) == (60, "succeeded")


def test_unreadable_documents_fail_with_their_reason(runtime):
    good = scans(3)
    truncated = good[0][1][:60]  # a PNG header, then the pixel data stops
    blank = io.BytesIO()
    Image.new("L", (40, 40), 255).save(blank, "PNG")
    files = [(n, d) for n, d, _ in good] + [("cut.png", truncated), ("blank.png", blank.getvalue())]
    job_id, ids = add_job(runtime, files + [("gone.png", good[1][1])])
    runtime.storage.delete(f"jobs/{job_id}/000005")  # stored object vanished
    process_batch(runtime, job_id, ids)
    finished = job(runtime, job_id)
    assert (finished.status, finished.succeeded, finished.failed) == ("partially_succeeded", 3, 3)
    with runtime.sessions() as session:
        errors = dict(
            session.execute(
                select(Document.filename, Document.error_code).where(Document.status == "failed")
            ).all()
        )
    assert errors["blank.png"] == "empty_image"
    assert errors["cut.png"] in {"truncated_image", "undecodable_image"}
    assert errors["gone.png"] == "missing_object"


def test_field_layout_reads_several_digits(runtime):
    images, labels = mnist_test_set()
    gap = np.zeros((28, 6), dtype=np.uint8)
    field = np.hstack([images[0], gap, images[1], gap, images[2]])
    pixels = (235 - field.astype(np.float32) * 215 / 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).resize((field.shape[1] * 2, 56)).save(out, "PNG")
    job_id, ids = add_job(runtime, [("amount.png", out.getvalue())], layout="field")
    process_batch(runtime, job_id, ids)
    with runtime.sessions() as session:
        prediction = session.scalars(select(Prediction)).one()
    assert prediction.text == "".join(str(label) for label in labels[:3])
    product = np.prod([digit["confidence"] for digit in prediction.digits])
    assert prediction.confidence == pytest.approx(product, rel=1e-4)


def test_sweeper_returns_only_stale_queued_documents(runtime):
    job_id, ids = add_job(runtime, [(n, d) for n, d, _ in scans(4)])
    process_batch(runtime, job_id, ids[:1])  # one done: never swept
    long_ago = datetime.now(UTC) - timedelta(minutes=10)
    with runtime.sessions.begin() as session:
        session.execute(
            update(Document).where(Document.id.in_(ids[:3])).values(enqueued_at=long_ago)
        )
    stale = stale_documents(runtime.sessions, timedelta(minutes=5))
    assert {job: sorted(docs) for job, docs in stale.items()} == {job_id: sorted(ids[1:3])}
    # Marked as sent just now: the next sweep leaves them alone.
    assert stale_documents(runtime.sessions, timedelta(minutes=5)) == {}


def test_the_sweeper_resends_a_cheque_job_in_page_sized_batches(runtime):
    """A stale cheque job goes back 32 a task (JOB_PAGE_BATCH_SIZE), single images 512."""
    from digitflow.settings import PlatformSettings

    cheques, _ = add_job(runtime, [(n, d) for n, d, _ in scans(1)], layout="cheque")
    digits, _ = add_job(runtime, [(n, d) for n, d, _ in scans(1)])
    layouts = job_layouts(runtime.sessions, [cheques, digits, uuid.uuid4()])
    assert layouts == {cheques: "cheque", digits: "digit"}
    settings = PlatformSettings(job_batch_size=512, job_page_batch_size=32)
    sizes = [settings.batch_size_for(layouts.get(job)) for job in (cheques, digits)]
    assert sizes == [32, 512]


def test_boxed_field_stores_text_boxes_and_review_reasons(runtime):
    from training.synthetic_fields import FieldSpec, render_field

    images, labels = mnist_test_set()
    rng = np.random.default_rng(11)
    made = [
        render_field(FieldSpec(count=4, structure="box", height=40), images, labels, rng)
        for _ in range(6)
    ]
    job_id, ids = add_job(runtime, [(f"f{i}.png", f.image) for i, f in enumerate(made)], "auto")
    process_batch(runtime, job_id, ids)
    assert sum(t == f.text for t, f in zip(texts(runtime, job_id), made, strict=True)) >= 5
    with runtime.sessions() as session:
        predictions = session.scalars(select(Prediction)).all()
    for prediction in predictions:
        assert len(prediction.digits) == len(prediction.text)
        boxes = [digit["box"] for digit in prediction.digits]
        assert all(set(box) == {"x", "y", "width", "height"} for box in boxes)
        assert [box["x"] for box in boxes] == sorted(box["x"] for box in boxes)  # left to right
        assert prediction.needs_review == bool(prediction.review_reasons)


def test_failures_are_written_in_one_statement(runtime):
    from sqlalchemy import event

    blank = io.BytesIO()
    Image.new("L", (40, 40), 255).save(blank, "PNG")
    files = [(f"blank{i}.png", blank.getvalue()) for i in range(4)] + [("junk.png", b"junk")]
    job_id, ids = add_job(runtime, files)
    engine = runtime.sessions.kw["bind"]
    statements = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("UPDATE DOCUMENTS"):
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        outcome = process_batch(runtime, job_id, ids)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert (outcome.succeeded, outcome.failed) == (0, 5)
    assert len(statements) == 1
    with runtime.sessions() as session:
        codes = dict(session.execute(select(Document.filename, Document.error_code)).all())
    expected = {f"blank{i}.png": "empty_image" for i in range(4)}
    assert codes == {**expected, "junk.png": "undecodable_image"}


def test_stored_digits_are_the_readings_rounded_to_six_places(runtime):
    from recognition import read_segmentations, segment_image

    files = [f for i in (78, 149, 151) for f in scans(1, start=i)]  # read at 0.96-0.99
    job_id, ids = add_job(runtime, [(n, d) for n, d, _ in files])
    process_batch(runtime, job_id, ids)
    readings = read_segmentations([segment_image(d, "digit") for _, d, _ in files],
                                  runtime.recognizer)  # fmt: skip
    with runtime.sessions() as session:
        stored = {p.document_id: p.digits for p in session.scalars(select(Prediction))}
    for doc_id, reading in zip(ids, readings, strict=True):
        (digit,) = stored[doc_id]
        assert digit["confidence"] == round(reading.digits[0].confidence, 6)
        assert digit["probabilities"] == [round(p, 6) for p in reading.digits[0].probabilities]
        assert 0 < sum(p not in (0.0, 1.0) for p in digit["probabilities"])


def test_the_sweeper_takes_the_oldest_first_and_stamps_them_sent_now(runtime):
    job_id, ids = add_job(runtime, [(n, d) for n, d, _ in scans(3)])
    now = datetime.now(UTC)
    with runtime.sessions.begin() as session:
        for minutes, doc_id in zip((30, 10, 20), ids, strict=True):
            session.execute(update(Document).where(Document.id == doc_id)
                            .values(enqueued_at=now - timedelta(minutes=minutes)))  # fmt: skip
    assert stale_documents(runtime.sessions, timedelta(minutes=5), limit=2) == {
        job_id: [ids[0], ids[2]]
    }
    after = datetime.now(UTC)
    with runtime.sessions() as session:
        sent = dict(session.execute(select(Document.id, Document.enqueued_at)).all())
    for doc_id in (ids[0], ids[2]):
        stamped = sent[doc_id].replace(tzinfo=sent[doc_id].tzinfo or UTC)
        assert now - timedelta(seconds=1) <= stamped <= after
    # The one left over is the next sweep's; then nothing is stale until `older_than` passes.
    assert stale_documents(runtime.sessions, timedelta(minutes=5)) == {job_id: [ids[1]]}
    assert stale_documents(runtime.sessions, timedelta(minutes=1)) == {}


def _field_png(count: int, first: int = 0) -> bytes:
    """MNIST test digits first, first + 1, ... side by side: a field of `count` digits."""
    images, _ = mnist_test_set()
    gap = np.zeros((28, 6), dtype=np.uint8)
    field = np.hstack([part for i in range(count) for part in (images[first + i], gap)][:-1])
    pixels = (235 - field.astype(np.float32) * 215 / 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).resize((field.shape[1] * 2, 56)).save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize("layout, digits", [("digit", 1), ("field", 3), ("auto", 3)])
def test_the_worker_reads_with_the_jobs_layout(runtime, layout, digits):
    job_id, ids = add_job(runtime, [("amount.png", _field_png(3))], layout=layout)
    process_batch(runtime, job_id, ids)
    (text,) = texts(runtime, job_id)
    assert len(text) == digits


def test_the_readers_own_reasons_survive_the_review_policy(runtime):
    from tests.support.marks import mark_scan

    marks = ["tap", "A", "X", "scribble"]
    files = [(f"{m}.png", mark_scan(m)) for m in marks] + [(n, d) for n, d, _ in scans(2)]
    job_id, ids = add_job(runtime, files, layout="auto")
    process_batch(runtime, job_id, ids)
    with runtime.sessions() as session:
        rows = {p.document_id: p for p in session.scalars(select(Prediction))}
    for doc_id in ids[: len(marks)]:  # no digit: flagged, and the reader's reason kept
        assert rows[doc_id].needs_review
        assert {"low_confidence", "not_a_digit"} <= set(rows[doc_id].review_reasons)
    for doc_id in ids[len(marks) :]:  # clean digits: accepted, no reasons
        assert not rows[doc_id].needs_review and rows[doc_id].review_reasons == []


def test_a_missing_file_fails_alone_and_the_timings_add_up(runtime):
    blank = io.BytesIO()
    Image.new("L", (40, 40), 255).save(blank, "PNG")
    files = [("gone.png", b"x"), ("blank.png", blank.getvalue())]
    files += [(n, d) for n, d, _ in scans(8)]
    job_id, ids = add_job(runtime, files)
    runtime.storage.delete(f"jobs/{job_id}/000000")  # the first stored object vanished
    started = datetime.now(UTC)
    outcome = process_batch(runtime, job_id, ids)
    elapsed = (datetime.now(UTC) - started).total_seconds()
    assert (outcome.succeeded, outcome.failed, outcome.skipped) == (8, 2, 0)
    with runtime.sessions() as session:
        failed = dict(session.execute(select(Document.filename, Document.error)
                                      .where(Document.status == "failed")).all())  # fmt: skip
    assert failed["gone.png"] == "the stored file is missing"
    assert failed["blank.png"] and "ink" in failed["blank.png"]  # the reader's own message
    # Per-document milliseconds of each stage: the batch's stage time over its 10 documents.
    timings = outcome.timings
    stages = [timings[k] for k in ("read_ms", "preprocess_ms", "inference_ms")]
    assert all(0 <= ms == round(ms, 4) for ms in stages)
    assert 0.01 < timings["preprocess_ms"] and 0.001 < timings["inference_ms"]
    assert sum(stages) * 10 / 1000 <= timings["total_s"] <= elapsed
    with runtime.sessions() as session:
        stored = session.scalars(select(Prediction.timings)).first()
    assert stored == {k: timings[k] for k in ("read_ms", "preprocess_ms", "inference_ms")}


def test_a_failure_fails_its_own_document_once_and_no_other(runtime):
    broken = ("broken.png", b"\x89PNG\r\n\x1a\n not really")
    job_id, ids = add_job(runtime, [broken] + [(n, d) for n, d, _ in scans(3)])
    other_job, other_ids = add_job(runtime, [(n, d) for n, d, _ in scans(2)])
    process_batch(runtime, job_id, ids[:2])  # the broken one and a good one of four
    with runtime.sessions() as session:
        status = dict(session.execute(select(Document.id, Document.status)).all())
    assert [status[i] for i in ids] == ["failed", "succeeded", "queued", "queued"]
    assert [status[i] for i in other_ids] == ["queued", "queued"]
    # Redelivered: nothing moves twice, the job's counts stay as they were.
    assert process_batch(runtime, job_id, ids[:2]).skipped == 2
    counted = job(runtime, job_id)
    assert (counted.succeeded, counted.failed) == (1, 1)


def test_the_worker_decodes_within_its_own_pixel_budget(runtime):
    runtime.max_pixels = 1_000  # a 56x56 scan has 3,136
    job_id, ids = add_job(runtime, [(n, d) for n, d, _ in scans(1)])
    process_batch(runtime, job_id, ids)
    with runtime.sessions() as session:
        code, error = session.execute(select(Document.error_code, Document.error)).one()
    assert code == "image_too_large" and "limit of 1000 pixels" in error


def test_an_unknown_layout_fails_every_document_with_its_name(runtime):
    job_id, ids = add_job(runtime, [(n, d) for n, d, _ in scans(2)], layout="gone_form")
    assert process_batch(runtime, job_id, ids).failed == 2
    with runtime.sessions() as session:
        rows = session.execute(select(Document.error_code, Document.error)).all()
    assert rows == [("unknown_layout", "unknown layout or document type 'gone_form'")] * 2


def test_fields_are_held_to_the_cards_field_threshold_unless_the_deployment_sets_one(runtime):
    from recognition.review import ReviewPolicy
    from worker.batch import _policies

    card = FieldPolicy.of(runtime.recognizer)
    digit, field = _policies(runtime)
    assert (digit.threshold, field.threshold) == (card.digit_threshold, card.field_threshold)
    assert card.field_threshold != card.digit_threshold
    runtime.review = ReviewPolicy(0.5, audit_rate=0.25)
    assert _policies(runtime) == (runtime.review, runtime.review)


def test_one_digit_is_held_to_the_digit_threshold_and_a_field_to_the_field_threshold(runtime):
    """Test digit scan 883 and the field of digits 1923-1924 read between the card's digit
    threshold (0.9281) and its field threshold (0.9313): the field goes to review, the digit
    not."""
    policy = FieldPolicy.of(runtime.recognizer)
    assert policy.digit_threshold < policy.field_threshold
    digit = [(n, d) for n, d, _ in scans(1, start=883)]
    job_id, ids = add_job(runtime, digit + [("field.png", _field_png(2, first=1923))], "auto")
    process_batch(runtime, job_id, ids)
    with runtime.sessions() as session:
        rows = {p.document_id: p for p in session.scalars(select(Prediction))}
    single, field = (rows[i] for i in ids)
    assert [len(row.text) for row in (single, field)] == [1, 2]
    for row in (single, field):
        assert policy.digit_threshold <= row.confidence < policy.field_threshold
    assert not single.needs_review and single.review_reasons == []
    assert field.needs_review and field.review_reasons == ["low_confidence"]


def test_a_deployment_threshold_overrides_the_readers_low_confidence(runtime):
    from recognition.review import ReviewPolicy

    runtime.review = ReviewPolicy(threshold=0.5)  # below these digits' 0.962 and 0.985
    files = [(n, d) for i in (78, 149) for n, d, _ in scans(1, start=i)]
    job_id, ids = add_job(runtime, files)
    assert process_batch(runtime, job_id, ids).needs_review == 0
    with runtime.sessions() as session:
        rows = session.execute(select(Prediction.needs_review, Prediction.review_reasons)).all()
    assert rows == [(False, [])] * 2
    runtime.review = ReviewPolicy(threshold=0.99)  # above them: low_confidence, once
    job_id, ids = add_job(runtime, files)
    assert process_batch(runtime, job_id, ids).needs_review == 2
    with runtime.sessions() as session:
        rows = session.execute(
            select(Prediction.needs_review, Prediction.review_reasons)
            .join(Document, Document.id == Prediction.document_id).where(Document.job_id == job_id)
        ).all()  # fmt: skip
    assert rows == [(True, ["low_confidence"])] * 2
