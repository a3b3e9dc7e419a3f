"""deploy/ray on KubeRay: the RayService and the RayJob render with kustomize and validate, offline and
strictly (an unknown field is an error, as `kubectl apply --validate=strict` makes it), against
KubeRay's own CRD schemas (tests/deploy/kuberay: ray-operator/config/crd/bases of ray-project/kuberay
at feeaf72f, 2026-08-19, after v1.7.0-rc.0) and their pod templates against Kubernetes' schemas; the
Serve config is deploy/ray/serve.yaml itself, and every Ray pod has the image, resources and security
contexts written once."""

import copy
import functools
import gzip
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.deploy.test_manifests import DEPLOY, KUBERNETES_VERSION, render

SCHEMAS = Path(__file__).parent / "kuberay"


@functools.cache
def crd_schema(plural: str) -> dict:
    crd = yaml.safe_load(gzip.decompress((SCHEMAS / f"ray.io_{plural}.yaml.gz").read_bytes()))
    (served,) = [version for version in crd["spec"]["versions"] if version["name"] == "v1"]
    return strict(served["schema"]["openAPIV3Schema"])


def strict(schema: dict) -> dict:
    """The schema with unknown fields refused wherever it lists the fields, as the API server's
    strict field validation does; fields it marks as free-form stay free."""
    schema = copy.deepcopy(schema)

    def close(node: object) -> None:
        if isinstance(node, dict):
            if "properties" in node and not node.get("x-kubernetes-preserve-unknown-fields"):
                node.setdefault("additionalProperties", False)
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(schema)
    return schema


@pytest.fixture(scope="module")
def rendered() -> dict[str, dict]:
    return {item["kind"]: item for item in render("ray")}


def ray_pods(rendered: dict) -> list[dict]:
    service = rendered["RayService"]["spec"]["rayClusterConfig"]
    job = rendered["RayJob"]["spec"]["rayClusterSpec"]
    groups = [service["headGroupSpec"], *service["workerGroupSpecs"], job["headGroupSpec"], *job["workerGroupSpecs"]]
    return [group["template"] for group in groups]


def test_only_the_ray_resources_are_applied(rendered):
    assert set(rendered) == {"RayService", "RayJob"}  # the Serve config's ConfigMap is a source, not applied


@pytest.mark.parametrize(("kind", "plural"), [("RayService", "rayservices"), ("RayJob", "rayjobs")])
def test_each_validates_against_kuberays_crd(rendered, kind, plural):
    jsonschema.validate(rendered[kind], crd_schema(plural))


def test_the_strict_schema_refuses_a_misspelt_field(rendered):
    misspelt = copy.deepcopy(rendered["RayJob"])
    misspelt["spec"]["shutdownAfterJobFinish"] = misspelt["spec"].pop("shutdownAfterJobFinishes")
    with pytest.raises(jsonschema.ValidationError, match="shutdownAfterJobFinish"):
        jsonschema.validate(misspelt, crd_schema("rayjobs"))


def test_every_ray_pod_template_validates_against_kubernetes(rendered):
    for template in ray_pods(rendered):
        pod_template = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "ray"}, "template": template}
        kubernetes_validate.validate(pod_template, KUBERNETES_VERSION, strict=True)


def test_the_serve_config_is_deploy_ray_serve_yaml(rendered):
    assert rendered["RayService"]["spec"]["serveConfigV2"] == (DEPLOY / "ray" / "serve.yaml").read_text()


def test_every_ray_pod_has_the_heads_image_resources_and_security(rendered):
    pods = ray_pods(rendered)
    head = pods[0]
    (head_container,) = head["spec"]["containers"]
    assert head_container["image"] == "vae-service-ray:0.1.0"
    assert head["spec"]["securityContext"]["runAsNonRoot"] is True
    assert head_container["securityContext"]["allowPrivilegeEscalation"] is False
    assert head_container["resources"]["requests"]["cpu"] == "1"
    for pod in pods:
        (container,) = pod["spec"]["containers"]
        assert pod["spec"]["securityContext"] == head["spec"]["securityContext"]
        for field in ("image", "resources", "securityContext"):
            assert container[field] == head_container[field], field


def test_the_job_runs_the_bulk_command(rendered):
    assert rendered["RayJob"]["spec"]["entrypoint"].split()[0] == "vae-encode-dataset"
    assert rendered["RayJob"]["spec"]["shutdownAfterJobFinishes"] is True
