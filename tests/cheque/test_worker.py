"""A bulk job of whole cheques through the worker's batch step, against Postgres and SQLite."""

from sqlalchemy import select

from digitflow.db import Prediction
from recognition.doctypes import DocumentTypes
from tests.worker.test_batch import add_job, job, recognizer, runtime  # noqa: F401
from worker.batch import process_batch


def test_cheque_job_stores_the_amount_and_its_box(runtime, cheques):  # noqa: F811
    runtime.document_types = DocumentTypes(None)
    files = [(f"cheque{i}.jpg", c.image) for i, c in enumerate(cheques[:12])]
    files.append(("broken.jpg", b"\xff\xd8 not a jpeg"))
    job_id, doc_ids = add_job(runtime, files, layout="cheque")
    outcome = process_batch(runtime, job_id, doc_ids)
    assert (outcome.succeeded, outcome.failed) == (12, 1)
    with runtime.sessions() as session:
        rows = {p.document_id: p for p in session.scalars(select(Prediction))}
    exact = 0
    for doc_id, cheque in zip(doc_ids, cheques[:12], strict=False):
        row = rows[doc_id]
        amount = row.fields["amount"]
        assert row.text == amount["text"] and row.digits == amount["digits"]
        assert amount["box"]["width"] > 0
        # The deployment's review policy has the last word on the row (it re-decides
        # low_confidence with its own threshold); any other reason of the reader still flags.
        if set(amount["review_reasons"]) - {"low_confidence"}:
            assert row.needs_review
        exact += row.text == cheque.amount
    assert exact >= 9
    assert job(runtime, job_id).succeeded == 12


def test_unknown_document_type_fails_each_document(runtime, cheques):  # noqa: F811
    job_id, doc_ids = add_job(runtime, [("a.jpg", cheques[0].image)], layout="gone_form")
    outcome = process_batch(runtime, job_id, doc_ids)
    assert outcome.failed == 1 and outcome.succeeded == 0
