"""`digitflow serve`: one API process per usable core, the same command line in `digitflow run`,
the image and Kubernetes."""

import argparse
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from digitflow.cli import serve
from digitflow.cli.run import children
from digitflow.settings import PlatformSettings

REPO = Path(__file__).resolve().parent.parent


def parsed(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    serve.add_server_options(parser)
    return parser.parse_args(list(argv))


@pytest.mark.parametrize(
    ("cpu_max", "expected"),
    [("max 100000\n", None), ("100000 100000\n", 1), ("150000 100000\n", 2), ("garbage", None)],
)
def test_usable_cores_follow_a_container_cpu_limit(tmp_path, cpu_max, expected):
    path = tmp_path / "cpu.max"
    path.write_text(cpu_max)
    cores = serve.usable_cores(path)
    affinity = serve.usable_cores(tmp_path / "absent")
    assert cores == (affinity if expected is None else min(affinity, expected))


def test_workers_come_from_the_flag_then_api_workers_then_the_cores(monkeypatch):
    monkeypatch.delenv("API_WORKERS", raising=False)
    assert serve.worker_count(parsed("--workers", "3"), PlatformSettings()) == 3
    assert serve.worker_count(parsed(), PlatformSettings()) == serve.usable_cores()
    monkeypatch.setenv("API_WORKERS", "5")
    assert serve.worker_count(parsed(), PlatformSettings()) == 5
    assert serve.worker_count(parsed("--workers", "2"), PlatformSettings()) == 2
    monkeypatch.setenv("API_WORKERS", "0")
    with pytest.raises(ValidationError):
        PlatformSettings()


def test_the_server_comes_from_the_flag_then_api_server_else_uvicorn(monkeypatch):
    monkeypatch.delenv("API_SERVER", raising=False)
    assert serve.api_command(parsed(), PlatformSettings())[1:3] == ["-m", "uvicorn"]
    monkeypatch.setenv("API_SERVER", "granian")
    assert serve.api_command(parsed(), PlatformSettings())[1:3] == ["-m", "granian"]
    assert serve.api_command(parsed("--server", "uvicorn"), PlatformSettings())[1:3] == [
        "-m", "uvicorn",
    ]  # fmt: skip
    command = serve.api_command(parsed("--server", "granian"), PlatformSettings())
    assert command[1:3] == ["-m", "granian"]
    monkeypatch.setenv("API_SERVER", "nginx")
    with pytest.raises(ValidationError):
        PlatformSettings()


@pytest.mark.parametrize("server", ["granian", "uvicorn"])
def test_the_command_line_serves_the_app_with_that_many_workers(server):
    args = parsed("--server", server, "--workers", "4", "--port", "8123")
    command = serve.api_command(args, PlatformSettings())
    assert command[1:3] == ["-m", server]
    assert "api.main:app" in command
    assert command[command.index("--workers") + 1] == "4"
    assert command[command.index("--port") + 1] == "8123"
    if server == "uvicorn":
        assert "--no-access-log" in command


def test_run_starts_the_api_as_serve_does(tmp_path, monkeypatch):
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    parser = argparse.ArgumentParser()
    serve.add_server_options(parser)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args(["--workers", "2", "--server", "granian"])
    api = next(child for child in children(args, PlatformSettings()) if child.name == "api")
    assert api.command == serve.api_command(args, PlatformSettings())


def test_the_image_and_kubernetes_run_digitflow_serve():
    dockerfile = (REPO / "infra/docker/Dockerfile").read_text()
    api_stage = dockerfile.split("FROM python AS api", 1)[1].split("FROM python AS worker")[0]
    cmd = [line for line in api_stage.splitlines() if line.startswith("CMD")]
    assert cmd and '"digitflow.cli", "serve"' in cmd[0]
    documents = yaml.safe_load_all((REPO / "infra/k8s/base/api.yaml").read_text())
    deployment = next(d for d in documents if d and d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][:4] == ["python", "-m", "digitflow.cli", "serve"]
