"""The Kubernetes manifests: every overlay renders with kustomize, every object validates against
the Kubernetes schemas (kubernetes-validate, offline), the InferenceService against KServe's own
model classes, and the probes, ports and environment are the ones the image really serves."""

import re
import shutil
import subprocess

import kserve.models
import kubernetes_validate
import pytest
import yaml

from service.http.app import routes as declared_routes
from service.serve import SHUTDOWN_GRACE_SECONDS
from service.settings import Settings
from tests.conftest import REPO

KUBERNETES_VERSION = "1.34.0"
DEPLOY = REPO / "deploy"
OVERLAYS = ["overlays/dev", "overlays/production", "overlays/shared-models"]
CUSTOM_KINDS = {"ServiceMonitor", "InferenceService"}  # CRDs: not in the Kubernetes schemas
POD_FIELDS = {
    "containers",
    "volumes",
    "securityContext",
    "serviceAccountName",
    "automountServiceAccountToken",
    "terminationGracePeriodSeconds",
}


def render(folder: str) -> list[dict]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl is missing: install Debian's kubernetes-client (.ci/run does)")
    output = subprocess.run([kubectl, "kustomize", str(DEPLOY / folder)], capture_output=True, text=True, check=True)
    return list(yaml.safe_load_all(output.stdout))


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    return {folder: render(folder) for folder in [*OVERLAYS, "kserve"]}


def by_kind(objects: list[dict], kind: str) -> dict:
    (found,) = [item for item in objects if item["kind"] == kind]
    return found


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_validates_against_the_kubernetes_schemas(rendered, overlay):
    kinds = {item["kind"] for item in rendered[overlay]}
    assert {"Deployment", "Service", "ServiceAccount", "PodDisruptionBudget", "NetworkPolicy"} <= kinds
    for item in rendered[overlay]:
        if item["kind"] not in CUSTOM_KINDS:
            kubernetes_validate.validate(item, KUBERNETES_VERSION, strict=True)


def test_the_overlays_differ_as_intended(rendered):
    dev, production, shared = (by_kind(rendered[overlay], "Deployment") for overlay in OVERLAYS)
    assert dev["spec"]["replicas"] == 1 and production["spec"]["replicas"] > 1
    assert "HorizontalPodAutoscaler" not in {item["kind"] for item in rendered["overlays/dev"]}
    hpa = by_kind(rendered["overlays/production"], "HorizontalPodAutoscaler")
    assert hpa["spec"]["minReplicas"] == production["spec"]["replicas"] < hpa["spec"]["maxReplicas"]
    env = {item["name"]: item.get("value") for item in shared["spec"]["template"]["spec"]["containers"][0]["env"]}
    mounts = {
        mount["mountPath"]: mount for mount in shared["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    }
    assert mounts[env["VAE_MODEL_REPOSITORY"]]["readOnly"] is True
    assert "ServiceMonitor" in {item["kind"] for item in rendered["overlays/shared-models"]}


def selectors_match(rendered):
    for overlay in OVERLAYS:
        objects = rendered[overlay]
        pod_labels = by_kind(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
        selectors = [
            by_kind(objects, "Service")["spec"]["selector"],
            by_kind(objects, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
            by_kind(objects, "NetworkPolicy")["spec"]["podSelector"]["matchLabels"],
        ]
        yield overlay, pod_labels, selectors


def test_every_selector_picks_the_pods(rendered):
    for overlay, pod_labels, selectors in selectors_match(rendered):
        for selector in selectors:
            assert selector and selector.items() <= pod_labels.items(), (overlay, selector)


def pod_checks(pod: dict, container: dict, port: int, grpc_port_name: str) -> None:
    """What a careful operator asks of the pod, and what the image really serves."""
    routes = {route.path for route in declared_routes() if "GET" in route.methods}
    settings = {f"VAE_{name.upper()}" for name in Settings.model_fields}
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env.keys() <= settings, env.keys() - settings
    assert int(env["VAE_PORT"]) == port and env["VAE_HOST"] == "0.0.0.0"
    ports = {item.get("name", item["containerPort"]): item["containerPort"] for item in container["ports"]}
    assert port in ports.values()
    assert ports[grpc_port_name] == int(env["VAE_GRPC_PORT"]) != port
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        check = container[probe]["httpGet"]
        assert check["path"] in routes, (probe, check["path"])
        assert ports.get(check["port"], check["port"]) == port
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    pause = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pod["terminationGracePeriodSeconds"] > pause + SHUTDOWN_GRACE_SECONDS
    assert container["resources"]["limits"]["memory"] and container["resources"]["requests"]["cpu"]


def image_facts() -> dict[str, str]:
    dockerfile = (REPO / "Dockerfile").read_text()
    runtime = dockerfile[dockerfile.index("AS runtime") :]
    return dict(re.findall(r"(VAE_[A-Z_]+)=(\S+)", runtime)) | {"EXPOSE": re.search(r"EXPOSE (\d+)", runtime)[1]}


def test_the_deployment_runs_the_pod_as_clusters_do_on_what_the_image_serves(rendered):
    facts = image_facts()
    deployment = by_kind(rendered["overlays/production"], "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    pod_checks(pod, container, int(facts["EXPOSE"]), "grpc")
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["VAE_MODEL_REPOSITORY"] == facts["VAE_MODEL_REPOSITORY"]  # the models in the image
    assert env["VAE_PORT"] == facts["VAE_PORT"] and env["VAE_GRPC_PORT"] == facts["VAE_GRPC_PORT"]
    service = by_kind(rendered["overlays/production"], "Service")
    assert {port["targetPort"]: port.get("appProtocol") for port in service["spec"]["ports"]} == {
        "http": None,
        "grpc": "kubernetes.io/h2c",
    }
    keys = {item["name"]: item["valueFrom"]["secretKeyRef"] for item in container["env"] if "valueFrom" in item}
    assert keys == {  # the scraper's token is the one the ServiceMonitor sends
        "VAE_API_KEY": {"name": "vae-service-keys", "key": "api-key", "optional": True},
        "VAE_METRICS_TOKEN": {"name": "vae-service-keys", "key": "metrics-token", "optional": True},
    }
    monitor = by_kind(rendered["overlays/shared-models"], "ServiceMonitor")
    (endpoint,) = monitor["spec"]["endpoints"]
    sent = endpoint["authorization"]["credentials"]
    assert (sent["name"], sent["key"]) == (keys["VAE_METRICS_TOKEN"]["name"], keys["VAE_METRICS_TOKEN"]["key"])


def test_the_inference_service_validates_against_kserve_and_kubernetes(rendered):
    (service,) = rendered["kserve"]
    assert (service["apiVersion"], service["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
    known(service, kserve.models.V1beta1InferenceService)
    known(service["spec"], kserve.models.V1beta1InferenceServiceSpec)
    predictor = service["spec"]["predictor"]
    known(predictor, kserve.models.V1beta1PredictorSpec)
    # The predictor inlines a PodSpec: validate those fields as a Pod's.
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "predictor"},
        "spec": {key: value for key, value in predictor.items() if key in POD_FIELDS},
    }
    kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)
    (container,) = predictor["containers"]
    assert container["name"] == "kserve-container"
    pod_checks(predictor, container, 8080, "h2c")
    assert {container["readinessProbe"]["httpGet"]["path"], container["livenessProbe"]["httpGet"]["path"]} == {
        "/v2/health/ready",
        "/v2/health/live",
    }


def known(document: dict, model: type) -> None:
    """Every key is a field of KServe's model class (a misspelt one would be dropped silently)."""
    fields = set(model.attribute_map.values())
    assert document.keys() <= fields, document.keys() - fields
