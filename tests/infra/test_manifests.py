"""Offline checks of the deployment artefacts: every kustomize overlay builds from a clean
checkout (no local files), every built resource passes `kubernetes-validate --strict`, KEDA's
resources pass a strict check against KEDA's CRD schema (the cloudcoil models generated from it),
every pod runs restricted with requests and limits, HPA/PDB/NetworkPolicies cover what they must,
and KEDA watches the queue the workers consume.

Tools: `kubectl` (its built-in kustomize). A missing tool skips
these tests with the reason, except in CI (CI=true), where it fails them.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from cloudcoil.models.keda import v1alpha1 as keda

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "infra" / "k8s"
OVERLAYS = ["base", "overlays/local", "overlays/production"]
SECRET_NAME = "digitflow-secrets"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
SETUP_HINT = "run scripts/setup-test-env.sh (make test-env)"

# The contract with worker/: Celery's queue, which is also the name of its Redis list.
DOCUMENTS_QUEUE = "documents"
OWN_IMAGES = ("digitflow-api", "digitflow-worker")
KEDA_API = "keda.sh/v1alpha1"
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"}


def find_tool(name: str) -> str:
    """Path of `name` on PATH or beside this Python (a venv-installed kubectl), else skip/fail."""
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found:
        return found
    message = f"{name} not found; {SETUP_HINT}"
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def clean_copy(tmp_path: Path) -> Path:
    """infra/k8s as a clean checkout has it: files git tracks (or would), none it ignores."""
    tree = tmp_path / "k8s"
    git = shutil.which("git")
    listed = []
    if git and (ROOT / ".git").exists():
        listing = subprocess.run(
            [
                git,
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
                "--",
                "infra/k8s",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        listed = [name for name in listing.stdout.split("\0") if (ROOT / name).is_file()]
    if not listed:
        shutil.copytree(K8S, tree, ignore=shutil.ignore_patterns("secrets.env"))
    for name in listed:
        target = tree / Path(name).relative_to("infra/k8s")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, target)
    return tree


def build(overlay: str, tmp_path: Path, tree: Path | None = None) -> list[dict]:
    """`kubectl kustomize` of one overlay of a clean copy of infra/k8s."""
    kubectl = find_tool("kubectl")
    tree = tree or clean_copy(tmp_path)
    result = subprocess.run(
        [kubectl, "kustomize", str(tree / overlay)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"kustomize build of {overlay} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module", params=OVERLAYS)
def built(request, tmp_path_factory) -> tuple[str, list[dict]]:
    return request.param, build(request.param, tmp_path_factory.mktemp("kustomize"))


def named(resources: list[dict], kind: str, name: str) -> dict:
    matches = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


def pod_spec(resource: dict) -> dict:
    spec = resource["spec"]
    if resource["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["spec"]


def workloads(resources: list[dict]) -> list[dict]:
    return [r for r in resources if r["kind"] in WORKLOAD_KINDS]


def containers(resource: dict) -> list[dict]:
    spec = pod_spec(resource)
    return spec.get("initContainers", []) + spec["containers"]


def is_own_image(container: dict) -> bool:
    return container["image"].rsplit("/", 1)[-1].split(":")[0] in OWN_IMAGES


# --- every overlay ----------------------------------------------------------------------------


def test_overlay_builds_into_the_expected_resources(built):
    overlay, resources = built
    for kind, name in [
        ("Deployment", "digitflow-api"),
        ("Service", "digitflow-api"),
        ("HorizontalPodAutoscaler", "digitflow-api"),
        ("PodDisruptionBudget", "digitflow-api"),
        ("Deployment", "digitflow-worker"),
        ("Deployment", "digitflow-beat"),
        ("Job", "digitflow-migrate"),
        ("ConfigMap", "digitflow-config"),
    ]:
        named(resources, kind, name)
    keda = [r for r in resources if r["apiVersion"] == KEDA_API]
    # The base must apply to a cluster without KEDA's CRDs; production scales workers with KEDA.
    assert bool(keda) == (overlay == "overlays/production"), [r["kind"] for r in keda]


def validate_keda(resource: dict) -> None:
    """Strict validation against KEDA's CRD schema: the cloudcoil models are generated from it;
    a wrong type fails to validate, an unknown field is dropped and so fails the round trip."""
    model = getattr(keda, resource["kind"]).model_validate(resource)
    assert model.model_dump(by_alias=True, exclude_unset=True, mode="json") == resource


def test_every_resource_passes_strict_schema_validation(built):
    _, resources = built
    version = kubernetes_validate.latest_version()
    for resource in resources:
        if resource["apiVersion"] == KEDA_API:
            validate_keda(resource)
        else:
            kubernetes_validate.validate(resource, version, strict=True)


def test_keda_validation_catches_wrong_types_and_unknown_fields(production):
    scaled = named(production, "ScaledObject", "digitflow-worker")
    wrong_type = {**scaled, "spec": {**scaled["spec"], "minReplicaCount": "two"}}
    unknown = {**scaled, "spec": {**scaled["spec"], "minReplicas": 2}}
    for broken in (wrong_type, unknown):
        with pytest.raises((ValueError, AssertionError)):
            validate_keda(broken)


def selected_by(selector: dict, labels: dict) -> bool:
    expressions = selector.get("matchExpressions", [])
    assert all(e["operator"] == "In" for e in expressions), "only In is supported here"
    return selector.get("matchLabels", {}).items() <= labels.items() and all(
        labels.get(e["key"]) in e["values"] for e in expressions
    )


def test_hpa_pdb_and_network_policies_cover_the_workloads(built):
    _, resources = built
    api = named(resources, "Deployment", "digitflow-api")
    api_labels = api["spec"]["template"]["metadata"]["labels"]
    hpa = named(resources, "HorizontalPodAutoscaler", "digitflow-api")["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "digitflow-api",
    }
    assert 1 <= hpa["minReplicas"] <= hpa["maxReplicas"]
    assert api["spec"]["replicas"] == hpa["minReplicas"]
    # A PDB that allows no disruption at the HPA's minimum would block every node drain.
    pdb = named(resources, "PodDisruptionBudget", "digitflow-api")["spec"]
    assert selected_by(pdb["selector"], api_labels)
    assert pdb["minAvailable"] < hpa["minReplicas"] or hpa["minReplicas"] == 1
    # A rolling update never takes serving capacity away (maxUnavailable 0).
    assert api["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    policies = [r["spec"] for r in resources if r["kind"] == "NetworkPolicy"]
    for workload in workloads(resources):
        labels = pod_spec_labels(workload)
        covering = [p for p in policies if selected_by(p["podSelector"], labels)]
        assert any("Ingress" in p["policyTypes"] for p in covering), workload["metadata"]["name"]
        ingress = [rule for p in covering for rule in p.get("ingress", [])]
        if workload is api:
            assert [port["port"] for rule in ingress for port in rule["ports"]] == [8000]
        elif workload["metadata"]["name"].startswith("digitflow-"):
            assert ingress == [], f"{workload['metadata']['name']} takes no connections"
        else:  # a dependency (local overlay): open to DigitFlow's pods, which must match
            peers = [peer["podSelector"] for rule in ingress for peer in rule["from"]]
            assert peers and all(selected_by(peer, api_labels) for peer in peers)


def pod_spec_labels(resource: dict) -> dict:
    spec = resource["spec"]
    if resource["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["metadata"]["labels"]


def test_every_container_is_restricted_and_bounded(built):
    _, resources = built
    assert workloads(resources)
    for workload in workloads(resources):
        pod = pod_spec(workload)
        where = f"{workload['kind']}/{workload['metadata']['name']}"
        assert pod["securityContext"]["runAsNonRoot"] is True, where
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", where
        assert pod.get("automountServiceAccountToken") is False, where
        writable = {m["mountPath"] for c in containers(workload) for m in c.get("volumeMounts", [])}
        for container in containers(workload):
            at = f"{where} container {container['name']}"
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][bound]), f"{at} {bound}"
            context = container["securityContext"]
            assert context["runAsNonRoot"] is True, at
            assert context["readOnlyRootFilesystem"] is True, at
            assert context["allowPrivilegeEscalation"] is False, at
            assert context["capabilities"]["drop"] == ["ALL"], at
            assert not context["capabilities"].get("add"), at
            if is_own_image(container):
                assert "/tmp" in writable, f"{at}: read-only root needs an emptyDir on /tmp"


def test_api_has_liveness_and_readiness_probes(built):
    _, resources = built
    api = named(resources, "Deployment", "digitflow-api")
    (container,) = pod_spec(api)["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8000}
    # `digitflow serve`: one API process per core of limits.cpu, as in the image (tests/test_serve)
    assert container["command"][:4] == ["python", "-m", "digitflow.cli", "serve"]
    service = named(resources, "Service", "digitflow-api")
    selector = service["spec"]["selector"]
    assert selector.items() <= api["spec"]["template"]["metadata"]["labels"].items()


def test_worker_does_not_prefetch_and_beat_runs_alone(built):
    _, resources = built
    worker = named(resources, "Deployment", "digitflow-worker")
    command = pod_spec(worker)["containers"][0]["command"]
    # A prefetching worker takes messages off the Redis list and hides the backlog from KEDA.
    assert command[:4] == ["celery", "-A", "worker.celery_app", "worker"]
    assert "--prefetch-multiplier=1" in command
    beat = named(resources, "Deployment", "digitflow-beat")
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"]["type"] == "Recreate"
    migrate = named(resources, "Job", "digitflow-migrate")
    assert pod_spec(migrate)["containers"][0]["command"] == ["/app/infra/docker/prestart.sh"]


def test_config_and_secret_references_resolve(built):
    overlay, resources = built
    present = {(r["kind"], r["metadata"]["name"]) for r in resources}
    for workload in workloads(resources):
        for container in containers(workload):
            for source in container.get("envFrom", []):
                kind, ref = (
                    ("ConfigMap", source["configMapRef"])
                    if "configMapRef" in source
                    else ("Secret", source["secretRef"])
                )
                if overlay != "overlays/local" and kind == "Secret":
                    # Read by name: made by the operator or the External Secrets Operator.
                    assert ref["name"] == SECRET_NAME
                    continue
                assert (kind, ref["name"]) in present, f"{workload['metadata']['name']}: {ref}"


# --- production and KEDA ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def production(tmp_path_factory) -> list[dict]:
    return build("overlays/production", tmp_path_factory.mktemp("production"))


def worker_queues() -> set[str]:
    """Queues the Celery app consumes, read from worker.celery_app once it exists."""
    try:
        module = importlib.import_module("worker.celery_app")
    except ModuleNotFoundError as error:
        if error.name not in {"worker.celery_app", "celery"}:
            raise
        return {DOCUMENTS_QUEUE}  # worker/ not written yet: hold KEDA to the agreed contract
    constants = {
        getattr(module, name)
        for name in ("DOCUMENTS_QUEUE", "QUEUE_NAME", "QUEUE")
        if isinstance(getattr(module, name, None), str)
    }
    if constants:
        return constants
    app = getattr(module, "celery_app", None) or module.app
    conf = app.conf
    queues = {conf.task_default_queue}
    queues |= {queue.name for queue in conf.task_queues or ()}
    routes = conf.task_routes if isinstance(conf.task_routes, dict) else {}
    queues |= {route["queue"] for route in routes.values() if isinstance(route, dict)}
    return queues


def test_keda_scales_the_worker_on_its_own_queue(production):
    scaled = named(production, "ScaledObject", "digitflow-worker")
    spec = scaled["spec"]
    target = spec["scaleTargetRef"]
    assert target.get("kind", "Deployment") == "Deployment"
    named(production, "Deployment", target["name"])
    assert 1 <= spec["minReplicaCount"] < spec["maxReplicaCount"]
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "redis"
    metadata = trigger["metadata"]
    assert metadata["listName"] == DOCUMENTS_QUEUE
    assert metadata["listName"] in worker_queues()
    # KEDA's metadata values are strings; a number here is rejected by the operator.
    assert all(isinstance(value, str) for value in metadata.values()), metadata
    assert int(metadata["listLength"]) > 0
    assert metadata["enableTLS"] == "true"  # Azure Cache for Redis: TLS on 6380

    auth = named(production, "TriggerAuthentication", trigger["authenticationRef"]["name"])
    refs = {ref["parameter"]: ref for ref in auth["spec"]["secretTargetRef"]}
    assert set(refs) == {"address", "password"}
    for ref in refs.values():
        assert ref["name"] == SECRET_NAME
        assert ref["key"] in secret_keys_documented(), ref


def secret_keys_documented() -> set[str]:
    """The Secret's keys, as secrets.env.example tells the operator to fill them in."""
    example = (K8S / "overlays" / "production" / "secrets.env.example").read_text()
    return {
        line.split("=", 1)[0]
        for line in example.splitlines()
        if "=" in line and not line.startswith("#")
    }


def test_production_renders_without_a_secret_and_documents_creating_it(production):
    assert not [r for r in production if r["kind"] == "Secret"]
    guide = (ROOT / "docs" / "deployment.md").read_text()
    assert f"create secret generic {SECRET_NAME}" in guide
    assert "ExternalSecret" in guide


def test_external_secrets_component_fills_every_documented_key(tmp_path):
    tree = clean_copy(tmp_path)
    kustomization = tree / "overlays" / "production" / "kustomization.yaml"
    spec = yaml.safe_load(kustomization.read_text())
    spec["components"].append("../../components/external-secrets")  # as the guide says
    kustomization.write_text(yaml.safe_dump(spec))
    resources = build("overlays/production", tmp_path, tree)
    external = named(resources, "ExternalSecret", SECRET_NAME)
    assert external["metadata"]["namespace"] == "digitflow"
    assert external["spec"]["target"]["name"] == SECRET_NAME
    assert {d["secretKey"] for d in external["spec"]["data"]} == secret_keys_documented()
    assert all(d["remoteRef"]["key"] for d in external["spec"]["data"])


def test_production_pulls_versioned_images_from_a_registry(production):
    for workload in workloads(production):
        for container in containers(workload):
            image = container["image"]
            assert "/" in image and ":" in image and not image.endswith(":latest"), image


def test_real_secrets_cannot_be_committed():
    example = (K8S / "overlays" / "production" / "secrets.env.example").read_text()
    lines = [line for line in example.splitlines() if line and not line.startswith("#")]
    values = [line.split("=", 1)[1] for line in lines]
    assert values and all("CHANGE_ME" in value for value in values)
    git = shutil.which("git")
    if git and (ROOT / ".git").exists():
        ignored = subprocess.run(
            [git, "check-ignore", "-q", "infra/k8s/overlays/production/secrets.env"], cwd=ROOT
        )
        assert ignored.returncode == 0, "secrets.env must be git-ignored"
