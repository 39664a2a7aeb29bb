"""deploy/ checked without an engine: compose against the compose-spec schema, Kubernetes
manifests against pinned Kubernetes schemas, Collector configs against known components."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from . import otelcol

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
DATA = Path(__file__).parent / "data"
KUBERNETES_VERSION = "1.33.0"  # kubernetes-validate bundles 1.25 to 1.37; strict schemas
MANIFESTS = sorted(
    p for p in (DEPLOY / "kubernetes").glob("*.yaml") if p.name != "kustomization.yaml"
)


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _objects() -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["kind"], d["metadata"]["name"]): d for p in MANIFESTS for d in _docs(p)}


# --- Kubernetes ---------------------------------------------------------------------------------
@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifests_validate_against_pinned_kubernetes_schemas(path: Path) -> None:
    for doc in _docs(path):
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((DEPLOY / "kubernetes" / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == [p.name for p in MANIFESTS]


def test_statefulset_headless_service_probes_volumes_and_budget_fit_together() -> None:
    objects = _objects()
    sts = objects["StatefulSet", "agentwatch"]
    service = objects["Service", sts["spec"]["serviceName"]]
    assert service["spec"]["clusterIP"] == "None"  # headless: one DNS name per pod
    labels = sts["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert sts["spec"]["selector"]["matchLabels"].items() <= labels.items()
    pdb = objects["PodDisruptionBudget", "agentwatch"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["maxUnavailable"] < sts["spec"]["replicas"]

    pod = sts["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    [container] = pod["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"otlp-grpc": 4317, "otlp-http": 4318, "api": 8080}
    assert {p["targetPort"] for p in service["spec"]["ports"]} == set(ports)
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "api"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "api"}
    assert container["resources"]["requests"]["cpu"] and container["resources"]["limits"]["memory"]
    claims = {t["metadata"]["name"] for t in sts["spec"]["volumeClaimTemplates"]}
    assert claims == {"data", "snapshots"}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    config = objects["ConfigMap", "agentwatch-config"]["data"]
    assert mounts["data"] == config["AGENTWATCH_DATA_DIR"]  # the spool lives in the data dir
    assert config["AGENTWATCH_DETECTOR_SNAPSHOT_PATH"].startswith(mounts["snapshots"] + "/")
    for source in container["envFrom"]:
        kind = "ConfigMap" if "configMapRef" in source else "Secret"
        ref = source.get("configMapRef") or source["secretRef"]
        assert (kind, ref["name"]) in objects
    # Both tokens are required off loopback; the Secret must carry them.
    secret = objects["Secret", "agentwatch-secrets"]["stringData"]
    assert {"AGENTWATCH_INGEST_TOKEN", "AGENTWATCH_API_TOKEN", "AGENTWATCH_WEBHOOK_SECRET"} <= set(
        secret
    )
    assert config["AGENTWATCH_HOST"] == "0.0.0.0"


def test_gateway_routes_by_service_to_the_headless_service() -> None:
    objects = _objects()
    config = yaml.safe_load(objects["ConfigMap", "otel-gateway-config"]["data"]["config.yaml"])
    assert otelcol.validate(config) == []
    exporter = config["exporters"]["loadbalancing"]
    assert exporter["routing_key"] == "service"
    k8s = exporter["resolver"]["k8s"]
    service = objects["Service", "agentwatch"]
    assert k8s["service"] == f"{service['metadata']['name']}.{service['metadata']['namespace']}"
    grpc = next(p["port"] for p in service["spec"]["ports"] if p["name"] == "otlp-grpc")
    assert k8s["ports"] == [grpc]
    assert k8s["return_hostnames"] is True  # StatefulSet names: a restart keeps the cohorts
    deployment = objects["Deployment", "otel-gateway"]
    pod = deployment["spec"]["template"]["spec"]
    role = objects["Role", "otel-gateway-endpoints"]
    assert any("endpointslices" in rule["resources"] for rule in role["rules"])
    binding = objects["RoleBinding", "otel-gateway-endpoints"]
    assert binding["subjects"][0]["name"] == pod["serviceAccountName"]
    [container] = pod["containers"]
    assert re.fullmatch(r"otel/opentelemetry-collector-contrib:\d+\.\d+\.\d+", container["image"])


# --- Compose and Docker -------------------------------------------------------------------------
def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "docker" / "compose.yaml").read_text())
    return data


def test_compose_file_validates_against_the_compose_spec_schema() -> None:
    schema = json.loads((DATA / "compose-spec.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.Draft7Validator(schema).validate(_compose())


def test_compose_schema_check_catches_a_misspelt_key() -> None:
    schema = json.loads((DATA / "compose-spec.json").read_text())
    compose = _compose()
    compose["services"]["clickhouse"]["helthcheck"] = {}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(schema).validate(compose)


def test_compose_pins_images_and_wires_gateway_replicas_clickhouse_and_grafana() -> None:
    services = _compose()["services"]
    for name, service in services.items():
        image = service.get("image", "")
        assert re.search(r":v?\d+\.\d+", image) or "${" in image, f"{name}: pin {image!r}"
    replicas = sorted(n for n in services if re.fullmatch(r"agentwatch-\d+", n))
    assert len(replicas) == 3
    volumes = [services[n]["volumes"][0].split(":")[0] for n in replicas]
    assert len(set(volumes)) == len(replicas)  # one spool per replica
    for name in replicas:
        env = services[name]["environment"]
        assert env["AGENTWATCH_CLICKHOUSE_DSN"].startswith("http://")
        assert "@clickhouse:8123" in env["AGENTWATCH_CLICKHOUSE_DSN"]
    gateway = yaml.safe_load((DEPLOY / "docker" / "otel-gateway.yaml").read_text())
    assert otelcol.validate(gateway) == []
    lb = gateway["exporters"]["loadbalancing"]
    assert lb["routing_key"] == "service"
    assert lb["resolver"]["static"]["hostnames"] == [f"{n}:4317" for n in replicas]
    grafana = services["grafana"]
    assert "grafana-clickhouse-datasource" in grafana["environment"]["GF_INSTALL_PLUGINS"]
    assert any(v.endswith(":/etc/grafana/provisioning:ro") for v in grafana["volumes"])
    assert services["migrate"]["command"] == ["migrate", "--apply"]


def test_dockerfile_is_multi_stage_non_root_with_a_healthcheck() -> None:
    text = (DEPLOY / "docker" / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) >= 2
    assert "[${EXTRAS}]" in text and "ARG EXTRAS=collector" in text
    builder = text.split("\nFROM ")[0]  # compiles the detectors: setup.py and a C compiler
    assert "setup.py" in builder and "gcc" in builder
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user and not user[-1].startswith(("root", "0"))
    assert re.search(r"^EXPOSE 4317 4318 8080$", text, re.M)
    assert re.search(r'^VOLUME \["/data"\]$', text, re.M)
    healthcheck = text[text.index("HEALTHCHECK") :].split("\nENTRYPOINT")[0]
    assert "urllib.request" in healthcheck and "/healthz" in healthcheck


def test_dockerfile_copies_only_what_its_dockerignore_lets_in() -> None:
    # The context is everything but what Dockerfile.dockerignore admits: a COPY of anything else
    # fails the build (LICENSE, which the wheel's metadata names, was once left out).
    text = (DEPLOY / "docker" / "Dockerfile").read_text()
    ignore = (DEPLOY / "docker" / "Dockerfile.dockerignore").read_text().split()
    admitted = {line[1:] for line in ignore if line.startswith("!")}
    copied = [
        source
        for line in re.findall(r"^COPY (?!--from)(.+)$", text, re.M)
        for source in line.split()[:-1]
    ]
    assert copied and set(copied) <= admitted, set(copied) - admitted


# --- the Collector config checker itself --------------------------------------------------------
def test_collector_checker_reports_unknown_components_keys_and_wiring() -> None:
    config = yaml.safe_load((DEPLOY / "docker" / "otel-gateway.yaml").read_text())
    config["exporters"]["loadbalancing"]["routing_key"] = "service.name"
    config["exporters"]["loadbalancing"]["resolver"]["dns"] = {"hostnme": "agentwatch"}
    config["processors"]["tail_sampling"] = {}
    config["service"]["pipelines"]["traces"]["exporters"].append("otlp/missing")
    errors = otelcol.validate(config)
    assert any("routing_key" in e for e in errors)
    assert any("hostnme: unknown key" in e for e in errors)
    assert any("exactly one resolver" in e for e in errors)
    assert any("unknown component 'tail_sampling'" in e for e in errors)
    assert any("otlp/missing is not declared" in e for e in errors)
