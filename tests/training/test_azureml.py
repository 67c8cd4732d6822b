"""Azure ML definitions load with the SDK's own loaders, the pipeline is wired correctly, and
the components' own command lines train a small model here (the local runner).

The Azure ML control plane is not reachable here: submit/register/download run against a fake
MLClient that records the calls and serves files from disk; everything else is real (the SDK's
loaders and entities, the training modules, the model files and their card).
"""

import importlib
import re
import shutil
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

pytest.importorskip("azure.ai.ml")

from azure.ai.ml import (  # noqa: E402
    load_component,
    load_compute,
    load_data,
    load_datastore,
    load_environment,
    load_job,
)
from azure.core.exceptions import ResourceNotFoundError  # noqa: E402

from digitflow import model_source  # noqa: E402
from recognition.card import ModelCard  # noqa: E402
from recognition.inference import Recognizer  # noqa: E402
from training import azureml  # noqa: E402

COMPONENTS = sorted(azureml.COMPONENTS_DIR.glob("*.yml"))


def test_there_is_one_component_per_step():
    assert {p.stem for p in COMPONENTS} == {"prepare_data", "train", "evaluate_export"}


@pytest.mark.parametrize("path", COMPONENTS, ids=lambda p: p.stem)
def test_component_loads_and_runs_a_training_module(path):
    component = load_component(source=path)
    assert component.type == "command"
    assert component.command.startswith("python -m training.")
    # `code` is the repository root, so the component runs the same modules as a local run.
    assert (
        path.parent / yaml.safe_load(path.read_text())["code"] / "training" / "__init__.py"
    ).exists()
    for name in component.inputs:
        assert f"${{{{inputs.{name}}}}}" in component.command
    for name in component.outputs:
        assert f"${{{{outputs.{name}}}}}" in component.command


def test_component_commands_match_the_module_options(capsys):
    """Every --flag a component passes is one its module's argparse accepts."""
    for path in COMPONENTS:
        command = load_component(source=path).command
        module = importlib.import_module(command.split()[2])
        with pytest.raises(SystemExit) as exit_info:
            module.main(["--help"])
        assert exit_info.value.code == 0
        help_text = capsys.readouterr().out
        for flag in set(re.findall(r"(--[\w-]+)", command)):
            assert flag in help_text, f"{path.name}: {flag} not accepted by {module.__name__}"


def test_environment_compute_and_datastore_load():
    env = load_environment(source=azureml.AZUREML_DIR / "environment.yml")
    assert env.name == "digitflow-training" and env.conda_file
    assert "tensorflow-cpu" in str(env.conda_file)
    # The recognition core runs in training too (export's check, the field stage's segmenter):
    # every one of its dependencies is in the environment.
    core = tomllib.loads((azureml.REPO_ROOT / "pyproject.toml").read_text())
    for requirement in core["project"]["dependencies"]:
        assert requirement in str(env.conda_file), requirement
    compute = load_compute(source=azureml.AZUREML_DIR / "compute.yml")
    assert compute.name == azureml.DEFAULT_COMPUTE and compute.min_instances == 0
    store = load_datastore(source=azureml.AZUREML_DIR / "datastore.yml")
    assert store.name == "mnist_blob"
    asset = load_data(source=azureml.DATA_YAML)
    # The data asset lives on the Blob datastore, and the pipeline reads that very asset.
    assert asset.path.startswith(f"azureml://datastores/{store.name}/paths/")
    assert azureml.DEFAULT_DATA == f"azureml:{asset.name}:{asset.version}"
    pipeline = yaml.safe_load(azureml.PIPELINE_YAML.read_text())
    assert pipeline["inputs"]["mnist"]["path"] == azureml.DEFAULT_DATA


def test_pipeline_yaml_loads_and_its_wiring_is_sound():
    job = load_job(source=azureml.PIPELINE_YAML)
    assert set(job.jobs) == {"prepare_data", "train_default", "train_seed", "evaluate_export"}
    assert azureml.check_wiring() == []


def test_wiring_check_catches_wrong_references(tmp_path):
    shutil.copytree(azureml.COMPONENTS_DIR, tmp_path / "components")
    spec = yaml.safe_load(azureml.PIPELINE_YAML.read_text())
    export = spec["jobs"]["evaluate_export"]
    export["inputs"]["trained_seed"] = "${{parent.jobs.train_seed.outputs.model}}"  # no such output
    export["inputs"]["trained_default"] = (
        "${{parent.jobs.train_dflt.outputs.trained}}"  # no such job
    )
    export["inputs"]["extra"] = "${{parent.inputs.mnist}}"  # component has no such input
    del spec["jobs"]["train_seed"]["inputs"]["prepared"]  # required input left unwired
    broken = tmp_path / "pipeline.yml"
    broken.write_text(yaml.safe_dump(spec))
    problems = "\n".join(azureml.check_wiring(broken))
    assert "no output 'model'" in problems
    assert "no job 'train_dflt'" in problems
    assert "no such input" in problems
    assert "required input prepared is not wired" in problems


def test_dsl_pipeline_builds_the_same_graph():
    job = azureml.build_pipeline(data=azureml.DEFAULT_DATA, epochs=3)
    assert set(job.jobs) == {"prepare", "default", "seed", "export"}
    assert job._validate().passed
    assert job.jobs["default"].inputs["arch"]._data == "default"
    assert job.jobs["seed"].inputs["arch"]._data == "seed"


def test_check_succeeds_offline(capsys):
    assert azureml.main(["check"]) == 0
    out = capsys.readouterr().out
    assert "check ok" in out and "data.yml: mnist" in out


@pytest.mark.parametrize("command", [["submit"], ["register", "--job", "j"]])
def test_control_plane_commands_without_workspace_are_a_clear_usage_error(
    monkeypatch, capsys, command
):
    for name in azureml.WORKSPACE_ENV:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SystemExit) as exit_info:
        azureml.main(command)
    assert exit_info.value.code == 2
    assert "AZURE_ML_WORKSPACE" in capsys.readouterr().err


def test_render_command_fills_placeholders_and_drops_unset_optional_parts():
    command = load_component(source=azureml.COMPONENTS_DIR / "train.yml").command
    inputs = {"prepared": "/p q", "arch": "seed", "seed": 42, "epochs": None}
    argv = azureml.render_command(command, inputs, {"trained": "/out"})
    assert argv == [
        "python", "-m", "training.train", "--prepared", "/p q", "--arch", "seed",
        "--seed", "42", "--out", "/out",
    ]  # fmt: skip
    argv = azureml.render_command(command, inputs | {"epochs": 2}, {"trained": "/out"})
    assert argv[-4:] == ["--epochs", "2", "--out", "/out"]
    with pytest.raises(ValueError, match="inputs.prepared"):
        azureml.render_command(command, {**inputs, "prepared": None}, {"trained": "/out"})


# --- the local runner: the YAML's commands train a small model ----------------------------------


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("model")
    overrides = {"prepare_data": {"subset": 2000}} | {
        job: {"epochs": 1} for job in ("train_default", "train_seed")
    }
    from training.data import default_data_dir

    commands = azureml.run_local(
        default_data_dir(), out, tmp_path_factory.mktemp("work"), overrides
    )
    return out, commands


@pytest.mark.slow
def test_local_runner_runs_the_component_commands_in_order(local_run):
    _, commands = local_run
    assert list(commands)[0] == "prepare_data" and list(commands)[-1] == "evaluate_export"
    spec = yaml.safe_load(azureml.PIPELINE_YAML.read_text())
    for job, argv in commands.items():
        component = load_component(
            source=azureml.PIPELINE_YAML.parent / spec["jobs"][job]["component"][5:]
        )
        assert argv[0] == sys.executable
        assert argv[1:3] == component.command.split()[1:3]  # -m training.<step>
        flags = {a for a in argv if a.startswith("--")}
        assert flags <= set(re.findall(r"--[\w-]+", component.command)), job
    assert commands["prepare_data"][-2:] == ["--subset", "2000"]
    assert "--epochs" in commands["train_seed"]


@pytest.mark.slow
def test_local_runner_exports_a_working_model_with_a_verified_card(local_run):
    out, _ = local_run
    card = model_source.verify(out)
    assert card.data["split_sizes"]["train"] < 2000
    assert card.metrics["default"]["test"]["accuracy"] > 0.5
    recognizer = Recognizer(out)
    assert recognizer.version == card.version


# --- the control plane, faked: submit, stream, register, download --------------------------------

SHIPPED = Path(azureml.REPO_ROOT / "models" / "default")


class FakeOperations:
    def __init__(self, client, kind):
        self.client, self.kind = client, kind

    def __getattr__(self, name):
        def call(*args, **kwargs):
            self.client.calls.append((self.kind, name, args, kwargs))
            return self.client.answer(self.kind, name, args, kwargs)

        return call


class FakeMLClient:
    """MLClient's surface as azureml.py uses it; model files come from `model_dir`."""

    def __init__(self, model_dir: Path = SHIPPED):
        self.model_dir, self.calls, self.data_assets = model_dir, [], set()
        for kind in ("data", "environments", "jobs", "models"):
            setattr(self, kind, FakeOperations(self, kind))

    def answer(self, kind, name, args, kwargs):
        if (kind, name) == ("data", "get"):
            if (args[0], kwargs["version"]) not in self.data_assets:
                raise ResourceNotFoundError("no such data asset")
        elif (kind, name) == ("data", "create_or_update"):
            self.data_assets.add((args[0].name, args[0].version))
        elif (kind, name) == ("jobs", "create_or_update"):
            return type("Job", (), {"name": "run-1", "studio_url": "https://ml.azure.com/run-1"})
        elif (kind, name) == ("jobs", "download"):  # Azure ML nests outputs in folders
            shutil.copytree(self.model_dir, Path(kwargs["download_path"]) / "named-outputs/model")
        elif (kind, name) == ("models", "create_or_update"):
            args[0].version = "3"
            return args[0]
        elif (kind, name) == ("models", "download"):
            target = Path(kwargs["download_path"]) / kwargs["name"] / "model"
            shutil.copytree(self.model_dir, target)

    def called(self, kind, name):
        return [c for c in self.calls if c[:2] == (kind, name)]


def test_submit_registers_the_data_asset_streams_and_registers_the_model(monkeypatch):
    client = FakeMLClient()
    monkeypatch.setattr(azureml, "ml_client", lambda *a: client)
    assert azureml.main(["submit", "--epochs", "2"]) == 0
    order = [(kind, name) for kind, name, _, _ in client.calls]
    assert order.index(("data", "create_or_update")) < order.index(("jobs", "create_or_update"))
    assert order.index(("jobs", "stream")) < order.index(("models", "create_or_update"))
    ((_, _, (pipeline,), kwargs),) = client.called("jobs", "create_or_update")
    assert kwargs["experiment_name"] == azureml.EXPERIMENT
    assert pipeline.inputs["mnist"]._data.path == azureml.DEFAULT_DATA
    assert pipeline.jobs["default"].inputs["epochs"]._data == 2
    ((_, _, (model,), _),) = client.called("models", "create_or_update")
    card = ModelCard.load(SHIPPED)
    assert model.name == azureml.MODEL_NAME and model.path.endswith("/jobs/run-1/outputs/model")
    assert model.tags["card_version"] == card.version
    assert float(model.tags["test_accuracy"]) == card.metrics["default"]["test"]["accuracy"]
    assert model.tags["sha256_tflite"] == card.sha256["model.tflite"]
    # A second submit finds the data asset registered and does not create it again.
    azureml.main(["submit", "--no-stream"])
    assert len(client.called("data", "create_or_update")) == 1


def test_register_refuses_a_model_whose_files_do_not_match_its_card(tmp_path):
    tampered = tmp_path / "model"
    shutil.copytree(SHIPPED, tampered)
    (tampered / "model.tflite").write_bytes(b"not the model")
    client = FakeMLClient(tampered)
    with pytest.raises(ValueError, match="sha256"):
        azureml.register(client, "run-1")
    assert not client.called("models", "create_or_update")


def test_download_fetches_a_registered_version_flat_and_verified(monkeypatch, tmp_path):
    client = FakeMLClient()
    monkeypatch.setattr(azureml, "ml_client", lambda *a: client)
    out = tmp_path / "models" / "default"
    assert azureml.main(["download", "--model", "digitflow-cnn:3", "--out", str(out)]) == 0
    ((_, _, _, kwargs),) = client.called("models", "download")
    assert (kwargs["name"], kwargs["version"]) == ("digitflow-cnn", "3")
    assert Recognizer(out).version == ModelCard.load(SHIPPED).version


def test_platform_loads_an_azureml_model_reference(monkeypatch, tmp_path):
    monkeypatch.setattr(azureml, "ml_client", lambda *a: FakeMLClient())
    folder = model_source.resolve("azureml:digitflow-cnn:3", tmp_path)
    assert folder.is_relative_to(tmp_path / "models")
    assert model_source.verify(folder).version == ModelCard.load(SHIPPED).version
