"""Kubernetes manifests (deploy/k8s): schemas offline, and how the objects fit together.

Built-in kinds are validated strictly (unknown fields rejected) against the Kubernetes
OpenAPI schemas bundled with ``kubernetes-validate``, for the oldest supported minor and
the newest bundled one. KEDA's ScaledObject is a CRD: it is validated against the JSON
schema vendored in deploy/k8s/schemas (derived from KEDA's CRD). Then the references
between objects are followed: selectors, ports, probes, scale targets, config sources.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

kubernetes_validate = pytest.importorskip(
    "kubernetes_validate", reason="kubernetes-validate (dev extra) bundles the k8s schemas"
)
jsonschema = pytest.importorskip("jsonschema", reason="jsonschema validates the KEDA CRD")

from nqp.config import StreamSettings  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
KEDA_SCHEMA = K8S / "schemas" / "keda-scaledobject-v1alpha1.json"
OLDEST_SUPPORTED = "1.29.0"  # documented in docs/operations.md
NAMESPACE = "nqp"
NON_K8S = {"kustomization.yaml"}


def _load(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


MANIFESTS = {p.name: _load(p) for p in sorted(K8S.glob("*.yaml")) if p.name not in NON_K8S}
OBJECTS = [(name, doc) for name, docs in MANIFESTS.items() for doc in docs]


def _objects(kind: str) -> list[dict[str, Any]]:
    return [d for _, d in OBJECTS if d["kind"] == kind]


def _one(kind: str, name: str) -> dict[str, Any]:
    found = [d for d in _objects(kind) if d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def _validate_builtin(doc: dict[str, Any], version: str) -> None:
    kubernetes_validate.validate(doc, version, strict=True)


def _keda_validator() -> Any:
    schema = json.loads(KEDA_SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


BUILTIN = [
    pytest.param(doc, id=f"{name}:{doc['kind']}/{doc['metadata']['name']}")
    for name, doc in OBJECTS
    if doc["apiVersion"] != "keda.sh/v1alpha1"
]


@pytest.mark.parametrize("version", [OLDEST_SUPPORTED, kubernetes_validate.latest_version()])
@pytest.mark.parametrize("doc", BUILTIN)
def test_builtin_objects_match_kubernetes_schema(doc, version):
    _validate_builtin(doc, version)


def test_schema_check_rejects_unknown_and_mistyped_fields():
    deployment = copy.deepcopy(_one("Deployment", "nqp-gateway"))
    deployment["spec"]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate_builtin(deployment, OLDEST_SUPPORTED)
    probe = copy.deepcopy(_one("Deployment", "nqp-gateway"))
    probe["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["periodSeconds"] = "5s"
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate_builtin(probe, OLDEST_SUPPORTED)


def test_scaledobject_matches_vendored_keda_schema():
    validator = _keda_validator()
    objects = _objects("ScaledObject")
    assert len(objects) == 1
    errors = [e.message for e in validator.iter_errors(objects[0])]
    assert errors == []


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("spec", "triggers", 0, "metadata", "lagThreshold"), 4000),  # must be a string
        (("spec", "triggers", 0, "metadata", "lagTreshold"), "5"),  # misspelt key
        (("spec", "triggers", 0, "metadata", "offsetResetPolicy"), "oldest"),
        (("spec", "maxReplicas"), 4),  # HPA's name, not KEDA's
        (("spec", "scaleTargetRef", "name"), ""),
        (("spec", "minReplicaCount"), -1),
    ],
)
def test_keda_schema_rejects_broken_scaledobjects(path, value):
    doc = copy.deepcopy(_objects("ScaledObject")[0])
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert list(_keda_validator().iter_errors(doc)), f"accepted {path} = {value!r}"


def test_kustomization_lists_every_manifest_but_the_secret_template():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    assert listed == set(MANIFESTS) - {"secret.example.yaml"}
    assert all((K8S / r).is_file() for r in listed)
    images = {i["name"] for i in kustomization["images"]}
    used = {
        c["image"].split(":")[0]
        for d in _objects("Deployment") + _objects("Job")
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert used == images == {"nqp"}


def test_everything_lives_in_the_nqp_namespace():
    for name, doc in OBJECTS:
        if doc["kind"] == "Namespace":
            assert doc["metadata"]["name"] == NAMESPACE
        else:
            assert doc["metadata"].get("namespace") == NAMESPACE, name


def _pod_workloads() -> list[dict[str, Any]]:
    return _objects("Deployment") + _objects("Job")


@pytest.mark.parametrize("workload", _pod_workloads(), ids=lambda d: d["metadata"]["name"])
def test_pods_meet_the_restricted_pod_security_standard(workload):
    spec = workload["spec"]["template"]["spec"]
    pod_sc = spec["securityContext"]
    assert pod_sc["runAsNonRoot"] is True
    assert pod_sc["runAsUser"] >= 1000
    assert pod_sc["seccompProfile"]["type"] == "RuntimeDefault"
    assert spec["automountServiceAccountToken"] is False
    for container in spec["containers"]:
        sc = container["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert sc["readOnlyRootFilesystem"] is True
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        # writable paths the image needs: data dir, numba cache, /tmp
        assert {"/var/lib/nqp", "/var/cache/nqp", "/tmp"} <= mounts
        assert "memory" in container["resources"]["limits"]
        assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    volumes = {v["name"]: v for v in spec["volumes"]}
    for container in spec["containers"]:
        for mount in container["volumeMounts"]:
            assert "emptyDir" in volumes[mount["name"]]


def _labels_match(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


@pytest.mark.parametrize("deployment", _objects("Deployment"), ids=lambda d: d["metadata"]["name"])
def test_deployment_selects_its_pods_and_has_probes(deployment):
    name = deployment["metadata"]["name"]
    template = deployment["spec"]["template"]
    assert _labels_match(
        deployment["spec"]["selector"]["matchLabels"], template["metadata"]["labels"]
    )
    # replicas belong to the autoscaler (HPA or KEDA); a fixed count would fight it on apply
    assert "replicas" not in deployment["spec"], name
    container = template["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) in ports.values()
    assert annotations["prometheus.io/path"] == "/metrics"
    probes = {
        k: container[k]["httpGet"] for k in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert probes["startupProbe"]["path"] == "/healthz"
    assert probes["livenessProbe"]["path"] == "/healthz"
    assert probes["readinessProbe"]["path"] == "/readyz"
    for probe in probes.values():
        assert probe["port"] in ports, f"{name}: probe port {probe['port']} is not declared"
    sources = container["envFrom"]
    assert {"configMapRef": {"name": "nqp-config"}} in sources
    assert {"secretRef": {"name": "nqp-secrets"}} in sources
    strategy = deployment["spec"]["strategy"]["rollingUpdate"]
    assert strategy["maxUnavailable"] == 0  # rolling upgrades never lose capacity


def test_gateway_grace_period_covers_the_drain():
    """uvicorn drains for 30 s (cli.serve: timeout_graceful_shutdown=30) after a preStop sleep."""
    spec = _one("Deployment", "nqp-gateway")["spec"]["template"]["spec"]
    pre_stop = spec["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    assert spec["terminationGracePeriodSeconds"] >= 30 + int(pre_stop[1]) + 5


def test_worker_serves_metrics_where_probes_and_scrapes_look():
    spec = _one("Deployment", "nqp-worker")["spec"]["template"]
    container = spec["spec"]["containers"][0]
    args = container["args"]
    port = int(args[args.index("--metrics-port") + 1])
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"metrics": port}
    assert int(spec["metadata"]["annotations"]["prometheus.io/port"]) == port


def test_service_routes_to_the_gateway_port():
    service = _one("Service", "nqp-gateway")
    gateway = _one("Deployment", "nqp-gateway")
    pod_labels = gateway["spec"]["template"]["metadata"]["labels"]
    assert _labels_match(service["spec"]["selector"], pod_labels)
    worker_labels = _one("Deployment", "nqp-worker")["spec"]["template"]["metadata"]["labels"]
    assert not _labels_match(service["spec"]["selector"], worker_labels)
    port_names = {p["name"] for p in gateway["spec"]["template"]["spec"]["containers"][0]["ports"]}
    for port in service["spec"]["ports"]:
        assert port["targetPort"] in port_names


def test_hpa_targets_the_gateway_on_cpu_and_latency():
    hpa = _one("HorizontalPodAutoscaler", "nqp-gateway")
    ref = hpa["spec"]["scaleTargetRef"]
    assert (ref["kind"], ref["name"]) == ("Deployment", "nqp-gateway")
    _one(ref["kind"], ref["name"])
    kinds = {m["type"]: m for m in hpa["spec"]["metrics"]}
    assert kinds["Resource"]["resource"]["name"] == "cpu"
    latency = kinds["Pods"]["pods"]
    adapter = yaml.safe_load((K8S / "addons" / "prometheus-adapter-values.yaml").read_text())
    served = {rule["name"]["as"] for rule in adapter["rules"]["custom"]}
    assert latency["metric"]["name"] in served, "the adapter does not serve the HPA's metric"
    assert hpa["spec"]["minReplicas"] >= 2  # the PDB's minAvailable 1 leaves room to drain


def test_scaledobject_follows_the_worker_group():
    scaled = _objects("ScaledObject")[0]
    ref = scaled["spec"]["scaleTargetRef"]
    assert (ref["kind"], ref["name"]) == ("Deployment", "nqp-worker")
    _one(ref["kind"], ref["name"])
    trigger = scaled["spec"]["triggers"][0]
    assert trigger["type"] == "kafka"
    meta = trigger["metadata"]
    config = _one("ConfigMap", "nqp-config")["data"]
    defaults = StreamSettings()
    assert meta["consumerGroup"] == config.get("NQP_STREAM__GROUP_ID", defaults.group_id)
    assert meta["topic"] == config.get("NQP_STREAM__INPUT_TOPIC", defaults.input_topic)
    assert meta["bootstrapServers"] == config["NQP_STREAM__BOOTSTRAP_SERVERS"]
    partitions = int(config.get("NQP_STREAM__PARTITIONS", defaults.partitions))
    assert scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"] <= partitions
    assert meta["allowIdleConsumers"] == "false"


@pytest.mark.parametrize(
    "pdb", _objects("PodDisruptionBudget"), ids=lambda d: d["metadata"]["name"]
)
def test_pdb_selects_exactly_one_deployment(pdb):
    selector = pdb["spec"]["selector"]["matchLabels"]
    matched = [
        d["metadata"]["name"]
        for d in _objects("Deployment")
        if _labels_match(selector, d["spec"]["template"]["metadata"]["labels"])
    ]
    assert matched == [pdb["metadata"]["name"]]


def test_secret_template_is_not_applied_and_holds_placeholders():
    secret = MANIFESTS["secret.example.yaml"][0]
    assert secret["metadata"]["name"] == "nqp-secrets"
    for key, value in secret["stringData"].items():
        assert "CHANGE-ME" in value, f"{key} must hold a placeholder, not a secret"


def test_migration_job_runs_migrate_and_cleans_up():
    job = _one("Job", "nqp-migrate")
    assert job["spec"]["ttlSecondsAfterFinished"] > 0
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][0] == "migrate"
    assert job["spec"]["template"]["spec"]["restartPolicy"] in {"Never", "OnFailure"}
