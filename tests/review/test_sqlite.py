"""The embedded default (SQLite): claims stay exclusive through the guarded UPDATE alone."""

import pytest
from fastapi.testclient import TestClient

from api.auth.dependencies import current_principal
from api.main import create_app
from digitflow.db.migrations import upgrade
from recognition.review import ReviewPolicy
from tests.jobs.support import api_settings
from tests.review.conftest import _principal, as_, claim_all_at_once, process, submit


@pytest.fixture
def sqlite_client(tmp_path):
    settings = api_settings(data_dir=tmp_path)
    upgrade(settings.resolved_database_url)
    app = create_app(settings)
    app.dependency_overrides[current_principal] = _principal
    with TestClient(app) as client:
        yield client, settings


def test_concurrent_claims_on_sqlite_are_disjoint_and_decisions_work(sqlite_client, recognizer):
    client, settings = sqlite_client
    job_id = submit(client, 40)
    process(settings, recognizer, job_id, ReviewPolicy(threshold=1.0))
    claimed = claim_all_at_once(client, 6)
    assert sum(len(docs) for docs in claimed.values()) == len(set().union(*claimed.values()))
    assert len(set().union(*claimed.values())) == 40  # 8 x 6 = 48 asked for, 40 there
    # 8 x 6 asked for 40 items: someone may get none; decide one of a reviewer who got some.
    reviewer, docs = next((who, docs) for who, docs in sorted(claimed.items()) if docs)
    mine = sorted(docs)[0]
    decided = client.post(f"/review/{mine}", json={"action": "accept"}, headers=as_(reviewer))
    assert decided.json()["review_status"] == "accepted"
    queue = client.get("/review", params={"order": "oldest"}).json()
    assert queue["size"] == 39 and queue["oldest_age_seconds"] >= 0
    assert client.get("/review/metrics").json()["decided"] == 1
