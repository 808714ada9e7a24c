"""Every infra YAML parses; the compose stack is wired the way the services expect.

Kubernetes manifests have their own module (test_k8s.py).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra.manifests import (
    COMPOSE_DIR,
    COMPOSE_FILE,
    REPO_ROOT,
    SERVICE_PORTS,
    SERVICES_WITH_DATA,
    interpolate,
    load_all,
    yaml_files,
)

SECRETS_DIR = COMPOSE_DIR / "secrets"


def _depends_on(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    deps = service.get("depends_on", {})
    if isinstance(deps, list):  # short syntax means service_started
        return {name: {"condition": "service_started"} for name in deps}
    return dict(deps)


def _secret_names(service: dict[str, Any]) -> list[str]:
    return [s if isinstance(s, str) else s["source"] for s in service.get("secrets", [])]


def _one_shots(compose: dict[str, Any]) -> set[str]:
    return {name for name, svc in compose["services"].items() if svc.get("restart") == "no"}


# ------------------------------------------------------------------ all YAML


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_infra_yaml_file_parses(path: Path) -> None:
    docs = load_all(path)
    assert docs, f"{path} holds no YAML document"
    assert all(isinstance(doc, dict) for doc in docs), f"{path}: every document must be a mapping"


def test_infra_has_the_expected_yaml_files() -> None:
    names = {str(p.relative_to(REPO_ROOT)) for p in yaml_files()}
    assert "infra/compose/compose.yaml" in names
    assert {"infra/k8s/base/kustomization.yaml", "infra/k8s/overlays/dev/kustomization.yaml"} <= names
    assert "infra/k8s/overlays/prod/kustomization.yaml" in names


# ------------------------------------------------------------------ compose


def test_compose_file_is_valid_against_the_compose_spec() -> None:
    compose_spec = pytest.importorskip("compose_spec", reason="compose-spec (PyPI) validates the Compose spec")
    data = yaml.safe_load(interpolate(COMPOSE_FILE.read_text(encoding="utf-8"), env={}))
    # The validator does not resolve YAML merge keys; PyYAML already did, so feed it plain YAML.
    plain = {key: value for key, value in data.items() if not key.startswith("x-")}
    parsed = compose_spec.PyCompose.from_yaml(yaml.safe_dump(plain))
    assert set(parsed.service_names()) == set(data["services"])


def test_compose_spec_validator_rejects_a_misspelt_key() -> None:
    """Guards the test above: the validator must be strict, not a YAML parser."""
    compose_spec = pytest.importorskip("compose_spec", reason="compose-spec (PyPI) validates the Compose spec")
    with pytest.raises(ValueError, match="healthchek"):
        compose_spec.PyCompose.from_yaml("services:\n  web:\n    image: x\n    healthchek: {test: [CMD, 'true']}\n")


def test_compose_has_the_backing_services_and_the_six_services(compose: dict[str, Any]) -> None:
    expected = {"postgres", "redis", "rabbitmq", "qdrant", "minio", "jaeger", "prometheus", "grafana", "migrate"}
    assert expected | set(SERVICE_PORTS) <= set(compose["services"])
    assert compose["services"]["postgres"]["image"] == "postgres:15"
    assert compose["services"]["redis"]["image"] == "redis:7"
    assert compose["services"]["rabbitmq"]["image"] == "rabbitmq:3.13-management"


def test_every_long_running_compose_service_has_a_healthcheck(compose: dict[str, Any]) -> None:
    one_shots = _one_shots(compose)
    missing = [
        name
        for name, svc in compose["services"].items()
        if name not in one_shots and not svc.get("healthcheck", {}).get("test")
    ]
    assert not missing, f"services without a healthcheck: {missing}"


@pytest.mark.parametrize("service", SERVICE_PORTS)
def test_service_healthcheck_hits_healthz_on_its_port(compose: dict[str, Any], service: str) -> None:
    test = " ".join(compose["services"][service]["healthcheck"]["test"])
    assert f"127.0.0.1:{SERVICE_PORTS[service]}/healthz" in test


def test_one_shots_are_awaited_to_completion(compose: dict[str, Any]) -> None:
    one_shots = _one_shots(compose)
    assert {"migrate", "minio-init"} <= one_shots
    for name, svc in compose["services"].items():
        for dep, spec in _depends_on(svc).items():
            if dep in one_shots:
                assert spec["condition"] == "service_completed_successfully", f"{name} -> {dep}"


@pytest.mark.parametrize("service", SERVICES_WITH_DATA)
def test_data_owning_service_waits_for_migrations(compose: dict[str, Any], service: str) -> None:
    deps = _depends_on(compose["services"][service])
    assert deps.get("migrate") == {"condition": "service_completed_successfully"}


def test_depends_on_targets_exist_and_healthy_targets_have_healthchecks(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, svc in services.items():
        for dep, spec in _depends_on(svc).items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep} to be healthy, which has no check"


def test_migrate_provisions_then_migrates_every_data_service(compose: dict[str, Any]) -> None:
    migrate = compose["services"]["migrate"]
    script = " ".join(migrate["command"]) if isinstance(migrate["command"], list) else migrate["command"]
    provision_at = script.index("python -m vectrion_common.provisioning --admin-url ")
    migrate_at = script.index("python -m vectrion_common.migrate")
    assert provision_at < migrate_at
    assert script[migrate_at:].split("--services-dir")[1].split()[1:] == list(SERVICES_WITH_DATA)
    # The superuser password must not appear on a command line (it is read from the secret file).
    assert re.search(r"postgresql://postgres@", script), "admin URL must carry no password"


@pytest.mark.parametrize("service", SERVICE_PORTS)
def test_service_builds_from_the_repo_root_with_its_own_dockerfile(compose: dict[str, Any], service: str) -> None:
    svc = compose["services"][service]
    assert (COMPOSE_DIR / svc["build"]["context"]).resolve() == REPO_ROOT
    assert svc["build"]["dockerfile"] == f"services/{service}/Dockerfile"
    assert svc["image"].startswith(f"vectrion-{service}:")


@pytest.mark.parametrize("service", [*SERVICE_PORTS, "migrate"])
def test_referenced_dockerfile_exists(compose: dict[str, Any], service: str) -> None:
    build = compose["services"][service]["build"]
    dockerfile = (COMPOSE_DIR / build["context"]).resolve() / build["dockerfile"]
    if service != "migrate" and not dockerfile.exists():
        pytest.skip(f"{build['dockerfile']} is not written yet (owned by the {service} service)")
    assert dockerfile.is_file(), f"{dockerfile} is missing"


def test_only_the_gateway_is_published_and_only_on_loopback(compose: dict[str, Any]) -> None:
    published = {name: svc["ports"] for name, svc in compose["services"].items() if svc.get("ports")}
    assert list(published) == ["gateway"]
    assert published["gateway"] == ["127.0.0.1:8000:8000"]


def test_embedder_runs_two_replicas(compose: dict[str, Any]) -> None:
    embedder = compose["services"]["embedder"]
    assert embedder["deploy"]["replicas"] == 2
    assert "container_name" not in embedder and "ports" not in embedder  # both would block replicas


def test_query_uses_qdrant_server_mode(compose: dict[str, Any]) -> None:
    env = compose["services"]["query"]["environment"]
    assert env["VECTRION_QDRANT_URL"] == "http://qdrant:6333"
    assert "VECTRION_QDRANT_PATH" not in env
    assert "Qdrant local mode" in COMPOSE_FILE.read_text(encoding="utf-8")  # the why stays written down


def test_gateway_gets_its_upstreams_and_bootstrap_admin(compose: dict[str, Any]) -> None:
    env = compose["services"]["gateway"]["environment"]
    assert env["VECTRION_INGEST_URL"] == "http://ingest:8001"
    assert env["VECTRION_QUERY_URL"] == "http://query:8004"
    assert env["VECTRION_GUARDRAILS_URL"] == "http://guardrails:8005"
    assert env["VECTRION_BOOTSTRAP_ADMIN_EMAIL"]
    assert "VECTRION_BOOTSTRAP_ADMIN_PASSWORD" not in env and "VECTRION_JWT_SECRET" not in env
    assert env["VECTRION_BOOTSTRAP_ADMIN_PASSWORD_FILE"].startswith("/run/secrets/")
    assert env["VECTRION_JWT_SECRET_FILE"].startswith("/run/secrets/")


@pytest.mark.parametrize("service", SERVICE_PORTS)
def test_service_reads_secrets_from_files_not_plain_env(compose: dict[str, Any], service: str) -> None:
    env = compose["services"][service]["environment"]
    for name in ("VECTRION_RABBITMQ_URL", "VECTRION_INTERNAL_TOKEN_SECRET", "VECTRION_DATABASE_URL"):
        assert name not in env, f"{service}: {name} must come from a secret file ({name}_FILE)"
    assert env["VECTRION_RABBITMQ_URL_FILE"] == "/run/secrets/rabbitmq_url"
    assert env["VECTRION_INTERNAL_TOKEN_SECRET_FILE"] == "/run/secrets/internal_token_secret"


def test_every_secret_file_variable_points_at_a_secret_the_service_mounts(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        mounted = set(_secret_names(svc))
        for var, value in (svc.get("environment") or {}).items():
            if str(value).startswith("/run/secrets/"):
                secret = str(value).removeprefix("/run/secrets/")
                assert secret in mounted, f"{name}: {var} reads /run/secrets/{secret}, which is not mounted"


def test_every_referenced_secret_is_declared_with_an_example(compose: dict[str, Any]) -> None:
    declared = compose["secrets"]
    for name, svc in compose["services"].items():
        for secret in _secret_names(svc):
            assert secret in declared, f"{name} uses undeclared secret {secret}"
    for secret, spec in declared.items():
        assert spec["file"] == f"./secrets/{secret}"
        assert (SECRETS_DIR / f"{secret}.example").is_file(), f"secrets/{secret}.example is missing"


def test_real_secret_files_are_git_ignored_and_examples_are_not() -> None:
    def ignored(relative: str) -> bool:
        result = subprocess.run(["git", "check-ignore", "-q", relative], cwd=REPO_ROOT, check=False)
        return result.returncode == 0

    assert ignored("infra/compose/secrets/jwt_secret")
    assert not ignored("infra/compose/secrets/jwt_secret.example")


def test_make_secrets_writes_every_declared_secret_consistently(compose: dict[str, Any], tmp_path: Path) -> None:
    script = COMPOSE_DIR / "make-secrets.sh"
    subprocess.run(["bash", str(script), str(tmp_path)], check=True, capture_output=True)
    assert {p.name for p in tmp_path.iterdir()} == set(compose["secrets"])

    conf = dict(line.split(" = ", 1) for line in (tmp_path / "rabbitmq_conf").read_text().splitlines() if " = " in line)
    url = (tmp_path / "rabbitmq_url").read_text().strip()
    assert url == f"amqp://{conf['default_user']}:{conf['default_pass']}@rabbitmq:5672/"
    s3 = (tmp_path / "s3_credentials").read_text()
    assert f"aws_access_key_id = {(tmp_path / 'minio_root_user').read_text().strip()}" in s3
    assert f"aws_secret_access_key = {(tmp_path / 'minio_root_password').read_text().strip()}" in s3

    before = {p.name: p.read_text() for p in tmp_path.iterdir()}
    subprocess.run(["bash", str(script), str(tmp_path)], check=True, capture_output=True)
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == before, "a rerun must not overwrite secrets"


def test_example_secrets_are_consistent_with_each_other() -> None:
    conf = (SECRETS_DIR / "rabbitmq_conf.example").read_text()
    url = (SECRETS_DIR / "rabbitmq_url.example").read_text().strip()
    user, password = re.fullmatch(r"amqp://([^:]+):([^@]+)@rabbitmq:5672/", url).groups()  # type: ignore[union-attr]
    assert f"default_user = {user}" in conf and f"default_pass = {password}" in conf
    s3 = (SECRETS_DIR / "s3_credentials.example").read_text()
    assert (SECRETS_DIR / "minio_root_password.example").read_text().strip() in s3


def test_prometheus_scrapes_every_service_on_its_port() -> None:
    config = yaml.safe_load((COMPOSE_DIR / "prometheus" / "prometheus.yml").read_text())
    targets = {
        (name, sd["port"])
        for job in config["scrape_configs"]
        for sd in job.get("dns_sd_configs", [])
        for name in sd["names"]
    }
    assert targets == set(SERVICE_PORTS.items())


def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker client on PATH")
    if subprocess.run([docker, "compose", "version"], capture_output=True, check=False).returncode != 0:
        pytest.skip("the docker client has no compose plugin here (`docker compose version` fails)")
    # Secrets must exist as files for `config` to resolve them; use a throwaway set.
    secrets = tmp_path / "compose" / "secrets"
    shutil.copytree(COMPOSE_DIR, tmp_path / "compose", ignore=shutil.ignore_patterns("secrets"))
    subprocess.run(["bash", str(COMPOSE_DIR / "make-secrets.sh"), str(secrets)], check=True, capture_output=True)
    result = subprocess.run(
        [docker, "compose", "-f", str(tmp_path / "compose" / "compose.yaml"), "config", "--quiet", "--no-interpolate"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


# ------------------------------------------------------------------ images the infra assumes


@pytest.mark.parametrize("service", SERVICE_PORTS)
def test_service_image_runs_as_uid_10001_on_its_port(service: str) -> None:
    """compose and k8s assume USER 10001 (runAsUser, fsGroup, secret file modes) and the service's port."""
    dockerfile = REPO_ROOT / "services" / service / "Dockerfile"
    if not dockerfile.exists():
        pytest.skip(f"services/{service}/Dockerfile is not written yet (owned by the {service} service)")
    text = dockerfile.read_text(encoding="utf-8")
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)
    assert users and users[-1] in ("10001", "10001:10001"), f"{service}: last USER is {users}"
    assert re.search(rf"--port[\"',\s]+{SERVICE_PORTS[service]}\b", text), (
        f"{service} must listen on {SERVICE_PORTS[service]}"
    )


def test_migrate_image_holds_every_data_service_where_the_commands_look() -> None:
    text = (REPO_ROOT / "infra" / "docker" / "migrate.Dockerfile").read_text(encoding="utf-8")
    for service in SERVICES_WITH_DATA:
        assert f"COPY services/{service} /src/services/{service}" in text
    assert re.search(r"^USER 10001$", text, flags=re.MULTILINE)
