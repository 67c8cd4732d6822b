"""No request the jobs endpoints' schema allows makes them answer 5xx (schemathesis)."""

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings

from api.main import create_app
from digitflow.db.migrations import upgrade
from tests.jobs.support import api_settings

JOBS = r"^/jobs"

app_settings = api_settings(data_dir=Path(tempfile.mkdtemp()), max_job_files=20)
upgrade(app_settings.resolved_database_url)
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(app_settings)).include(
    path_regex=JOBS
)


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_error_for_any_request_the_schema_allows(case):
    case.call_and_validate(checks=[schemathesis.checks.not_a_server_error])
