"""Each real-component fixture works: these fail loudly if the test environment is broken."""

from __future__ import annotations

import uuid

import pytest


def test_postgres_answers_sql_through_sqlalchemy_and_psycopg(postgres):
    from sqlalchemy import create_engine, text

    engine = create_engine(postgres.url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar_one() == 1
            assert conn.execute(text("SHOW server_version_num")).scalar_one().startswith("15")
            assert conn.execute(text("SHOW fsync")).scalar_one() == "off"
    finally:
        engine.dispose()


def test_postgres_create_database_gives_a_fresh_empty_one(postgres):
    from sqlalchemy import create_engine, text

    url = postgres.create_database("fresh_check")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE marker (id int)"))
    finally:
        engine.dispose()

    engine = create_engine(postgres.create_database("fresh_check"))  # same name again: emptied
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT current_database()")).scalar_one() == "fresh_check"
            assert conn.execute(text("SELECT to_regclass('marker')")).scalar_one() is None
    finally:
        engine.dispose()
    assert postgres.create_database() != postgres.create_database()


def test_redis_pings_and_stores(redis):
    import redis as redis_client

    client = redis_client.Redis.from_url(redis.url)
    try:
        assert client.ping() is True
        client.set("digitflow:probe", b"7")
        assert client.get("digitflow:probe") == b"7"
        assert client.config_get("save") == {"save": ""}
    finally:
        client.close()


def test_azurite_round_trips_a_blob(azurite):
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    container = service.create_container(f"probe-{uuid.uuid4().hex[:12]}")
    payload = bytes(range(256)) * 40
    container.upload_blob("scans/cheque-1.png", payload)
    assert container.download_blob("scans/cheque-1.png").readall() == payload
    assert [b.name for b in container.list_blobs()] == ["scans/cheque-1.png"]
    container.delete_container()


def test_chromium_renders_a_page(browser):
    page = browser.new_page()
    try:
        page.goto(
            "data:text/html,<title>probe</title><canvas data-testid=c width=28 height=28></canvas>"
            "<script>document.title = 'js ' + (6 * 7)</script>"
        )
        assert page.title() == "js 42"
        assert page.get_by_test_id("c").bounding_box()["width"] == pytest.approx(28)
        assert page.screenshot()[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        page.close()


def test_chromium_path_is_debians(chromium_path):
    assert chromium_path == "/usr/bin/chromium"
