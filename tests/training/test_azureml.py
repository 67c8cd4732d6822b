"""Azure ML definitions load with the SDK's own loaders, and the pipeline is wired correctly.

The Azure ML control plane is not reachable here: nothing is submitted, everything is checked
offline (the SDK's validation does not notice wrong `${{parent.jobs...}}` references, so
`check_wiring` does).
"""

import importlib
import re
import shutil

import pytest
import yaml

pytest.importorskip("azure.ai.ml")

from azure.ai.ml import load_component, load_compute, load_datastore, load_environment, load_job  # noqa: E402

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
    compute = load_compute(source=azureml.AZUREML_DIR / "compute.yml")
    assert compute.name == azureml.DEFAULT_COMPUTE and compute.min_instances == 0
    store = load_datastore(source=azureml.AZUREML_DIR / "datastore.yml")
    assert store.name == "mnist_blob" and azureml.DEFAULT_DATA.startswith(
        f"azureml://datastores/{store.name}/"
    )


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
    job = azureml.build_pipeline(data="azureml://datastores/mnist_blob/paths/mnist/", epochs=3)
    assert set(job.jobs) == {"prepare", "default", "seed", "export"}
    assert job._validate().passed
    assert job.jobs["default"].inputs["arch"]._data == "default"
    assert job.jobs["seed"].inputs["arch"]._data == "seed"


def test_dry_run_succeeds_offline(capsys):
    assert azureml.main(["--dry-run"]) == 0
    assert "dry run ok" in capsys.readouterr().out


def test_submit_without_workspace_is_a_clear_usage_error(monkeypatch):
    for name in ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZURE_ML_WORKSPACE"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SystemExit) as exit_info:
        azureml.main([])
    assert exit_info.value.code == 2
