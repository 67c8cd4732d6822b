"""The images' definitions, checked without building them (`make test-containers` builds and
runs them): one Dockerfile with api and worker targets on a BASE_IMAGE argument, dependencies
from hash-pinned lock files that cover pyproject.toml, a fixed non-root user; docker-compose.yml
(with and without the local-base override) valid, ordered and hardened.
"""

from __future__ import annotations

import re
import subprocess
import tomllib

import pytest
import yaml

from tests.infra.test_manifests import ROOT, find_tool

DOCKERFILE = ROOT / "infra" / "docker" / "Dockerfile"
LOCAL_OVERRIDE = "docker-compose.local.yml"


def stages() -> dict[str, list[str]]:
    """Each build stage's instructions (continuation lines joined), by stage name."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    result, current = {}, None
    for line in text.splitlines():
        if line.startswith("FROM "):
            current = line.split()[-1] if " AS " in line else line.split()[1]
            result[current] = [line]
        elif current and line.strip() and not line.startswith("#"):
            result[current].append(line.strip())
    return result


def requirement_names(lock: str) -> set[str]:
    text = (ROOT / "requirements" / f"{lock}.txt").read_text()
    return {normalise(m) for m in re.findall(r"^([A-Za-z0-9_.-]+)==", text, re.MULTILINE)}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_base_image_is_an_argument_defaulting_to_public_slim_python():
    text = DOCKERFILE.read_text()
    assert "ARG BASE_IMAGE=python:3.11-slim" in text
    froms = [line.split()[1] for line in text.splitlines() if line.startswith("FROM ")]
    assert froms[0] == "${BASE_IMAGE}"
    assert all(f in ("${BASE_IMAGE}", "scratch") or f in stages() for f in froms), froms


@pytest.mark.parametrize("target", ["api", "worker"])
def test_each_target_runs_as_a_fixed_non_root_user_from_its_lock(target):
    steps = stages()[target]
    users = [line.split()[1] for line in steps if line.startswith("USER ")]
    assert users == ["10001"]
    assert any(f"--from=deps-{target} /opt/venv" in line for line in steps)
    deps = " ".join(stages()[f"deps-{target}"])
    assert f"requirements/{target}.txt" in deps
    assert "--mount=type=secret,id=ca" in deps  # a CA bundle is passed in, never baked in
    assert ("HEALTHCHECK" in " ".join(steps)) == (target == "api")
    installer = (ROOT / "infra" / "docker" / "install-venv.sh").read_text()
    assert "--require-hashes" in installer and "--no-deps" in installer


@pytest.mark.parametrize("lock", ["api", "worker"])
def test_lock_pins_every_dependency_with_hashes(lock):
    text = (ROOT / "requirements" / f"{lock}.txt").read_text()
    pins = re.findall(r"^([A-Za-z0-9_.-]+)==(\S+) \\$", text, re.MULTILINE)
    assert len(pins) == len(requirement_names(lock)) > 20
    blocks = re.split(r"^(?=[A-Za-z0-9])", text, flags=re.MULTILINE)
    assert all("--hash=sha256:" in block for block in blocks if "==" in block)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"][lock]
    names = {normalise(re.split(r"[\[<>=~! ;]", spec, maxsplit=1)[0]) for spec in wanted}
    missing = names - requirement_names(lock)
    assert not missing, f"run scripts/lock-requirements.sh: {sorted(missing)} not locked"
    # Serving images never carry TensorFlow or the training tools.
    assert not {"tensorflow", "tensorflow-cpu", "keras", "azure-ai-ml"} & requirement_names(lock)


def compose_config(*files: str) -> dict:
    compose = find_tool("docker-compose")
    args = [a for f in files for a in ("-f", f)]
    check = subprocess.run(
        [compose, *args, "config", "-q"], cwd=ROOT, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr
    full = subprocess.run(
        [compose, *args, "config"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return yaml.safe_load(full.stdout)


def test_docker_compose_is_valid_and_starts_in_order():
    services = compose_config("docker-compose.yml")["services"]
    assert set(services) >= {"postgres", "redis", "azurite", "prestart", "api", "worker", "beat"}
    for name in ("postgres", "redis", "api"):
        assert services[name]["healthcheck"]["test"], name
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert "/ready" in " ".join(services["api"]["healthcheck"]["test"])
    assert "--skipApiVersionCheck" in services["azurite"]["command"]
    assert services["prestart"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("api", "worker", "beat"):
        depends = services[name]["depends_on"]
        assert depends["prestart"]["condition"] == "service_completed_successfully", name
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name
        assert services[name]["environment"]["REDIS_URL"].startswith("redis://")
    worker_cmd = " ".join(stages()["worker"][-2:])
    assert "--prefetch-multiplier=1" in " ".join(services["worker"].get("command") or [worker_cmd])


def test_app_services_are_hardened_and_keys_come_from_a_one_shot_service():
    services = compose_config("docker-compose.yml")["services"]
    for name in ("prestart", "api", "worker", "beat", "keys"):
        service = services[name]
        assert service["read_only"] is True, name
        assert any(t.startswith("/tmp") for t in service["tmpfs"]), name
        assert service["cap_drop"] == ["ALL"], name
    assert services["api"]["build"]["target"] == "api"
    assert services["worker"]["build"]["target"] == "worker"
    keys = services["keys"]
    assert keys["profiles"] == ["keys"]  # only on demand: `docker-compose run --rm keys`
    assert keys["command"][:5] == ["python", "-m", "digitflow.cli", "keys", "create"]


def test_local_override_builds_every_image_from_the_local_base():
    services = compose_config("docker-compose.yml", LOCAL_OVERRIDE)["services"]
    for name in ("postgres", "redis", "azurite"):
        assert services[name]["image"].startswith("local/"), name
        dockerfile = (
            ROOT / services[name]["build"]["context"] / services[name]["build"]["dockerfile"]
        )
        assert "ARG BASE_IMAGE=local/debian:bookworm" in dockerfile.read_text(), name
    for name in ("prestart", "api", "worker"):
        assert services[name]["build"]["args"]["BASE_IMAGE"] == "local/python:3.11", name


def test_dockerignore_keeps_local_state_and_secrets_out():
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".venv", "var", ".cache", ".git", "tests", ".env"} <= ignored
