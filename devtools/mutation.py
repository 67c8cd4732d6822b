"""Mutation testing (mutmut 3), one package at a time, each against the fast tests that cover it.

    python -m devtools.mutation run recognition [--max-children 1]   # var/mutation/recognition/
    python -m devtools.mutation report                               # docs/mutation.md

`run` copies the working tree (the files git tracks or does not ignore) to var/mutation/NAME/,
gives that copy a [tool.mutmut] section naming the package's sources and tests, and runs
`mutmut run` there; the checkout itself is never touched, so several packages can be run one
after the other (or side by side) while work goes on. The tests are unit tests on real
components (SQLite, Postgres, Redis in-process clients), not the browser, container or
subprocess tests: mutmut forks its own process per mutant and cannot see mutants in a
subprocess, and a 15-second test run per mutant would make a package take days on 2 cores.
`report` counts each package's mutants by status and module and lists the survivors.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from devtools import REPO
from devtools.report import write_section

WORK = REPO / "var" / "mutation"
TARGETED = "-targeted"  # var/mutation/NAME-targeted/: a re-run of chosen mutants (--only)
MUTATION_MD = REPO / "docs" / "mutation.md"


@dataclass(frozen=True)
class Plan:
    mutate: list[str]
    tests: list[str]
    deselect: list[str] = field(default_factory=list)
    skip: list[str] = field(default_factory=list)  # do_not_mutate
    keyword: str | None = None  # pytest -k


PLANS = {
    "recognition": Plan(
        mutate=["recognition/*"],
        tests=["tests/recognition", "--ignore=tests/recognition/test_cli.py"],
        # TensorFlow in the forked test process, and a 15 s accuracy run per mutant: too slow.
        deselect=[
            "tests/recognition/test_inference.py::"
            "test_litert_serving_model_agrees_with_the_keras_contract",
            "tests/recognition/test_inference.py::test_scans_keep_their_accuracy_through_the_core",
        ],
        # segment.py and cheque.py are being rewritten (issues 8 and 11): measured after that.
        # synthetic.py renders the test scans: its survivors would say nothing of the product.
        skip=["recognition/segment.py", "recognition/cheque.py", "recognition/synthetic.py"],
    ),
    "api-jobs": Plan(
        mutate=["api/jobs/*"],
        tests=["tests/jobs/test_upload.py", "tests/jobs/test_upload_state.py",
               "tests/jobs/test_api.py", "tests/jobs/test_result_shape.py",
               "tests/jobs/test_upload_zip.py"],
        # The jobs API on SQLite + the filesystem broker; the same tests on Postgres + Redis and
        # Azurite would triple the time per mutant for little more reach into api/jobs/.
        keyword="not servers and not azure",
    ),  # fmt: skip
    # mutmut runs each mutant's tests in a fresh fork, so a session-scoped Postgres or Azurite
    # server would start once per mutant (and be orphaned when a mutant times out): the worker
    # and digitflow plans run on SQLite and local storage only.
    "worker": Plan(mutate=["worker/*"], tests=["tests/worker/test_batch.py"], keyword="sqlite"),
    "digitflow": Plan(
        mutate=["digitflow/*"],
        tests=["tests/jobs/test_progress.py", "tests/test_settings.py", "tests/storage",
               "tests/worker/test_batch.py"],
        deselect=["tests/storage/test_storage.py::test_make_storage_follows_settings"],
        keyword="not postgres and not azure",
    ),  # fmt: skip
}


def mutmut_section(plan: Plan) -> str:
    """The [tool.mutmut] table for one plan (JSON lists of strings are valid TOML arrays)."""
    deselect = [arg for test in plan.deselect for arg in ("--deselect", test)]
    deselect += ["-k", plan.keyword] if plan.keyword else []
    values = {
        "source_paths": ["recognition/", "worker/", "digitflow/", "api/"],
        "only_mutate": plan.mutate,
        "do_not_mutate": plan.skip,
        "also_copy": ["models/", "migrations/", "alembic.ini", "web/", "training/", "devtools/"],
        "pytest_add_cli_args_test_selection": plan.tests,
        # The copy sits inside this checkout (var/ is ignored): git has nothing to say about it.
        "use_git_change_detection": False,
        "pytest_add_cli_args": ["-p", "no:cacheprovider", "-q", "-m", "not browser and not slow",
                                *deselect],
    }  # fmt: skip
    lines = [f"{key} = {json.dumps(value)}" for key, value in values.items()]
    return "[tool.mutmut]\n" + "\n".join(lines) + "\n"


def snapshot(dest: Path) -> None:
    """Copy the working tree's files (tracked, or untracked and not ignored) to `dest`."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, check=True, capture_output=True,
    ).stdout.split(b"\0")  # fmt: skip
    for name in filter(None, listed):
        source = REPO / name.decode()
        if source.is_file():
            (dest / name.decode()).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name.decode())
    if (REPO / ".cache").is_dir():  # Azurite and the other test tools
        (dest / ".cache").symlink_to(REPO / ".cache")


def prepare(name: str, resume: bool, folder: str | None = None) -> Path:
    """A fresh copy of the tree, or (resume) the last one, with the plan's [tool.mutmut]."""
    dest = WORK / (folder or name)
    if not (resume and (dest / "mutants").is_dir()):
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        snapshot(dest)
    pyproject = dest / "pyproject.toml"
    text = re.sub(r"\[tool\.mutmut\]\n(?:[^\[].*\n|\n)*", "", pyproject.read_text())
    pyproject.write_text(text.rstrip() + "\n\n" + mutmut_section(PLANS[name]))
    return dest


def mutmut(dest: Path, *args: str, **kwargs) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # only the copy's code
    mnist = os.environ.get("DIGITFLOW_MNIST_DIR") or str(REPO.parent / "shared/data/mnist")
    env["DIGITFLOW_MNIST_DIR"] = str(Path(mnist).resolve())
    command = [str(Path(sys.executable).with_name("mutmut")), *args]
    return subprocess.run(command, cwd=dest, env=env, **kwargs)


def run(name: str, max_children: int, resume: bool = False, only: list[str] | None = None) -> int:
    """mutmut on one package; `resume` keeps the verdicts of an interrupted run. `only`: these
    mutants alone (mutmut names, `*` allowed), in a copy of their own (var/mutation/NAME-targeted/)
    so that the package's full run stays as it was."""
    folder = f"{name}{TARGETED}" if only else name
    dest = prepare(name, resume, folder)
    started, load = time.time(), os.getloadavg()[0]
    code = mutmut(dest, "run", "--max-children", str(max_children), *(only or [])).returncode
    run_info = {"minutes": round((time.time() - started) / 60, 1), "load_at_start": load,
                "load_at_end": os.getloadavg()[0], "max_children": max_children,
                "resumed": resume, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    if only:
        run_info["only"] = only
    (dest / "run.json").write_text(json.dumps(run_info))
    summarise(folder)
    return code


def summarise(name: str) -> dict:
    """Counts by status per module, and the surviving mutants, in var/mutation/NAME/summary.json
    (a targeted run counts only the mutants it was asked for)."""
    dest = WORK / name
    output = mutmut(dest, "results", "--all", "true", capture_output=True, text=True).stdout
    info_path = dest / "run.json"
    only = json.loads(info_path.read_text()).get("only") if info_path.exists() else None
    counts: dict[str, Counter] = defaultdict(Counter)
    survivors = []
    for line in output.splitlines():
        mutant, _, status = line.strip().rpartition(": ")
        if not mutant or (only and not any(fnmatch.fnmatch(mutant, glob) for glob in only)):
            continue
        module = mutant.split(".x_")[0].split(".xǁ")[0]
        counts[module][status] += 1
        if status == "survived":
            survivors.append(mutant)
    summary = {"counts": {m: dict(c) for m, c in sorted(counts.items())}, "survivors": survivors}
    (dest / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def report_table(summaries: dict[str, dict]) -> str:
    statuses = ["killed", "survived", "no tests", "timeout", "suspicious", "skipped", "not checked"]
    lines = ["| module | " + " | ".join(statuses) + " | score |",
             "| --- |" + " ---: |" * (len(statuses) + 1)]  # fmt: skip
    for summary in summaries.values():
        for module, counts in summary["counts"].items():
            killed, tried = counts.get("killed", 0), counts.get("killed", 0) + counts.get(
                "survived", 0
            )
            score = f"{killed / tried:.0%}" if tried else "-"
            cells = " | ".join(str(counts.get(s, 0)) for s in statuses)
            lines.append(f"| `{module}` | {cells} | {score} |")
    return "\n".join(lines)


def survivors_by_function(survivors: list[str]) -> str:
    by_function: dict[str, list[str]] = defaultdict(list)
    for mutant in survivors:
        function, _, number = mutant.rpartition("__mutmut_")
        by_function[function.replace("xǁ", "").replace("ǁ", ".").replace(".x_", ".")].append(number)
    return "\n".join(
        f"- `{function}`: {len(numbers)} ({', '.join(numbers)})"
        for function, numbers in sorted(by_function.items())
    )


def report() -> None:
    """One section of docs/mutation.md per package run so far, and per targeted re-run
    (`mutmut show NAME` in var/mutation/PACKAGE/ prints a survivor's diff)."""
    for name in [f"{n}{suffix}" for n in PLANS for suffix in ("", TARGETED)]:
        plan = PLANS[name.removesuffix(TARGETED)]
        summary_path = WORK / name / "summary.json"
        if not summary_path.exists():
            continue
        summary = json.loads(summary_path.read_text())
        info_path = WORK / name / "run.json"
        info = json.loads(info_path.read_text()) if info_path.exists() else {}
        tests = " ".join(f"`{t}`" for t in plan.tests)
        body = (
            f"Mutated: {', '.join(f'`{m}`' for m in plan.mutate)}"
            + (f" except {', '.join(f'`{m}`' for m in plan.skip)}" if plan.skip else "")
            + f"; tests: {tests}.\nRun: {json.dumps(info)}\n\n"
            + report_table({name: summary})
            + "\n\nSurvivors by function (mutant numbers):\n\n"
            + (survivors_by_function(summary["survivors"]) or "none")
        )
        write_section(f"mutation-{name}", f"Mutation testing: {name}", body, MUTATION_MD, HEADER)


HEADER = (
    "# Mutation testing\n\n"
    "Written by `python -m devtools.mutation report` from the runs of `make mutation` "
    "(mutmut 3, one package at a time against its fast tests; see devtools/mutation.py).\n"
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run_cmd = sub.add_parser("run", help="mutate one package against its tests")
    run_cmd.add_argument("package", choices=sorted(PLANS))
    run_cmd.add_argument("--max-children", type=int, default=1)
    run_cmd.add_argument("--resume", action="store_true", help="keep an interrupted run's copy")
    run_cmd.add_argument("--only", nargs="+", metavar="MUTANT",
                         help="only these mutants (mutmut names, * allowed)")  # fmt: skip
    sub.add_parser("summarise", help="re-read the results of the packages run so far")
    sub.add_parser("report", help="write docs/mutation.md from the packages run so far")
    args = parser.parse_args(argv)
    if args.command == "run":
        return run(args.package, args.max_children, args.resume, args.only)
    if args.command == "report":
        report()
        return 0
    for name in [f"{n}{suffix}" for n in PLANS for suffix in ("", TARGETED)]:
        if (WORK / name / "mutants").is_dir():
            print(json.dumps(summarise(name)["counts"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
