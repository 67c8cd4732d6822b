"""The six faults of tests/reliability, at full size: a job of `--documents` scans (10,000 by
default) on Postgres + Redis + one API process + one Celery worker, one fault each. Writes the
"Faults" section of docs/reliability.md: what the client was answered, the time from the fault
to the job's end, and the database's counts.

    .venv/bin/python benchmarks/chaos.py [--documents 10000] [--only NAME]
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from benchmarks.mixed_load import RELIABILITY_HEADER, RELIABILITY_MD  # noqa: E402
from devtools import chaos  # noqa: E402
from devtools.report import write_section  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--documents", type=int, default=10_000)
    parser.add_argument("--only", help="run only scenarios whose name contains this")
    args = parser.parse_args()
    rows, load_before = [], os.getloadavg()[0]
    with chaos.servers() as (postgres, redis):
        for scenario in chaos.SCENARIOS:
            if args.only and args.only not in scenario.__name__:
                continue
            with chaos.platform(postgres, redis, Path(tempfile.mkdtemp())) as platform:
                outcome = scenario(platform, args.documents)
            print(outcome, flush=True)
            rows.append(outcome)
    lines = [
        "| fault | answers to the client | seconds from fault to job end | documents / results "
        "/ failed | lost / duplicated |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        facts = row.facts
        lost = args.documents - facts["succeeded"] - facts["failed"]
        duplicated = facts["predictions"] - facts["distinct_results"]
        lines.append(
            f"| {row.fault} | {', '.join(row.answers)} | {row.seconds_after_fault:.1f} | "
            f"{facts['documents']} / {facts['distinct_results']} / {facts['failed']} | "
            f"{lost} / {duplicated} |"
        )
    body = (
        f"`benchmarks/chaos.py --documents {args.documents}` (tests/reliability runs the same "
        "scenarios at 2,000 documents in CI): Postgres 15, Redis 7 (no persistence), one API "
        "process, one Celery worker (2 prefork children), batches of 64, sweeper re-sending "
        "after 5 s. Load average (1 min) when it started: "
        f"{load_before:.1f}; the machine is shared, so times are upper bounds.\n\n"
        + "\n".join(lines)
    )
    write_section("faults", "Faults during a real job", body, RELIABILITY_MD, RELIABILITY_HEADER)


if __name__ == "__main__":
    main()
