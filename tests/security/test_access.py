"""API keys, tenants and roles through the real app: 401 / 403 / 404, revocation, open mode."""

import csv
import io
import subprocess
import sys
import time

import pytest
from fastapi.testclient import TestClient

from api.main import RefusingOpenMode, create_app
from tests.jobs.support import REPO, scans, worker_env
from tests.security.conftest import REFRESH, security_settings


def upload(client, headers, count=2, **extra):
    files = [("files", (n, d, "image/png")) for n, d, _ in scans(count)]
    return client.post("/jobs", files=files, headers={**headers, **extra})


def test_open_mode_without_keys_is_said_in_ready_and_lets_everyone_in(client):
    assert client.get("/ready").json()["auth"] == "open"
    assert upload(client, {}).status_code == 202
    assert client.get("/jobs").status_code == 200


def test_missing_malformed_and_unknown_keys_are_401_with_www_authenticate(client, make_key):
    make_key("acme", "submitter")
    assert client.get("/ready").json()["auth"] == "keys"
    bogus = "df_0123456789ab_" + "A" * 43
    for headers in ({}, {"Authorization": "Bearer nonsense"}, {"Authorization": f"Bearer {bogus}"},
                    {"Authorization": "Basic dXNlcjpwYXNz"}):  # fmt: skip
        response = client.get("/jobs", headers=headers)
        assert response.status_code == 401, (headers, response.text)
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["code"] == "unauthenticated"


def test_a_right_id_with_a_wrong_secret_is_refused(client, make_key):
    good = make_key("acme", "submitter")
    key = good["Authorization"].removeprefix("Bearer ")
    wrong = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    assert client.get("/jobs", headers=good).status_code == 200
    assert client.get("/jobs", headers={"Authorization": f"Bearer {wrong}"}).status_code == 401
    assert client.get("/jobs", headers=good).status_code == 200


def test_tenants_never_see_each_others_jobs(client, make_key):
    alice, bob = make_key("acme", "submitter"), make_key("globex", "submitter")
    job = upload(client, alice).json()
    for path in (f"/jobs/{job['id']}", f"/jobs/{job['id']}/results",
                 f"/jobs/{job['id']}/results?format=csv"):  # fmt: skip
        assert client.get(path, headers=alice).status_code == 200
        response = client.get(path, headers=bob)
        assert response.status_code == 404, path
        assert response.json()["code"] == "job_not_found"
    assert [j["id"] for j in client.get("/jobs", headers=alice).json()["items"]] == [job["id"]]
    assert client.get("/jobs", headers=bob).json()["items"] == []


def test_idempotency_keys_never_cross_tenants(client, make_key):
    alice, bob = make_key("acme", "submitter"), make_key("globex", "submitter")
    first = upload(client, alice, **{"Idempotency-Key": "order-1"}).json()
    again = upload(client, alice, **{"Idempotency-Key": "order-1"}).json()
    other = upload(client, bob, **{"Idempotency-Key": "order-1"})
    assert again["id"] == first["id"]
    assert other.status_code == 202 and other.json()["id"] != first["id"]
    assert client.get(f"/jobs/{other.json()['id']}", headers=alice).status_code == 404


def test_roles_reviewer_cannot_create_jobs_admin_can(client, make_key):
    reviewer, admin = make_key("acme", "reviewer"), make_key("acme", "admin")
    response = upload(client, reviewer)
    assert response.status_code == 403 and response.json()["code"] == "forbidden"
    assert upload(client, admin).status_code == 202


def test_revocation_takes_effect_within_seconds(client, make_key):
    alice = make_key("acme", "submitter")
    assert client.get("/jobs", headers=alice).status_code == 200
    make_key.revoke(alice)  # as `digitflow keys revoke` does, from another process
    deadline = time.monotonic() + 5
    while client.get("/jobs", headers=alice).status_code == 200:
        assert time.monotonic() < deadline, "revoked key still accepted after 5 s"
        time.sleep(0.05)
    assert client.get("/jobs", headers=alice).status_code == 401


def test_admin_manages_its_tenants_keys_only(client, make_key):
    admin, other_admin = make_key("acme", "admin"), make_key("globex", "admin")
    created = client.post("/keys", json={"role": "submitter", "name": "scanner 3"}, headers=admin)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["tenant_id"] == "acme" and body["key"].startswith("df_")
    new = {"Authorization": f"Bearer {body['key']}"}
    assert upload(client, new).status_code == 202
    listed = client.get("/keys", headers=admin).json()["items"]
    assert {k["tenant_id"] for k in listed} == {"acme"} and "key" not in listed[0]
    assert "secret_hash" not in created.text
    assert client.delete(f"/keys/{body['key_id']}", headers=other_admin).status_code == 404
    assert client.post("/keys", json={"role": "operator"}, headers=admin).status_code == 403
    assert client.get("/keys", headers=new).status_code == 403  # a submitter
    assert client.delete(f"/keys/{body['key_id']}", headers=admin).status_code == 204
    assert upload(client, new).status_code == 401  # at once in the process that revoked it


def test_per_key_rate_limit_answers_429_with_retry_after(tmp_path, make_key):
    settings = security_settings(tmp_path, rate_limit_per_key="3/minute")
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        alice = make_key("acme", "submitter")
        codes = [client.get("/jobs", headers=alice).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        response = client.get("/jobs", headers=alice)
        assert 1 <= int(response.headers["retry-after"]) <= 60
        assert response.json()["code"] == "rate_limited"


def test_guessing_keys_is_cut_off_per_address(tmp_path, make_key):
    settings = security_settings(tmp_path, rate_limit_refused_keys_per_address="3/minute")
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        alice = make_key("acme", "submitter")
        assert client.get("/jobs", headers=alice).status_code == 200
        guess = alice["Authorization"][:-6] + "guess0"
        codes = [client.get("/jobs", headers={"Authorization": guess[:-1] + str(i)}).status_code
                 for i in range(5)]  # fmt: skip
        assert codes == [401, 401, 401, 429, 429]
        assert client.get("/jobs", headers=alice).status_code == 200  # verified before: cached


def test_per_address_limit_covers_the_open_canvas_path_and_overrides_lift_it(tmp_path):
    settings = security_settings(tmp_path, rate_limit_per_address="2/minute")
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        codes = [client.post("/predict-drawing", json={"image": "x"}).status_code for _ in range(3)]
        assert codes[-1] == 429 and codes[0] != 429
        assert client.get("/health").status_code == 200  # probes are never limited
    lifted = security_settings(tmp_path, rate_limit_per_address="2/minute",
                               rate_limit_overrides={"testclient": "1000/minute"})  # fmt: skip
    with TestClient(create_app(lifted), raise_server_exceptions=False) as client:
        codes = [client.post("/predict-drawing", json={"image": "x"}).status_code for _ in range(5)]
        assert 429 not in codes


def test_production_refuses_to_start_open(tmp_path, make_key):
    settings = security_settings(tmp_path, digitflow_env="production")
    with pytest.raises(RefusingOpenMode):
        with TestClient(create_app(settings)):
            pass
    make_key("acme", "admin")
    with TestClient(create_app(settings)) as client:
        assert client.get("/ready").json()["auth"] == "keys"


def run_cli(settings, *args) -> subprocess.CompletedProcess:
    env = worker_env(data_dir=settings.data_dir)
    command = [sys.executable, "-m", "digitflow.cli", "keys", *args]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)


def test_cli_creates_lists_and_revokes_keys(client, settings):
    made = run_cli(settings, "create", "--tenant", "acme", "--role", "submitter", "--name", "ci")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip().splitlines()[-1]
    assert key.startswith("df_") and " " not in key
    time.sleep(REFRESH * 1.5)
    headers = {"Authorization": f"Bearer {key}"}
    assert upload(client, headers).status_code == 202
    listing = run_cli(settings, "list").stdout
    key_id = key.split("_")[1]
    assert key_id in listing and "acme" in listing and key.split("_", 2)[2] not in listing
    assert run_cli(settings, "revoke", key_id).returncode == 0
    assert "revoked" in run_cli(settings, "list").stdout
    time.sleep(REFRESH * 2)
    assert client.get("/jobs", headers=headers).status_code == 401
    assert run_cli(settings, "revoke", "000000000000").returncode == 1
    bad = run_cli(settings, "create", "--tenant", "Bad Tenant!", "--role", "admin")
    assert bad.returncode == 2 and "invalid tenant" in bad.stderr


def test_keys_are_stored_hashed(client, settings, make_key):
    headers = make_key("acme", "submitter")
    secret = headers["Authorization"].split("_", 2)[2]
    database = (settings.data_dir / "digitflow.db").read_bytes()
    wal = settings.data_dir / "digitflow.db-wal"
    assert secret.encode() not in database + (wal.read_bytes() if wal.exists() else b"")


def test_csv_export_of_a_tenant_needs_its_key(client, make_key):
    alice = make_key("acme", "submitter")
    job = upload(client, alice).json()
    response = client.get(f"/jobs/{job['id']}/results?format=csv", headers=alice)
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0][0] == "position" and len(rows) == 3
    assert client.get(f"/jobs/{job['id']}/results?format=csv").status_code == 401


def test_in_memory_windows_answer_like_the_limits_library():
    from limits import parse
    from limits.storage import MemoryStorage
    from limits.strategies import FixedWindowRateLimiter

    from api.security import LocalWindows

    ours, theirs = LocalWindows(), FixedWindowRateLimiter(MemoryStorage())
    item = parse("5/hour")
    for who in ("a", "b", "a", "a", "a", "a", "a", "b", "a"):
        assert ours.test(item, "k", who) == theirs.test(item, "k", who)
        assert ours.hit(item, "k", who) == theirs.hit(item, "k", who), who
