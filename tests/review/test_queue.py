"""The review queue end to end against Postgres: flagging, exclusive leased claims, decisions
that update results, counts and history, expired leases, tenants, double-keying, undo."""

import uuid
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest

from api.review.dependencies import utc_now
from recognition.review import ReviewPolicy
from tests.review.conftest import REVIEWERS, as_, claim_all_at_once, process, submit

EVERYTHING = ReviewPolicy(threshold=1.0)  # every reading is below 1.0: all go to review


@contextmanager
def clock_ahead(client, seconds: float):
    """The API's clock (NowDep) `seconds` ahead, for the block."""
    client.app.dependency_overrides[utc_now] = lambda: (
        datetime.now(UTC) + timedelta(seconds=seconds)
    )
    try:
        yield
    finally:
        del client.app.dependency_overrides[utc_now]


def results(client, job_id: str) -> list[dict]:
    response = client.get(
        f"/jobs/{job_id}/results", params={"limit": 1000}, headers=as_("submitter")
    )
    assert response.status_code == 200, response.text
    return response.json()["items"]


def test_flagged_documents_and_only_they_appear_in_the_queue(client, settings, recognizer):
    # The shipped threshold flags only what the model is unsure of; audit picks 30% of the rest.
    job_id = submit(client, 60)
    process(settings, recognizer, job_id, ReviewPolicy(recognizer.threshold, audit_rate=0.3))
    rows = results(client, job_id)
    flagged = {r["document_id"] for r in rows if r["needs_review"]}
    assert 5 <= len(flagged) < 60  # some audited, most not
    queue = client.get("/review", params={"job_id": job_id, "limit": 500}).json()
    assert {item["document_id"] for item in queue["items"]} == flagged
    assert queue["size"] == len(flagged) and queue["claimed"] == 0
    assert queue["oldest_age_seconds"] >= 0
    confidences = [item["confidence"] for item in queue["items"]]
    assert confidences == sorted(confidences)  # lowest confidence first
    assert all(item["reasons"] for item in queue["items"])
    assert {"audit"} <= {reason for item in queue["items"] for reason in item["reasons"]}
    statuses = {r["review_status"] for r in rows if not r["needs_review"]}
    assert statuses == {"not_needed"}
    job = client.get(f"/jobs/{job_id}", headers=as_("submitter")).json()
    assert (job["needs_review"], job["reviewed"], job["review_pending"]) == (
        len(flagged),
        0,
        len(flagged),
    )
    assert job["review_complete"] is False


def test_eight_reviewers_claiming_at_once_get_disjoint_items(client, settings, recognizer):
    job_id = submit(client, 100)
    process(settings, recognizer, job_id, EVERYTHING)

    first = claim_all_at_once(client, 12)  # 96 of 100
    assert all(len(docs) == 12 for docs in first.values())
    assert len(set().union(*first.values())) == 96  # disjoint
    # Again, asking for 13: each keeps its own 12 and they fight over the last 4.
    second = claim_all_at_once(client, 13)
    assert all(first[who] <= second[who] for who in REVIEWERS)
    assert sum(len(docs) for docs in second.values()) == 100
    assert len(set().union(*second.values())) == 100
    queue = client.get("/review", params={"job_id": job_id}).json()
    assert (queue["size"], queue["claimed"]) == (100, 100)


def test_decisions_update_results_counts_and_history(client, settings, recognizer):
    job_id = submit(client, 6)
    process(settings, recognizer, job_id, EVERYTHING)
    items = client.post("/review/claim", json={"limit": 6}, headers=as_("r1")).json()["items"]
    assert len(items) == 6
    a, b, c = items[0], items[1], items[2]
    wrong = str((int(b["model_text"]) + 1) % 10)
    assert (
        client.post(
            f"/review/{a['document_id']}", json={"action": "accept"}, headers=as_("r1")
        ).json()["review_status"]
        == "accepted"
    )
    corrected = client.post(
        f"/review/{b['document_id']}", json={"action": "correct", "text": wrong}, headers=as_("r1")
    )
    assert corrected.status_code == 200, corrected.text
    assert (corrected.json()["review_status"], corrected.json()["final_text"]) == (
        "corrected",
        wrong,
    )
    assert (
        client.post(
            f"/review/{c['document_id']}", json={"action": "unreadable"}, headers=as_("r1")
        ).status_code
        == 200
    )

    by_id = {r["document_id"]: r for r in results(client, job_id)}
    assert (by_id[a["document_id"]]["final_text"], by_id[a["document_id"]]["review_status"]) == (
        a["model_text"],
        "accepted",
    )
    assert by_id[b["document_id"]]["model_text"] == b["model_text"]
    assert by_id[b["document_id"]]["final_text"] == wrong
    assert by_id[b["document_id"]]["reviewed_by"] == "rev1"
    assert (by_id[c["document_id"]]["review_status"], by_id[c["document_id"]]["final_text"]) == (
        "unreadable",
        None,
    )
    assert by_id[items[3]["document_id"]]["review_status"] == "pending"
    csv_text = client.get(
        f"/jobs/{job_id}/results", params={"format": "csv"}, headers=as_("submitter")
    ).text
    header = csv_text.splitlines()[0].split(",")
    assert {"model_text", "final_text", "review_status", "reviewed_by"} <= set(header)
    assert f",{wrong},corrected,rev1," in csv_text

    job = client.get(f"/jobs/{job_id}", headers=as_("submitter")).json()
    assert (job["reviewed"], job["review_pending"], job["review_complete"]) == (3, 3, False)
    history = client.get(f"/documents/{b['document_id']}/history", headers=as_("submitter")).json()
    (entry,) = history["entries"]
    assert (entry["reviewer_name"], entry["action"], entry["text"]) == ("rev1", "correct", wrong)
    assert entry["before"] == {"status": "pending", "final_text": None}
    assert entry["after"] == {"status": "corrected", "final_text": wrong}
    assert entry["reasons"] == ["low_confidence"] and entry["model_version"] == recognizer.version
    assert entry["lease_expires_at"] is not None

    for item in items[3:]:
        client.post(f"/review/{item['document_id']}", json={"action": "accept"}, headers=as_("r1"))
    job = client.get(f"/jobs/{job_id}", headers=as_("submitter")).json()
    assert (job["reviewed"], job["review_pending"], job["review_complete"]) == (6, 0, True)
    assert client.get("/review", params={"job_id": job_id}).json()["size"] == 0


def test_only_the_claimant_decides_and_bad_input_is_refused(client, settings, recognizer):
    job_id = submit(client, 2)
    process(settings, recognizer, job_id, EVERYTHING)
    first = client.post("/review/claim", json={"limit": 1}, headers=as_("r1")).json()["items"][0]
    url = f"/review/{first['document_id']}"
    refused = client.post(url, json={"action": "accept"}, headers=as_("r2"))
    assert (refused.status_code, refused.json()["code"]) == (409, "not_claimant")
    for body in ({"action": "correct", "text": "12a"}, {"action": "correct"}, {"action": "maybe"},
                 {"action": "correct", "text": "٣"}):  # fmt: skip
        response = client.post(url, json=body, headers=as_("r1"))
        assert (response.status_code, response.json()["code"]) == (422, "validation_error"), body
    assert client.post(url, json={"action": "accept"}, headers=as_("r1")).status_code == 200
    again = client.post(url, json={"action": "accept"}, headers=as_("r1"))
    assert (again.status_code, again.json()["code"]) == (409, "already_decided")
    missing = client.post(f"/review/{uuid.uuid4()}", json={"action": "accept"}, headers=as_("r1"))
    assert (missing.status_code, missing.json()["code"]) == (404, "document_not_found")
    forbidden = client.get("/review", headers=as_("submitter"))
    assert forbidden.status_code == 403


def test_an_expired_lease_returns_its_items_by_itself(client, settings, recognizer):
    job_id = submit(client, 4)
    process(settings, recognizer, job_id, EVERYTHING)
    held = client.post("/review/claim", json={"limit": 4}, headers=as_("r1")).json()
    assert len(held["items"]) == 4
    assert client.post("/review/claim", json={"limit": 4}, headers=as_("r2")).json()["items"] == []
    renewed = client.post("/review/claims/renew", json={}, headers=as_("r1")).json()
    assert renewed["renewed"] == 4

    lease = settings.review_lease_seconds
    with clock_ahead(client, lease + 5):  # r1's lease has run out: free again, by itself
        taken = client.post("/review/claim", json={"limit": 4}, headers=as_("r2")).json()["items"]
        assert {i["document_id"] for i in taken} == {i["document_id"] for i in held["items"]}
        url = f"/review/{taken[0]['document_id']}"
        late = client.post(url, json={"action": "accept"}, headers=as_("r1"))
        assert (late.status_code, late.json()["code"]) == (409, "not_claimant")
    with clock_ahead(client, 2 * lease + 10):  # and now r2's, with nobody else claiming
        late = client.post(url, json={"action": "accept"}, headers=as_("r2"))
        assert (late.status_code, late.json()["code"]) == (409, "lease_expired")


def test_another_tenants_reviewer_sees_none_of_it(client, settings, recognizer):
    job_id = submit(client, 3)
    process(settings, recognizer, job_id, EVERYTHING)
    theirs = submit(client, 2, start=10, who="other-submitter")
    process(settings, recognizer, theirs, EVERYTHING)
    queue = client.get("/review", headers=as_("other")).json()
    assert queue["size"] == 2 and {i["job_id"] for i in queue["items"]} == {theirs}
    assert (
        client.get("/review", params={"job_id": job_id}, headers=as_("other")).json()["size"] == 0
    )
    claimed = client.post("/review/claim", json={"limit": 10}, headers=as_("other")).json()["items"]
    assert {i["job_id"] for i in claimed} == {theirs}
    ours = client.get("/review", params={"job_id": job_id}).json()["items"][0]["document_id"]
    for method, url, body in [
        ("post", f"/review/{ours}", {"action": "accept"}),
        ("post", f"/review/{ours}/undo", None),
        ("get", f"/documents/{ours}/image", None),
        ("get", f"/documents/{ours}/history", None),
    ]:
        response = client.request(method, url, json=body, headers=as_("other"))
        assert (response.status_code, response.json()["code"]) == (404, "document_not_found"), url
    metrics = client.get("/review/metrics", headers=as_("other")).json()
    assert (metrics["flagged"], metrics["queue_size"], metrics["claimed"]) == (2, 2, 2)


def test_image_is_the_original_scan_for_submitters_too(client, settings, recognizer):
    job_id = submit(client, 1)
    process(settings, recognizer, job_id, EVERYTHING)
    doc = results(client, job_id)[0]
    response = client.get(f"/documents/{doc['document_id']}/image", headers=as_("submitter"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.content.startswith(b"\x89PNG")
    from tests.jobs.support import scans

    assert response.content == scans(1)[0][1]
    assert response.headers["x-content-type-options"] == "nosniff"


def test_double_keying_needs_two_agreeing_reviewers_and_a_third_on_disagreement(
    client, settings, recognizer
):
    job_id = submit(client, 2)
    process(settings, recognizer, job_id, ReviewPolicy(1.0, double_key_above_length=0))
    first, second = client.post("/review/claim", json={"limit": 2}, headers=as_("r1")).json()[
        "items"
    ]
    assert first["keyings_required"] == 2
    one = client.post(
        f"/review/{first['document_id']}",
        json={"action": "correct", "text": "42"},
        headers=as_("r1"),
    ).json()
    assert (one["outcome"], one["review_status"], one["final_text"]) == (
        "awaiting_second_keying",
        "pending",
        None,
    )
    client.post(
        f"/review/{second['document_id']}",
        json={"action": "correct", "text": "7"},
        headers=as_("r1"),
    )
    # r1 never gets its own keyed items back; r2 does.
    assert client.post("/review/claim", json={"limit": 5}, headers=as_("r1")).json()["items"] == []
    got = client.post("/review/claim", json={"limit": 5}, headers=as_("r2")).json()["items"]
    assert len(got) == 2
    agree = client.post(
        f"/review/{first['document_id']}",
        json={"action": "correct", "text": "42"},
        headers=as_("r2"),
    ).json()
    assert (agree["outcome"], agree["review_status"], agree["final_text"]) == (
        "final",
        "corrected",
        "42",
    )
    differ = client.post(
        f"/review/{second['document_id']}",
        json={"action": "correct", "text": "1"},
        headers=as_("r2"),
    ).json()
    assert (differ["outcome"], differ["review_status"]) == ("disagreement", "pending")
    third = client.post("/review/claim", json={"limit": 5}, headers=as_("r3")).json()["items"]
    assert [i["document_id"] for i in third] == [second["document_id"]]
    final = client.post(
        f"/review/{second['document_id']}",
        json={"action": "correct", "text": "7"},
        headers=as_("r3"),
    ).json()
    assert (final["outcome"], final["final_text"]) == ("final", "7")
    metrics = client.get("/review/metrics").json()
    assert (metrics["double_keyed"], metrics["agreement_rate"]) == (2, 0.5)


def test_undo_takes_back_the_last_decision_and_reclaims_the_item(client, settings, recognizer):
    job_id = submit(client, 2)
    process(settings, recognizer, job_id, EVERYTHING)
    item = client.post("/review/claim", json={"limit": 1}, headers=as_("r1")).json()["items"][0]
    url = f"/review/{item['document_id']}"
    client.post(url, json={"action": "unreadable"}, headers=as_("r1"))
    assert client.post(f"{url}/undo", headers=as_("r2")).json()["code"] == "nothing_to_undo"
    undone = client.post(f"{url}/undo", headers=as_("r1"))
    assert undone.status_code == 200, undone.text
    assert (undone.json()["review_status"], undone.json()["outcome"]) == ("pending", "undone")
    assert client.get(f"/jobs/{job_id}", headers=as_("submitter")).json()["reviewed"] == 0
    assert client.post(f"{url}/undo", headers=as_("r1")).status_code == 409  # once
    assert (
        client.post(url, json={"action": "accept"}, headers=as_("r1")).json()["review_status"]
        == "accepted"
    )
    actions = [
        e["action"]
        for e in client.get(f"/documents/{item['document_id']}/history").json()["entries"]
    ]
    assert actions == ["unreadable", "undo", "accept"]


def test_metrics_estimate_the_auto_accept_error_from_the_audit(client, settings, recognizer):
    job_id = submit(client, 30)
    process(settings, recognizer, job_id, ReviewPolicy(0.0, audit_rate=1.0))  # all audited
    items = client.post("/review/claim", json={"limit": 30}, headers=as_("r1")).json()["items"]
    assert len(items) == 30 and all(i["reasons"] == ["audit"] for i in items)
    for n, item in enumerate(items):
        body = (
            {"action": "correct", "text": "0" + item["model_text"]}
            if n < 3
            else {"action": "accept"}
        )
        assert (
            client.post(f"/review/{item['document_id']}", json=body, headers=as_("r1")).status_code
            == 200
        )
    metrics = client.get("/review/metrics", params={"job_id": job_id}).json()
    error = metrics["auto_accept_error"]
    assert (error["sample"], error["errors"], error["estimate"]) == (30, 3, pytest.approx(0.1))
    assert error["low"] == pytest.approx(0.0346, abs=1e-3) and error["high"] == pytest.approx(
        0.2562, abs=1e-3
    )
    assert metrics["review_rate"] == 1.0 and metrics["queue_size"] == 0
    (pace,) = metrics["reviewers"]
    assert (pace["reviewer_name"], pace["decisions"], pace["last_hour"]) == ("rev1", 30, 30)
    assert pace["per_hour"] > 0


def test_oldest_first_takes_the_earlier_jobs_items(client, settings, recognizer):
    older = submit(client, 3)
    process(settings, recognizer, older, EVERYTHING)
    newer = submit(client, 3, start=50)
    process(settings, recognizer, newer, EVERYTHING)
    queue = client.get("/review", params={"order": "oldest"}).json()["items"]
    assert [item["job_id"] for item in queue] == [older] * 3 + [newer] * 3
    body = {"limit": 3, "order": "oldest"}
    claimed = client.post("/review/claim", json=body, headers=as_("r1")).json()["items"]
    assert {item["job_id"] for item in claimed} == {older}
    by_job = client.post("/review/claim", json={"limit": 9, "job_id": newer}, headers=as_("r2"))
    assert {item["job_id"] for item in by_job.json()["items"]} == {newer}
    assert len(by_job.json()["items"]) == 3
