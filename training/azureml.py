"""Run the training pipeline on Azure ML: the same modules, one component per step.

    python -m training.azureml --dry-run                      # load + validate offline
    python -m training.azureml --subscription S --resource-group G --workspace W [--data azureml://...]

The YAML under infra/azureml/ is the single definition: `az ml job create -f
infra/azureml/pipeline.yml` runs the same pipeline this module builds with `dsl.pipeline`.
The data lives on Azure Blob (see `python -m training.blob_data upload`), reached through the
`mnist_blob` datastore.
"""

import argparse
import os
import re
import sys
from pathlib import Path

import yaml

AZUREML_DIR = Path(__file__).resolve().parent.parent / "infra" / "azureml"
COMPONENTS_DIR = AZUREML_DIR / "components"
PIPELINE_YAML = AZUREML_DIR / "pipeline.yml"
DEFAULT_DATA = "azureml://datastores/mnist_blob/paths/mnist/"
DEFAULT_COMPUTE = "cpu-cluster"
EXPERIMENT = "digitflow-training"

_REFERENCE = re.compile(
    r"\$\{\{\s*parent\.(jobs\.([\w-]+)\.outputs|inputs|outputs)\.?([\w-]*)\s*\}\}"
)


def load_components() -> dict:
    """Every component YAML, loaded (and so schema-checked) by the SDK's own loader."""
    from azure.ai.ml import load_component

    return {path.stem: load_component(source=path) for path in sorted(COMPONENTS_DIR.glob("*.yml"))}


def check_wiring(pipeline_yaml: Path = PIPELINE_YAML) -> list[str]:
    """Problems with the `${{parent...}}` references of a pipeline YAML (empty when sound).

    The SDK's validation does not notice a reference to a job or output that does not exist,
    nor a job input the component does not declare, so this reads the YAML and checks them.
    """
    from azure.ai.ml import load_component

    spec = yaml.safe_load(pipeline_yaml.read_text())
    components = {}
    for name, job in spec["jobs"].items():
        source = job["component"].removeprefix("file:")
        components[name] = load_component(source=pipeline_yaml.parent / source)
    problems = []
    for name, job in spec["jobs"].items():
        component = components[name]
        for kind, declared in (("inputs", component.inputs), ("outputs", component.outputs)):
            for key in job.get(kind, {}) or {}:
                if key not in declared:
                    problems.append(
                        f"jobs.{name}.{kind}.{key}: {component.name} has no such {kind[:-1]}"
                    )
        for key, value in (job.get("inputs", {}) or {}).items():
            problems += _check_reference(spec, components, f"jobs.{name}.inputs.{key}", value)
        for key, value in (job.get("outputs", {}) or {}).items():
            problems += _check_reference(spec, components, f"jobs.{name}.outputs.{key}", value)
        for key, declared in component.inputs.items():
            if (
                not declared.optional
                and declared.default is None
                and key not in (job.get("inputs") or {})
            ):
                problems.append(f"jobs.{name}: required input {key} is not wired")
    return problems


def _check_reference(spec: dict, components: dict, where: str, value) -> list[str]:
    if not isinstance(value, str) or "${{" not in value:
        return []
    match = _REFERENCE.fullmatch(value.strip())
    if not match:
        return [f"{where}: cannot parse reference {value!r}"]
    scope, job, key = match.groups()
    if scope == "inputs" and key not in (spec.get("inputs") or {}):
        return [f"{where}: pipeline has no input {key!r}"]
    if scope == "outputs" and key not in (spec.get("outputs") or {}):
        return [f"{where}: pipeline has no output {key!r}"]
    if scope.startswith("jobs."):
        if job not in components:
            return [f"{where}: no job {job!r}"]
        if key not in components[job].outputs:
            return [f"{where}: job {job!r} has no output {key!r}"]
    return []


def build_pipeline(
    data: str = DEFAULT_DATA, compute: str = DEFAULT_COMPUTE, epochs: int | None = None
):
    """The pipeline job, built from the component YAMLs with dsl.pipeline."""
    from azure.ai.ml import Input, dsl

    steps = load_components()

    @dsl.pipeline(
        name="digitflow_training",
        description="Prepare MNIST from Blob, train default + seed, evaluate and export",
        experiment_name=EXPERIMENT,
        default_compute=compute,
    )
    def digitflow_training(mnist):
        prepare = steps["prepare_data"](raw_data=mnist)
        default = steps["train"](prepared=prepare.outputs.prepared, arch="default", epochs=epochs)
        seed = steps["train"](prepared=prepare.outputs.prepared, arch="seed")
        export = steps["evaluate_export"](
            prepared=prepare.outputs.prepared,
            trained_default=default.outputs.trained,
            trained_seed=seed.outputs.trained,
        )
        return {"model": export.outputs.model}

    return digitflow_training(mnist=Input(type="uri_folder", path=data))


def dry_run() -> int:
    """Load and validate everything offline; exit non-zero on any problem."""
    from azure.ai.ml import load_job

    components = load_components()
    for name, component in components.items():
        print(
            f"component {name}: {component.name} v{component.version},"
            f" inputs {sorted(component.inputs)}, outputs {sorted(component.outputs)}"
        )
    yaml_job = load_job(source=PIPELINE_YAML)
    print(f"pipeline.yml: jobs {sorted(yaml_job.jobs)}")
    problems = check_wiring()
    built = build_pipeline()
    result = built._validate()
    if not result.passed:
        problems.append(f"dsl pipeline: {result.error_messages}")
    print(f"dsl pipeline: jobs {sorted(built.jobs)}")
    for problem in problems:
        print(f"PROBLEM {problem}", file=sys.stderr)
    print("dry run ok" if not problems else f"dry run found {len(problems)} problem(s)")
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="load and validate offline, submit nothing"
    )
    parser.add_argument("--subscription", default=os.environ.get("AZURE_SUBSCRIPTION_ID"))
    parser.add_argument("--resource-group", default=os.environ.get("AZURE_RESOURCE_GROUP"))
    parser.add_argument("--workspace", default=os.environ.get("AZURE_ML_WORKSPACE"))
    parser.add_argument(
        "--data", default=DEFAULT_DATA, help="uri_folder holding the MNIST IDX files"
    )
    parser.add_argument("--compute", default=DEFAULT_COMPUTE)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--wait", action="store_true", help="stream the job's logs until it ends")
    args = parser.parse_args(argv)
    if args.dry_run:
        return dry_run()
    if not (args.subscription and args.resource_group and args.workspace):
        parser.error(
            "give --subscription, --resource-group and --workspace (or their AZURE_* variables)"
        )

    from azure.ai.ml import MLClient, load_environment
    from azure.identity import DefaultAzureCredential

    client = MLClient(
        DefaultAzureCredential(), args.subscription, args.resource_group, args.workspace
    )
    client.environments.create_or_update(load_environment(source=AZUREML_DIR / "environment.yml"))
    job = client.jobs.create_or_update(build_pipeline(args.data, args.compute, args.epochs))
    print(f"submitted {job.name}: {job.studio_url}")
    if args.wait:
        client.jobs.stream(job.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
