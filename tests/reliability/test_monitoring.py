"""The dashboard and alert rules name only series the platform exports; logs are JSON lines."""

import json
import logging
import re
from pathlib import Path

import yaml
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

import api.metrics  # noqa: F401 - registers the API's series
import worker.metrics  # noqa: F401 - registers the workers' series
from api.main import create_app
from digitflow.db.migrations import upgrade
from digitflow.embedded import embedded_redis
from digitflow.logs import configure_logging
from tests.jobs.support import api_settings

MONITORING = Path(__file__).resolve().parents[2] / "infra" / "monitoring"
SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")


def exported() -> set[str]:
    names = {"digitflow_queue_depth"}  # collected at scrape time from the broker
    for metric in REGISTRY.collect():
        names.update(metric.name + suffix for suffix in ("", *SUFFIXES))
    return names


def named_in(text: str) -> set[str]:
    found = set(re.findall(r"\bdigitflow_[a-z_]+", text))
    return {name for name in found if not name.startswith("digitflow_api")}


def test_alerts_and_dashboard_use_exported_series():
    rules = yaml.safe_load((MONITORING / "alerts.yaml").read_text())
    exprs = " ".join(rule["expr"] for group in rules["groups"] for rule in group["rules"])
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    targets = " ".join(t["expr"] for panel in dashboard["panels"] for t in panel["targets"])
    names = exported()
    for text in (exprs, targets):
        used = named_in(text)
        assert used, "no digitflow series referenced"
        missing = used - names
        assert not missing, f"series not exported: {missing}"


def test_log_lines_are_json_with_the_job_id(capsys):
    configure_logging("json", "INFO")
    try:
        logging.getLogger("digitflow.worker").info("batch done", extra={"job_id": "j-1"})
        line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    finally:
        logging.getLogger().handlers[:] = []
    assert line["message"] == "batch done" and line["job_id"] == "j-1"
    assert line["level"] == "INFO" and line["logger"] == "digitflow.worker"


def test_queue_depth_of_an_empty_redis_queue_is_zero(tmp_path):
    settings = api_settings(data_dir=tmp_path, embedded_broker="redis")
    upgrade(settings.resolved_database_url)
    with embedded_redis(settings), TestClient(create_app(settings)) as client:
        text = client.get("/metrics").text
    assert 'digitflow_queue_depth{queue="documents"} 0.0' in text
