"""The Kustomize overlays render to hardened, consistent Kubernetes objects.

Rendering uses ``kubectl kustomize`` (kustomize built into kubectl); built-in
kinds are checked against the Kubernetes JSON schemas that the
``kubernetes-validate`` package ships. Nothing talks to a cluster.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.infra.manifests import K8S_DIR, OVERLAYS, REPO_ROOT, SERVICE_PORTS, SERVICES_WITH_DATA

Obj = dict[str, Any]
KUBERNETES_VERSION = "1.30"
CUSTOM_KINDS = {("keda.sh/v1alpha1", "ScaledObject"), ("keda.sh/v1alpha1", "TriggerAuthentication")}
MIB = 1024 * 1024


def of_kind(objects: list[Obj], kind: str) -> list[Obj]:
    return [o for o in objects if o["kind"] == kind]


def named(objects: list[Obj], kind: str, name: str) -> Obj:
    matches = [o for o in of_kind(objects, kind) if o["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


def pod_specs(objects: list[Obj]) -> Iterator[tuple[str, Obj]]:
    """(workload name, pod spec) of every Deployment and Job."""
    for obj in objects:
        if obj["kind"] in ("Deployment", "Job"):
            yield obj["metadata"]["name"], obj["spec"]["template"]["spec"]


def containers(spec: Obj) -> list[Obj]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def quantity_bytes(quantity: str) -> int:
    number, unit = re.fullmatch(r"(\d+)(Mi|Gi)", quantity).groups()  # type: ignore[union-attr]
    return int(number) * (MIB if unit == "Mi" else 1024 * MIB)


def selects(selector: Obj, labels: dict[str, str]) -> bool:
    """Label-selector semantics for matchLabels and the In operator (all we use)."""
    if not all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        assert expr["operator"] == "In", f"unsupported operator {expr['operator']}"
        if labels.get(expr["key"]) not in expr["values"]:
            return False
    return True


def pod_labels(objects: list[Obj], workload: str) -> dict[str, str]:
    for obj in objects:
        if obj["kind"] in ("Deployment", "Job") and obj["metadata"]["name"] == workload:
            labels: dict[str, str] = obj["spec"]["template"]["metadata"]["labels"]
            return labels
    raise AssertionError(f"no workload {workload}")


def policies_for(objects: list[Obj], labels: dict[str, str], direction: str) -> list[Obj]:
    return [
        np
        for np in of_kind(objects, "NetworkPolicy")
        if direction in np["spec"]["policyTypes"] and selects(np["spec"]["podSelector"], labels)
    ]


def overlay_params() -> list[Any]:
    return [pytest.param(o, id=o) for o in OVERLAYS]


# ------------------------------------------------------------------ rendering


@pytest.mark.parametrize("overlay", overlay_params())
def test_overlay_renders_namespaced_objects(rendered: dict[str, list[Obj]], overlay: str) -> None:
    objects = rendered[overlay]
    kinds = {o["kind"] for o in objects}
    assert {"Namespace", "Deployment", "Service", "ServiceAccount", "ConfigMap", "NetworkPolicy", "Job"} <= kinds
    assert {"HorizontalPodAutoscaler", "ScaledObject", "TriggerAuthentication", "PodDisruptionBudget"} <= kinds
    for obj in objects:
        if obj["kind"] != "Namespace":
            assert obj["metadata"].get("namespace") == "vectrion", f"{obj['kind']}/{obj['metadata']['name']}"
        assert obj["metadata"]["labels"]["app.kubernetes.io/part-of"] == "vectrion"


@pytest.mark.parametrize("overlay", overlay_params())
def test_builtin_objects_match_the_kubernetes_schemas(rendered: dict[str, list[Obj]], overlay: str) -> None:
    kubernetes_validate = pytest.importorskip(
        "kubernetes_validate", reason="kubernetes-validate (PyPI) ships the Kubernetes JSON schemas"
    )
    for obj in rendered[overlay]:
        if (obj["apiVersion"], obj["kind"]) in CUSTOM_KINDS:
            continue  # CRDs: checked by the KEDA tests below
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_schema_validation_rejects_a_misspelt_field() -> None:
    """Guards the test above: strict validation must catch an unknown field."""
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    bad = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": {"selectr": {"a": "b"}}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBERNETES_VERSION, strict=True)


# ------------------------------------------------------------------ workloads


@pytest.mark.parametrize("overlay", overlay_params())
def test_each_service_has_deployment_service_and_serviceaccount(rendered: dict[str, list[Obj]], overlay: str) -> None:
    objects = rendered[overlay]
    for service, port in SERVICE_PORTS.items():
        deployment = named(objects, "Deployment", service)
        named(objects, "ServiceAccount", service)
        svc = named(objects, "Service", service)
        assert svc["spec"]["ports"][0]["port"] == port
        assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == service
        assert deployment["spec"]["template"]["spec"]["containers"][0]["ports"] == [
            {"name": "http", "containerPort": port}
        ]


@pytest.mark.parametrize("overlay", overlay_params())
def test_every_service_selects_an_existing_deployment(rendered: dict[str, list[Obj]], overlay: str) -> None:
    objects = rendered[overlay]
    deployments = of_kind(objects, "Deployment")
    for svc in of_kind(objects, "Service"):
        selector = svc["spec"]["selector"]
        targets = [
            d for d in deployments if selects({"matchLabels": selector}, d["spec"]["template"]["metadata"]["labels"])
        ]
        assert len(targets) == 1, f"Service {svc['metadata']['name']} selects {len(targets)} Deployments"
        port_names = {p["name"] for c in targets[0]["spec"]["template"]["spec"]["containers"] for p in c["ports"]}
        for port in svc["spec"]["ports"]:
            assert port["targetPort"] in port_names


@pytest.mark.parametrize("overlay", overlay_params())
def test_deployment_selectors_match_their_pod_labels(rendered: dict[str, list[Obj]], overlay: str) -> None:
    for deployment in of_kind(rendered[overlay], "Deployment"):
        assert selects(deployment["spec"]["selector"], deployment["spec"]["template"]["metadata"]["labels"])


@pytest.mark.parametrize("overlay", overlay_params())
def test_every_deployment_probes_healthz_and_readyz(rendered: dict[str, list[Obj]], overlay: str) -> None:
    for deployment in of_kind(rendered[overlay], "Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            where = f"{deployment['metadata']['name']}/{container['name']}"
            assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}, where
            assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}, where


@pytest.mark.parametrize("overlay", overlay_params())
def test_every_pod_is_non_root_read_only_and_unprivileged(rendered: dict[str, list[Obj]], overlay: str) -> None:
    for workload, spec in pod_specs(rendered[overlay]):
        assert spec["securityContext"]["runAsNonRoot"] is True, workload
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, workload
        assert spec["automountServiceAccountToken"] is False, workload
        tmp_volumes = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
        for container in containers(spec):
            where = f"{workload}/{container['name']}"
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, where
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["capabilities"]["drop"] == ["ALL"], where
            assert "add" not in security["capabilities"], where
            tmp_mounts = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
            assert tmp_mounts and tmp_mounts[0]["name"] in tmp_volumes, f"{where}: /tmp must be an emptyDir"


@pytest.mark.parametrize("overlay", overlay_params())
def test_every_container_has_requests_and_limits(rendered: dict[str, list[Obj]], overlay: str) -> None:
    for workload, spec in pod_specs(rendered[overlay]):
        for container in containers(spec):
            resources = container["resources"]
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources[kind]), f"{workload}/{container['name']} {kind}"
            assert quantity_bytes(resources["requests"]["memory"]) <= quantity_bytes(resources["limits"]["memory"])


@pytest.mark.parametrize("overlay", overlay_params())
def test_memory_limits_fit_each_workload(rendered: dict[str, list[Obj]], overlay: str) -> None:
    for service in SERVICE_PORTS:
        spec = named(rendered[overlay], "Deployment", service)["spec"]["template"]["spec"]
        limit = quantity_bytes(spec["containers"][0]["resources"]["limits"]["memory"])
        if service in ("chunker", "embedder"):
            assert limit == 1536 * MIB, service  # model / extraction working set
        else:
            assert 300 * MIB <= limit <= 512 * MIB, service


@pytest.mark.parametrize("overlay", overlay_params())
def test_images_are_tagged_and_never_latest(rendered: dict[str, list[Obj]], overlay: str) -> None:
    for workload, spec in pod_specs(rendered[overlay]):
        for container in containers(spec):
            image = container["image"]
            assert re.fullmatch(r"[\w./-]+:[\w.-]+", image) and not image.endswith(":latest"), f"{workload}: {image}"


def test_overlays_set_their_own_image_tags(rendered: dict[str, list[Obj]]) -> None:
    for service in SERVICE_PORTS:
        dev = named(rendered["dev"], "Deployment", service)["spec"]["template"]["spec"]["containers"][0]["image"]
        prod = named(rendered["prod"], "Deployment", service)["spec"]["template"]["spec"]["containers"][0]["image"]
        assert dev == f"vectrion-{service}:dev"
        assert prod.endswith(f"/vectrion-{service}:0.1.0") and prod != dev


def test_prod_runs_more_replicas_than_dev(rendered: dict[str, list[Obj]]) -> None:
    for name in ("ingest", "chunker", "guardrails"):
        assert (
            named(rendered["prod"], "Deployment", name)["spec"]["replicas"]
            > named(rendered["dev"], "Deployment", name)["spec"]["replicas"]
        )
    for name in ("gateway", "query"):
        prod_hpa = named(rendered["prod"], "HorizontalPodAutoscaler", name)["spec"]
        dev_hpa = named(rendered["dev"], "HorizontalPodAutoscaler", name)["spec"]
        assert prod_hpa["minReplicas"] > dev_hpa["minReplicas"]


# ------------------------------------------------------------------ config and secrets


@pytest.mark.parametrize("overlay", overlay_params())
def test_configmap_references_resolve(rendered: dict[str, list[Obj]], overlay: str) -> None:
    objects = rendered[overlay]
    configmaps = {o["metadata"]["name"] for o in of_kind(objects, "ConfigMap")}
    for workload, spec in pod_specs(objects):
        for container in containers(spec):
            for source in container.get("envFrom", []):
                assert source["configMapRef"]["name"] in configmaps, workload


def _secret_refs(objects: list[Obj]) -> Iterator[tuple[str, str, str | None, bool]]:
    """(where, secret name, key or None for a whole volume, optional) of every Secret reference."""
    for workload, spec in pod_specs(objects):
        for volume in spec.get("volumes", []):
            if "secret" in volume:
                for item in volume["secret"].get("items", []):
                    yield workload, volume["secret"]["secretName"], item["key"], False
        for container in containers(spec):
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    yield workload, ref["name"], ref["key"], bool(ref.get("optional"))
    for auth in of_kind(objects, "TriggerAuthentication"):
        for ref in auth["spec"]["secretTargetRef"]:
            yield auth["metadata"]["name"], ref["name"], ref["key"], False


def test_dev_secret_references_resolve_to_the_generated_secret(rendered: dict[str, list[Obj]]) -> None:
    secrets = {s["metadata"]["name"]: set(s["data"]) for s in of_kind(rendered["dev"], "Secret")}
    assert len(secrets) == 1 and next(iter(secrets)).startswith("vectrion-secrets-"), secrets
    for where, name, key, _optional in _secret_refs(rendered["dev"]):
        assert name in secrets, f"{where} references Secret {name}, which the overlay does not render"
        assert key in secrets[name], f"{where} needs key {key} of {name}"


def test_prod_references_an_existing_secret_with_the_documented_keys(rendered: dict[str, list[Obj]]) -> None:
    assert not of_kind(rendered["prod"], "Secret"), "prod must not commit or generate secrets"
    example = (K8S_DIR / "overlays" / "dev" / "secrets.env.example").read_text()
    documented = {line.split("=", 1)[0] for line in example.splitlines() if "=" in line and not line.startswith("#")}
    for where, name, key, _optional in _secret_refs(rendered["prod"]):
        assert name == "vectrion-secrets", where
        assert key in documented, f"{where} needs key {key}, not documented in secrets.env.example"


def test_services_read_secrets_from_files() -> None:
    """Vectrion's own secrets come in as files (VECTRION_*_FILE), never as plain env values."""
    for service in SERVICE_PORTS:
        text = (K8S_DIR / "base" / "services" / f"{service}.yaml").read_text()
        for name in ("VECTRION_INTERNAL_TOKEN_SECRET", "VECTRION_RABBITMQ_URL", "VECTRION_JWT_SECRET"):
            assert f"name: {name}\n" not in text, f"{service}: use {name}_FILE"
        assert "name: VECTRION_INTERNAL_TOKEN_SECRET_FILE" in text


def test_real_secret_env_files_are_git_ignored() -> None:
    def ignored(relative: str) -> bool:
        return subprocess.run(["git", "check-ignore", "-q", relative], cwd=REPO_ROOT, check=False).returncode == 0

    assert ignored("infra/k8s/overlays/dev/secrets.env")
    assert ignored("infra/k8s/overlays/prod/secrets.env")
    assert not ignored("infra/k8s/overlays/dev/secrets.env.example")


# ------------------------------------------------------------------ network policies


@pytest.mark.parametrize("overlay", overlay_params())
def test_default_deny_covers_every_pod(rendered: dict[str, list[Obj]], overlay: str) -> None:
    deny = named(rendered[overlay], "NetworkPolicy", "default-deny-all")["spec"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny


@pytest.mark.parametrize("overlay", overlay_params())
def test_every_workload_has_its_own_network_policy(rendered: dict[str, list[Obj]], overlay: str) -> None:
    objects = rendered[overlay]
    for workload in [*SERVICE_PORTS, "vectrion-migrate"]:
        labels = pod_labels(objects, workload)
        own = [np for np in policies_for(objects, labels, "Egress") if np["spec"]["podSelector"] != {}]
        assert own, f"{workload} has no NetworkPolicy of its own"


def _ingress_sources(objects: list[Obj], service: str) -> list[tuple[Any, Any]]:
    """(from peers or None for anywhere, ports) of every ingress rule that admits the service's pods."""
    rules = []
    for np in policies_for(objects, pod_labels(objects, service), "Ingress"):
        for rule in np["spec"].get("ingress", []):
            rules.append((rule.get("from"), rule.get("ports")))
    return rules


def _is_monitoring(peers: Any) -> bool:
    return bool(peers == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}])


def test_gateway_accepts_traffic_from_anywhere_on_8000(rendered: dict[str, list[Obj]]) -> None:
    assert (None, [{"protocol": "TCP", "port": 8000}]) in _ingress_sources(rendered["prod"], "gateway")


def _from(*workloads: str) -> list[dict[str, Any]]:
    return [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": w}}} for w in workloads]


# Who may call whom over HTTP: the gateway the public-facing services, ingest (the reconciler)
# the admin APIs of chunker and query; nothing reaches the embedder but metric scrapes.
HTTP_CALLERS = {
    "ingest": _from("gateway"),
    "query": _from("gateway", "ingest"),
    "guardrails": _from("gateway"),
    "chunker": _from("ingest"),
}


@pytest.mark.parametrize("service", HTTP_CALLERS)
def test_internal_http_services_accept_only_their_callers(rendered: dict[str, list[Obj]], service: str) -> None:
    sources = _ingress_sources(rendered["prod"], service)
    assert (HTTP_CALLERS[service], [{"protocol": "TCP", "port": SERVICE_PORTS[service]}]) in sources
    for peers, _ports in sources:
        assert peers == HTTP_CALLERS[service] or _is_monitoring(peers), f"{service} admits {peers}"


def test_the_embedder_accepts_only_metric_scrapes(rendered: dict[str, list[Obj]]) -> None:
    for peers, _ports in _ingress_sources(rendered["prod"], "embedder"):
        assert _is_monitoring(peers), f"embedder admits {peers}"


EGRESS_PORTS = {
    "gateway": {53, 4318, 5432, 6379, 5672, 8001, 8004, 8005},
    "ingest": {53, 4318, 5432, 5672, 443, 9000, 8002, 8004},
    "chunker": {53, 4318, 5432, 5672, 443, 9000},
    "embedder": {53, 4318, 5672},
    "query": {53, 4318, 5432, 5672, 6333, 6334},
    "guardrails": {53, 4318, 5672},
    "vectrion-migrate": {53, 4318, 5432},
}


@pytest.mark.parametrize("workload", EGRESS_PORTS)
def test_egress_allows_exactly_the_dependencies(rendered: dict[str, list[Obj]], workload: str) -> None:
    objects = rendered["prod"]
    ports = {
        port["port"]
        for np in policies_for(objects, pod_labels(objects, workload), "Egress")
        for rule in np["spec"].get("egress", [])
        for port in rule["ports"]
    }
    assert ports == EGRESS_PORTS[workload]


# ------------------------------------------------------------------ autoscaling, disruption, migrations


@pytest.mark.parametrize("overlay", overlay_params())
def test_autoscaled_deployments_leave_replicas_to_the_scaler(rendered: dict[str, list[Obj]], overlay: str) -> None:
    objects = rendered[overlay]
    for hpa in of_kind(objects, "HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]
        assert target["kind"] == "Deployment"
        assert "replicas" not in named(objects, "Deployment", target["name"])["spec"]
    assert {h["spec"]["scaleTargetRef"]["name"] for h in of_kind(objects, "HorizontalPodAutoscaler")} == {
        "gateway",
        "query",
    }
    scaled = named(objects, "ScaledObject", "embedder")["spec"]
    assert "replicas" not in named(objects, "Deployment", scaled["scaleTargetRef"]["name"])["spec"]


@pytest.mark.parametrize("overlay", overlay_params())
def test_embedder_scales_on_its_rabbitmq_queue(rendered: dict[str, list[Obj]], overlay: str) -> None:
    from vectrion_common.contracts import EmbeddingRequestedV2
    from vectrion_common.messaging.topology import Topology

    objects = rendered[overlay]
    config = next(iter(of_kind(objects, "ConfigMap")))["data"]
    expected = Topology(config["VECTRION_BROKER_NAMESPACE"]).queue_name("embedder", EmbeddingRequestedV2)
    assert expected == "vectrion.embedder.embedding.requested.v2"

    spec = named(objects, "ScaledObject", "embedder")["spec"]
    assert spec["scaleTargetRef"] == {"name": "embedder"}
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "rabbitmq"
    assert trigger["metadata"]["queueName"] == expected
    assert trigger["metadata"]["mode"] == "QueueLength" and int(trigger["metadata"]["value"]) > 0
    auth = named(objects, "TriggerAuthentication", trigger["authenticationRef"]["name"])["spec"]
    assert [r["parameter"] for r in auth["secretTargetRef"]] == ["host"]


@pytest.mark.parametrize("overlay", overlay_params())
def test_embedder_disruption_budget_selects_its_pods(rendered: dict[str, list[Obj]], overlay: str) -> None:
    objects = rendered[overlay]
    pdb = named(objects, "PodDisruptionBudget", "embedder")["spec"]
    assert selects(pdb["selector"], pod_labels(objects, "embedder"))
    # maxUnavailable (not minAvailable) so a single-replica dev stack can still be drained.
    assert pdb == {"maxUnavailable": 1, "selector": pdb["selector"]}


@pytest.mark.parametrize("overlay", overlay_params())
def test_migration_job_provisions_then_migrates_every_data_service(
    rendered: dict[str, list[Obj]], overlay: str
) -> None:
    spec = named(rendered[overlay], "Job", "vectrion-migrate")["spec"]["template"]["spec"]
    assert spec["restartPolicy"] == "Never"
    (provision,) = spec["initContainers"]
    (migrate,) = spec["containers"]
    assert provision["command"] == ["python", "-m", "vectrion_common.provisioning"]
    admin_url = provision["args"][provision["args"].index("--admin-url") + 1]
    assert "@" in admin_url and ":" not in admin_url.split("://", 1)[1].split("@")[0], "no password in the URL"
    assert migrate["command"][:3] == ["python", "-m", "vectrion_common.migrate"]
    assert migrate["args"] == list(SERVICES_WITH_DATA)
    assert provision["image"] == migrate["image"] and "vectrion-migrate" in migrate["image"]
