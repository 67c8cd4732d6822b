"""CI definitions are valid: the GitHub Actions workflows pass actionlint and follow the
supply-chain rules (actions pinned to commit SHAs, least-privilege permissions, timeouts, OIDC
instead of stored credentials), and .ci/run runs the README's test command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((REPO / ".github/workflows").glob("*.y*ml"))
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


def load(name: str) -> dict:
    spec = yaml.safe_load((REPO / ".github/workflows" / name).read_text())
    spec["on"] = spec.pop(True, spec.get("on"))  # YAML 1.1 reads the key `on` as True
    return spec


def steps(job: dict) -> list[dict]:
    return job.get("steps", [])


def test_there_is_a_workflow_per_stage():
    assert [p.name for p in WORKFLOWS] == ["ci.yml", "deploy.yml", "images.yml", "train.yml"]


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_is_pinned_least_privilege_and_bounded(workflow):
    spec = load(workflow.name)
    assert spec["permissions"] == {"contents": "read"}
    for name, job in spec["jobs"].items():
        assert 0 < job["timeout-minutes"] <= 120, name
        uses = [step["uses"] for step in steps(job) if "uses" in step]
        for action in uses:
            assert PINNED.match(action), f"{name}: {action} is not pinned to a commit SHA"
        logs_in = any(action.startswith("azure/login@") for action in uses)
        permissions = job.get("permissions", spec["permissions"])
        # An OIDC token only where a job logs in to Azure with it, and nothing else extra.
        assert (permissions.get("id-token") == "write") == logs_in, name
        assert set(permissions) <= {"contents", "id-token"}, name
        assert permissions.get("contents", "read") == "read", name
        for step in steps(job):
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False, name
    text = workflow.read_text()
    assert "client-secret" not in text and "creds:" not in text  # OIDC only, no stored key


def test_training_runs_on_demand_and_on_training_changes_with_oidc():
    spec = load("train.yml")
    assert "workflow_dispatch" in spec["on"]
    assert "training/**" in spec["on"]["push"]["paths"]
    check, train = spec["jobs"]["check"], spec["jobs"]["train"]
    assert train["needs"] == "check"
    runs = " ".join(step.get("run", "") for step in steps(check) + steps(train))
    assert "scripts/fetch-mnist.sh" in runs  # MNIST downloaded and its checksums verified
    assert "training.azureml check" in runs and "training.azureml run-local" in runs
    assert "training.azureml submit" in runs


def test_images_are_pushed_with_provenance_and_deploy_waits_for_approval():
    build = load("images.yml")["jobs"]["build"]
    push = next(s for s in steps(build) if s.get("uses", "").startswith("docker/build-push"))
    assert push["with"]["file"] == "infra/docker/Dockerfile"
    assert push["with"]["provenance"] == "mode=max" and push["with"]["sbom"] is True
    assert set(build["strategy"]["matrix"]["target"]) == {"api", "worker"}
    deploy = load("deploy.yml")
    job = deploy["jobs"]["deploy"]
    assert job["environment"] == "production"  # required reviewers approve each run
    assert deploy["on"]["workflow_run"]["workflows"] == ["Images"]
    runs = " ".join(step.get("run", "") for step in steps(job))
    assert "kubectl apply -k" in runs and "rollout status" in runs


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_passes_actionlint(actionlint, workflow):
    result = actionlint(workflow)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_reports_a_broken_workflow(actionlint, tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n"
        "    steps:\n      - run: echo ${{ github.no_such_property }}\n"
    )
    result = actionlint(broken)
    assert result.returncode == 1
    assert "no_such_property" in result.stdout


def test_workflow_and_ci_script_run_make_test():
    assert "run: make test" in (REPO / ".github/workflows/ci.yml").read_text()
    assert "make test" in (REPO / ".ci/run").read_text()
    test = load("ci.yml")["jobs"]["test"]
    assert "--privileged" in test["container"]["options"]  # dockerd for make test-containers
    assert any("fetch-mnist.sh" in step.get("run", "") for step in steps(test))
