"""The training pipeline on Azure ML, end to end: the same modules, one component per step.

    python -m training.azureml check               # every YAML loads, wiring is sound (offline)
    python -m training.azureml run-local --out DIR [--subset 2000 --epochs 1]
                                                   # the components' own commands, run here
    python -m training.azureml submit              # data asset, pipeline, stream, register
    python -m training.azureml register --job JOB  # register a finished run's model
    python -m training.azureml download --model digitflow-cnn:3 --out models/default

The workspace comes from --subscription/--resource-group/--workspace or AZURE_SUBSCRIPTION_ID,
AZURE_RESOURCE_GROUP, AZURE_ML_WORKSPACE; credentials from DefaultAzureCredential (az login,
workload identity, or GitHub's OIDC login). The YAML under infra/azureml/ is the single
definition: `run-local` executes the very command lines of its components, so the cloud
definition and the code cannot drift apart. The data is a registered data asset (data.yml) on
the `mnist_blob` datastore (fill it with `python -m training.blob_data upload`).
"""

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
AZUREML_DIR = REPO_ROOT / "infra" / "azureml"
COMPONENTS_DIR = AZUREML_DIR / "components"
PIPELINE_YAML = AZUREML_DIR / "pipeline.yml"
DATA_YAML = AZUREML_DIR / "data.yml"
ENVIRONMENT_YAML = AZUREML_DIR / "environment.yml"
DATASTORE_PATH = "azureml://datastores/mnist_blob/paths/mnist/"
DEFAULT_DATA = "azureml:mnist:1"
DEFAULT_COMPUTE = "cpu-cluster"
EXPERIMENT = "digitflow-training"
MODEL_NAME = "digitflow-cnn"
WORKSPACE_ENV = ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZURE_ML_WORKSPACE")

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
    data: str = DEFAULT_DATA,
    compute: str = DEFAULT_COMPUTE,
    epochs: int | None = None,
    subset: int | None = None,
):
    """The pipeline job of pipeline.yml, built from the component YAMLs with dsl.pipeline."""
    from azure.ai.ml import Input, dsl

    steps = load_components()

    @dsl.pipeline(
        name="digitflow_training",
        description="Prepare MNIST from Blob, train default + seed, evaluate and export",
        experiment_name=EXPERIMENT,
        default_compute=compute,
    )
    def digitflow_training(mnist):
        prepare = steps["prepare_data"](raw_data=mnist, subset=subset)
        default = steps["train"](prepared=prepare.outputs.prepared, arch="default", epochs=epochs)
        seed = steps["train"](prepared=prepare.outputs.prepared, arch="seed", epochs=epochs)
        export = steps["evaluate_export"](
            prepared=prepare.outputs.prepared,
            trained_default=default.outputs.trained,
            trained_seed=seed.outputs.trained,
        )
        return {"model": export.outputs.model}

    return digitflow_training(mnist=Input(type="uri_folder", path=data))


def check() -> int:
    """Load and validate everything offline; exit non-zero on any problem."""
    from azure.ai.ml import load_compute, load_data, load_datastore, load_environment, load_job

    for name, component in load_components().items():
        print(
            f"component {name}: {component.name} v{component.version},"
            f" inputs {sorted(component.inputs)}, outputs {sorted(component.outputs)}"
        )
    for loader, path in (
        (load_environment, ENVIRONMENT_YAML),
        (load_compute, AZUREML_DIR / "compute.yml"),
        (load_datastore, AZUREML_DIR / "datastore.yml"),
        (load_data, DATA_YAML),
    ):
        print(f"{path.name}: {loader(source=path).name}")
    print(f"pipeline.yml: jobs {sorted(load_job(source=PIPELINE_YAML).jobs)}")
    problems = check_wiring()
    built = build_pipeline()
    result = built._validate()
    if not result.passed:
        problems.append(f"dsl pipeline: {result.error_messages}")
    print(f"dsl pipeline: jobs {sorted(built.jobs)}")
    for problem in problems:
        print(f"PROBLEM {problem}", file=sys.stderr)
    print("check ok" if not problems else f"check found {len(problems)} problem(s)")
    return 1 if problems else 0


# --- the local runner: the components' own command lines, on this machine -----------------------

_PLACEHOLDER = re.compile(r"\$\{\{\s*(inputs|outputs)\.([\w-]+)\s*\}\}")
_OPTIONAL = re.compile(r"\$\[\[(.*?)\]\]", re.DOTALL)


def render_command(command: str, inputs: dict, outputs: dict) -> list[str]:
    """A component's command with its ${{inputs.x}}/${{outputs.y}} filled in, as Azure ML does:
    an optional `$[[...]]` part is kept only when every input inside it has a value."""

    def optional(match: re.Match) -> str:
        names = [n for kind, n in _PLACEHOLDER.findall(match[1]) if kind == "inputs"]
        return match[1] if all(inputs.get(n) is not None for n in names) else ""

    def value(match: re.Match) -> str:
        kind, name = match.groups()
        found = (inputs if kind == "inputs" else outputs).get(name)
        if found is None:
            raise ValueError(f"no value for {kind}.{name} in {command!r}")
        return shlex.quote(str(found))

    return shlex.split(_PLACEHOLDER.sub(value, _OPTIONAL.sub(optional, command)))


def _job_order(jobs: dict) -> list[str]:
    """Pipeline jobs in an order where every job runs after those whose outputs it reads."""
    needs = {
        name: set(re.findall(r"parent\.jobs\.([\w-]+)\.", json.dumps(job.get("inputs") or {})))
        for name, job in jobs.items()
    }
    order: list[str] = []
    while len(order) < len(jobs):
        ready = [n for n in jobs if n not in order and needs[n] <= set(order)]
        if not ready:
            raise ValueError(f"pipeline jobs depend on each other in a cycle: {needs}")
        order += ready
    return order


def _resolve_input(value, parent_inputs: dict, produced: dict):
    if not isinstance(value, str) or "${{" not in value:
        return value
    match = _REFERENCE.fullmatch(value.strip())
    scope, job, key = match.groups()
    if scope == "inputs":
        return parent_inputs[key]
    return produced[job][key]


def run_local(
    data: Path,
    out: Path,
    work: Path,
    overrides: dict[str, dict] | None = None,
    pipeline_yaml: Path = PIPELINE_YAML,
) -> dict[str, list[str]]:
    """Run every job of the pipeline YAML here, in dependency order, with the exact command line
    of its component (`python` is this interpreter); return the command each job ran.

    `overrides` sets job inputs by job name (e.g. a small subset and one epoch for tests); the
    pipeline's `model` output goes to `out`, every other output to a folder under `work`.
    """
    from azure.ai.ml import load_component

    spec = yaml.safe_load(pipeline_yaml.read_text())
    parent_inputs = {"mnist": str(data)}
    produced: dict[str, dict] = {}
    commands = {}
    for name in _job_order(spec["jobs"]):
        job = spec["jobs"][name]
        component = load_component(source=pipeline_yaml.parent / job["component"][5:])
        inputs = {key: declared.default for key, declared in component.inputs.items()}
        for key, value in (job.get("inputs") or {}).items():
            inputs[key] = _resolve_input(value, parent_inputs, produced)
        inputs.update((overrides or {}).get(name, {}))
        outputs = {}
        for key in component.outputs:
            wired = (job.get("outputs") or {}).get(key, "")
            outputs[key] = out if "parent.outputs." in str(wired) else work / name / key
            Path(outputs[key]).mkdir(parents=True, exist_ok=True)
        argv = render_command(component.command, inputs, outputs)
        argv = [sys.executable if argv[0] == "python" else argv[0], *argv[1:]]
        print(f"[{name}] {shlex.join(argv)}", flush=True)
        code_dir = (pipeline_yaml.parent / job["component"][5:]).parent / component.code
        subprocess.run(argv, cwd=code_dir.resolve(), check=True)
        produced[name] = {key: str(path) for key, path in outputs.items()}
        commands[name] = argv
    return commands


# --- the control plane: Azure ML workspace -------------------------------------------------------


def ml_client(subscription=None, resource_group=None, workspace=None):
    """An MLClient for the workspace given, or named by the AZURE_* variables."""
    from azure.ai.ml import MLClient
    from azure.identity import DefaultAzureCredential

    given = (subscription, resource_group, workspace)
    values = [value or os.environ.get(env) for value, env in zip(given, WORKSPACE_ENV, strict=True)]
    missing = [env for value, env in zip(values, WORKSPACE_ENV, strict=True) if not value]
    if missing:
        raise ValueError(f"no Azure ML workspace: set {', '.join(missing)} or pass the options")
    return MLClient(DefaultAzureCredential(), *values)


def ensure_data_asset(client) -> str:
    """Register the Blob-backed data asset of data.yml (a no-op if that version exists)."""
    from azure.ai.ml import load_data
    from azure.core.exceptions import ResourceNotFoundError

    asset = load_data(source=DATA_YAML)
    try:
        client.data.get(asset.name, version=asset.version)
    except ResourceNotFoundError:
        client.data.create_or_update(asset)
    return f"azureml:{asset.name}:{asset.version}"


def submit(
    client,
    data: str | None = None,
    compute: str = DEFAULT_COMPUTE,
    epochs: int | None = None,
    subset: int | None = None,
    stream: bool = True,
):
    """Environment, data asset, pipeline run; stream its logs until it ends (unless told not)."""
    from azure.ai.ml import load_environment

    client.environments.create_or_update(load_environment(source=ENVIRONMENT_YAML))
    data = data or ensure_data_asset(client)
    job = client.jobs.create_or_update(
        build_pipeline(data, compute, epochs, subset), experiment_name=EXPERIMENT
    )
    print(f"submitted {job.name}: {job.studio_url}", flush=True)
    if stream:
        client.jobs.stream(job.name)  # raises if the run fails
    return job


def card_tags(card) -> dict[str, str]:
    """The card's headline figures as model tags (Azure ML tags are strings)."""
    test = card.metrics["default"]["test"]
    figures = {
        "card_version": card.version,
        "test_accuracy": test.get("accuracy"),
        "test_ece_calibrated": test.get("ece_calibrated"),
        "test_review_rate": test.get("review_rate"),
        "test_auto_accept_error": test.get("auto_accept_error"),
        "review_threshold": card.review.threshold,
        "calibration_temperature": card.calibration.temperature,
        "sha256_tflite": card.sha256.get("model.tflite"),
    }
    return {key: str(value) for key, value in figures.items() if value is not None}


def _model_folder(root: Path) -> Path:
    """The folder under a download that holds model_card.json (Azure ML nests downloads)."""
    cards = sorted(Path(root).rglob("model_card.json"))
    if len(cards) != 1:
        raise FileNotFoundError(f"expected one model_card.json under {root}, found {len(cards)}")
    return cards[0].parent


def register(client, job_name: str, name: str = MODEL_NAME):
    """Register the `model` output of a finished pipeline run, its card's metrics as tags."""
    from azure.ai.ml.constants import AssetTypes
    from azure.ai.ml.entities import Model

    from training.export import verify_card_files

    with tempfile.TemporaryDirectory() as tmp:
        client.jobs.download(job_name, output_name="model", download_path=tmp)
        card = verify_card_files(_model_folder(Path(tmp)))
    model = Model(
        name=name,
        path=f"azureml://jobs/{job_name}/outputs/model",
        type=AssetTypes.CUSTOM_MODEL,
        description=f"DigitFlow digit CNN {card.version} (model.tflite, model.keras, card)",
        tags=card_tags(card),
        properties={"job": job_name},
    )
    registered = client.models.create_or_update(model)
    print(f"registered {registered.name}:{registered.version} ({card.version})")
    return registered


def download_model(client, name: str, version: str, out: Path) -> Path:
    """Fetch a registered model version into `out` (flat), checked against its card's sha256."""
    from training.export import verify_card_files

    out = Path(out)
    with tempfile.TemporaryDirectory() as tmp:
        client.models.download(name=name, version=version, download_path=tmp)
        folder = _model_folder(Path(tmp))
        out.mkdir(parents=True, exist_ok=True)
        for path in folder.iterdir():
            if path.is_file():
                shutil.copy2(path, out / path.name)
    card = verify_card_files(out)
    print(f"downloaded {name}:{version} ({card.version}) to {out}")
    return out


# --- command line ---------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--subscription")
    parser.add_argument("--resource-group")
    parser.add_argument("--workspace")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("check", help="load and validate every YAML offline")
    local = commands.add_parser("run-local", help="run the components' commands here")
    local.add_argument("--data", type=Path, help="MNIST folder (default: the local one)")
    local.add_argument("--out", type=Path, required=True)
    local.add_argument("--work", type=Path, help="folder for intermediate outputs")
    for sub in (local, run := commands.add_parser("submit", help="run the pipeline on Azure ML")):
        sub.add_argument("--epochs", type=int)
        sub.add_argument("--subset", type=int, help="prepare only N training images")
    run.add_argument("--data", help=f"uri_folder input (default: the data asset {DEFAULT_DATA})")
    run.add_argument("--compute", default=DEFAULT_COMPUTE)
    run.add_argument("--no-stream", action="store_true", help="submit and return")
    run.add_argument("--no-register", action="store_true", help="do not register the model")
    reg = commands.add_parser("register", help="register a finished run's model")
    reg.add_argument("--job", required=True)
    get = commands.add_parser("download", help="fetch a registered model version")
    get.add_argument("--model", required=True, help="NAME:VERSION, e.g. digitflow-cnn:3")
    get.add_argument("--out", type=Path, required=True)
    return parser


def _run_local(args) -> int:
    from training.data import default_data_dir

    overrides = {"prepare_data": {"subset": args.subset}}
    if args.epochs:
        overrides |= {job: {"epochs": args.epochs} for job in ("train_default", "train_seed")}
    with tempfile.TemporaryDirectory() as tmp:
        run_local(args.data or default_data_dir(), args.out, args.work or Path(tmp), overrides)
    print(f"model exported to {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "check":
        return check()
    if args.command == "run-local":
        return _run_local(args)
    try:
        client = ml_client(args.subscription, args.resource_group, args.workspace)
    except ValueError as exc:
        parser.error(str(exc))
    if args.command == "submit":
        job = submit(client, args.data, args.compute, args.epochs, args.subset, not args.no_stream)
        if not (args.no_stream or args.no_register):
            register(client, job.name)
    elif args.command == "register":
        register(client, args.job)
    else:
        name, _, version = args.model.partition(":")
        if not version:
            parser.error("--model takes NAME:VERSION")
        download_model(client, name, version, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
