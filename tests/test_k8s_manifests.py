"""deploy/k8s/: valid against the real Kubernetes schemas (kubernetes-validate, offline)
for 1.31 and the newest version it knows, and wired together as docs/deploy.md says."""

from __future__ import annotations

import re

import pytest
import yaml

from .conftest import ROOT

K8S = ROOT / "deploy" / "k8s"
kubernetes_validate = pytest.importorskip("kubernetes_validate")
VERSIONS = ["1.31.0", kubernetes_validate.utils.latest_version()]


def documents(names: list[str]) -> list[dict]:
    return [d for name in names for d in yaml.safe_load_all((K8S / name).read_text()) if d]


@pytest.fixture(scope="module")
def manifests() -> dict[str, dict]:
    """{kind/name: document} of everything kustomization.yaml applies."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in documents(kustomization["resources"])}


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_is_valid_for_kubernetes(version):
    files = sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    assert {"deployment.yaml", "service.yaml", "ingress.yaml", "pdb.yaml", "hpa.yaml"} <= set(files)
    for doc in documents(files):
        kubernetes_validate.validate(doc, version, strict=True)  # raises on any unknown or wrong field


def test_the_kustomization_lists_every_manifest_but_the_secret_example(manifests):
    kinds = {key.split("/")[0] for key in manifests}
    assert kinds == {"Deployment", "Service", "Ingress", "PodDisruptionBudget", "HorizontalPodAutoscaler"}
    assert "Secret" not in kinds  # a real password never comes from the repository


def test_the_deployment_probes_drains_and_runs_as_non_root(manifests):
    pod = manifests["Deployment/helpdesk-qa"]["spec"]["template"]["spec"]
    qa = next(c for c in pod["containers"] if c["name"] == "qa")
    assert qa["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert qa["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert {"cpu", "memory"} <= set(qa["resources"]["requests"]) and {"cpu", "memory"} <= set(qa["resources"]["limits"])
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] == 10001  # the image's user
    assert qa["securityContext"]["readOnlyRootFilesystem"] and not qa["securityContext"]["allowPrivilegeEscalation"]
    # Grace period > preStop sleep + the replica's own drain on SIGTERM.
    pre_stop = int(qa["lifecycle"]["preStop"]["exec"]["command"][-1])
    env = {e["name"]: e for e in qa["env"]}
    drain = float(env["HELPDESK_QA_DRAIN_SECONDS"]["value"])
    assert pod["terminationGracePeriodSeconds"] > pre_stop + drain
    assert env["HELPDESK_QA_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "helpdesk-qa-postgres"


def test_the_index_comes_from_a_named_build_into_the_pods_volume(manifests):
    pod = manifests["Deployment/helpdesk-qa"]["spec"]["template"]["spec"]
    init = pod["initContainers"][0]
    mounts = {m["name"]: m for c in pod["containers"] for m in c["volumeMounts"]}
    assert mounts["index"]["mountPath"] == "/var/lib/helpdesk-qa/index" and mounts["index"]["readOnly"]
    assert init["volumeMounts"][0]["name"] == "index" and "CURRENT" in " ".join(init["command"])
    assert "emptyDir" in next(v for v in pod["volumes"] if v["name"] == "index")


def test_service_pdb_and_hpa_select_the_deployments_pods(manifests):
    deployment = manifests["Deployment/helpdesk-qa"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    for key in ("Service/helpdesk-qa", "PodDisruptionBudget/helpdesk-qa"):
        spec = manifests[key]["spec"]
        selector = spec["selector"].get("matchLabels", spec["selector"])
        assert selector.items() <= labels.items(), key
    port_names = {p["name"] for p in deployment["spec"]["template"]["spec"]["containers"][0]["ports"]}
    assert manifests["Service/helpdesk-qa"]["spec"]["ports"][0]["targetPort"] in port_names
    hpa = manifests["HorizontalPodAutoscaler/helpdesk-qa"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == "helpdesk-qa" and hpa["metrics"][0]["resource"]["name"] == "cpu"
    assert hpa["minReplicas"] > manifests["PodDisruptionBudget/helpdesk-qa"]["spec"]["minAvailable"]


def test_the_ingress_carries_the_templates_rate_limits_and_allow_list(manifests):
    """The numbers and the operators-only paths are read from deploy/nginx.conf.template,
    so the example cannot drift from what `qa deploy` and the Compose nginx enforce."""
    template = (ROOT / "deploy" / "nginx.conf.template").read_text()
    ingresses = {key.split("/")[1]: d for key, d in manifests.items() if key.startswith("Ingress/")}

    def annotations(name: str) -> dict:
        return ingresses[name]["metadata"]["annotations"]

    def paths(name: str) -> set[str]:
        return {p["path"] for r in ingresses[name]["spec"]["rules"] for p in r["http"]["paths"]}

    assert annotations("helpdesk-qa")["nginx.ingress.kubernetes.io/limit-rps"] == "20"  # qa deploy's default --rate
    burst = 20 * int(annotations("helpdesk-qa")["nginx.ingress.kubernetes.io/limit-burst-multiplier"])
    assert burst == 40  # qa deploy's default --burst
    admin_rate = re.search(r"zone=qa_admin:\S+ rate=(\d+)r/m;", template).group(1)
    assert annotations("helpdesk-qa-admin")["nginx.ingress.kubernetes.io/limit-rpm"] == admin_rate
    assert {"/insights", "/v1/insights"} <= paths("helpdesk-qa-admin")
    # The template's operators-only location: every path in it is on the allow-listed Ingress.
    ops_only = re.search(r"location ~ \^/\(([^)]+)\)\(/\|\$\)", template).group(1).replace("\\", "").split("|")
    assert "metrics" in ops_only and "docs" in ops_only
    assert {f"/{name}" for name in ops_only} == paths("helpdesk-qa-ops")
    allowed = annotations("helpdesk-qa-ops")["nginx.ingress.kubernetes.io/whitelist-source-range"]
    assert re.fullmatch(r"[0-9./,]+", allowed)
    for name in ingresses:  # nothing operators-only on another Ingress
        assert name == "helpdesk-qa-ops" or not paths(name) & paths("helpdesk-qa-ops")
