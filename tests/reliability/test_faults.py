"""The six faults of the reliability issue, each during a real 2,000-document job on Postgres +
Redis + a real API process + a real Celery worker (benchmarks/chaos.py runs them at 10,000 and
writes docs/reliability.md). `make chaos` runs only these."""

import pytest

from devtools import chaos
from tests.conftest import require

pytestmark = [pytest.mark.slow, pytest.mark.chaos]

DOCUMENTS = 2000


@pytest.fixture(scope="module")
def servers():
    require("postgres")
    require("redis")
    with chaos.servers() as found:
        yield found


@pytest.mark.parametrize("scenario", chaos.SCENARIOS, ids=lambda s: s.__name__)
def test_fault_loses_and_duplicates_nothing(scenario, servers, tmp_path):
    postgres, redis = servers
    with chaos.platform(postgres, redis, tmp_path) as platform:
        outcome = scenario(platform, DOCUMENTS)
    # verify() inside the scenario asserted the invariants; these are what the client saw.
    assert outcome.facts["total"] == outcome.facts["succeeded"] == DOCUMENTS
    assert outcome.answers[-1] == "202"
    print(
        f"{outcome.fault}: finished {outcome.seconds_after_fault:.1f}s after the fault; "
        f"answers {outcome.answers}"
    )
