"""Every pod kubetfx's manifests define meets the "restricted" Pod Security Standard, and more.

Walks the pod spec of every rendered workload (Pod, Deployment, StatefulSet, DaemonSet,
ReplicaSet, Job, CronJob, and a KServe InferenceService's predictor) in every entry point,
and checks the controls of the Kubernetes "restricted" profile (baseline included) as
https://kubernetes.io/docs/concepts/security/pod-security-standards/ lists them, plus
what kubetfx requires on top: a read-only root filesystem, CPU and memory requests
and limits for every container, and no service account token (kubetfx's own pods never
talk to the Kubernetes API).

Containers that a controller injects at admission (KServe's storage initializer, Knative's
queue-proxy) are not in the manifests and not checked here: docs/deploy.md says so.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
SELINUX_TYPES = {"container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
# Pods that must exist in a build, so that a walker finding nothing cannot pass.
EXPECTED_PODS = {
    "base+mysql": {"StatefulSet/kubetfx-metadata-db"},
    "serving+mysql": {"StatefulSet/kubetfx-metadata-db", "InferenceService/penguins (predictor)"},
    "example": {"StatefulSet/kubetfx-metadata-db"},
    "overlays/serving": {"InferenceService/penguins (predictor)"},
}


def _containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        *spec.get("initContainers", []),
        *spec.get("containers", []),
        *spec.get("ephemeralContainers", []),
    ]


def _effective(pod: dict[str, Any], container: dict[str, Any], field: str) -> Any:
    """A security setting as the kubelet applies it: the container's, else the pod's."""
    value = container.get("securityContext", {}).get(field)
    return pod.get("securityContext", {}).get(field) if value is None else value


def violations(spec: dict[str, Any], metadata: dict[str, Any] | None = None) -> list[str]:
    """What in one pod (spec and metadata) breaks the restricted profile or kubetfx's additions."""
    found = []
    for key, value in ((metadata or {}).get("annotations") or {}).items():
        if key.startswith("container.apparmor.security.beta.kubernetes.io/") and value == "unconfined":
            found.append(f"AppArmor unconfined by annotation {key}")
    pod_context = spec.get("securityContext", {})
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            found.append(f"{field} is set")
    for volume in spec.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            found.append(f"volume {volume['name']} is {sorted(kinds)}")
    for sysctl in pod_context.get("sysctls", []):
        if sysctl["name"] not in SAFE_SYSCTLS:
            found.append(f"sysctl {sysctl['name']}")
    if spec.get("automountServiceAccountToken") is not False:
        found.append("a service account token is mounted (automountServiceAccountToken not false)")
    if pod_context.get("windowsOptions", {}).get("hostProcess"):
        found.append("pod is a Windows hostProcess")
    if pod_context.get("runAsUser") == 0:
        found.append("pod runAsUser is 0")

    for container in _containers(spec):
        name = container["name"]
        context = container.get("securityContext", {})
        if context.get("privileged"):
            found.append(f"{name}: privileged")
        if context.get("allowPrivilegeEscalation") is not False:
            found.append(f"{name}: allowPrivilegeEscalation is not false")
        if _effective(spec, container, "runAsNonRoot") is not True:
            found.append(f"{name}: runAsNonRoot is not true")
        if _effective(spec, container, "runAsUser") == 0:
            found.append(f"{name}: runAsUser is 0")
        seccomp = _effective(spec, container, "seccompProfile") or {}
        if seccomp.get("type") not in ("RuntimeDefault", "Localhost"):
            found.append(f"{name}: seccompProfile is {seccomp.get('type')!r}, not RuntimeDefault")
        capabilities = context.get("capabilities", {})
        if "ALL" not in capabilities.get("drop", []):
            found.append(f"{name}: capabilities do not drop ALL")
        if set(capabilities.get("add", [])) - {"NET_BIND_SERVICE"}:
            found.append(f"{name}: adds capabilities {capabilities['add']}")
        apparmor = _effective(spec, container, "appArmorProfile") or {}
        if apparmor.get("type") == "Unconfined":
            found.append(f"{name}: AppArmor unconfined")
        selinux = _effective(spec, container, "seLinuxOptions") or {}
        if (
            selinux.get("type") not in (None, "", *SELINUX_TYPES)
            or selinux.get("user")
            or selinux.get("role")
        ):
            found.append(f"{name}: seLinuxOptions {selinux}")
        if context.get("procMount", "Default") != "Default":
            found.append(f"{name}: procMount {context['procMount']}")
        if (context.get("windowsOptions") or {}).get("hostProcess"):
            found.append(f"{name}: Windows hostProcess")
        for port in container.get("ports", []):
            if port.get("hostPort"):
                found.append(f"{name}: hostPort {port['hostPort']}")
        # kubetfx's additions.
        if context.get("readOnlyRootFilesystem") is not True:
            found.append(f"{name}: root filesystem is writable")
        resources = container.get("resources", {})
        for kind in ("requests", "limits"):
            missing = {"cpu", "memory"} - set(resources.get(kind, {}))
            if missing:
                found.append(f"{name}: no {kind} for {sorted(missing)}")
    return found


def test_every_pod_meets_the_restricted_standard(
    build: Callable[[str], list[dict[str, Any]]], target: str, pod_specs: Callable
) -> None:
    pods = pod_specs(build(target))
    assert {where for where, _, _ in pods} >= EXPECTED_PODS.get(target, set())
    problems = {where: v for where, metadata, spec in pods if (v := violations(spec, metadata))}
    assert not problems, f"{target}: {problems}"


def _main(spec: dict[str, Any]) -> dict[str, Any]:
    return spec["containers"][0]["securityContext"]


def _no_seccomp(spec: dict[str, Any]) -> None:
    _main(spec).pop("seccompProfile")
    spec["securityContext"].pop("seccompProfile")


BREAKAGES: dict[str, tuple[Callable[[dict[str, Any]], Any], str]] = {
    "host network": (lambda s: s.update(hostNetwork=True), "hostNetwork is set"),
    "hostPath": (lambda s: s["volumes"].append({"name": "h", "hostPath": {"path": "/"}}), "volume h"),
    "escalation": (lambda s: _main(s).pop("allowPrivilegeEscalation"), "allowPrivilegeEscalation"),
    "root": (lambda s: _main(s).update(runAsNonRoot=False), "runAsNonRoot"),
    "capability": (lambda s: _main(s)["capabilities"].update(add=["NET_ADMIN"]), "adds capabilities"),
    "writable root": (lambda s: _main(s).update(readOnlyRootFilesystem=False), "root filesystem"),
    "no limits": (lambda s: s["containers"][0]["resources"].pop("limits"), "no limits"),
    "no seccomp": (_no_seccomp, "seccompProfile"),
    "token": (lambda s: s.pop("automountServiceAccountToken"), "service account token"),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_the_check_catches_what_restricted_forbids(
    build: Callable[[str], list[dict[str, Any]]], breakage: str
) -> None:
    (statefulset,) = [o for o in build("base+mysql") if o["kind"] == "StatefulSet"]
    spec = copy.deepcopy(statefulset["spec"]["template"]["spec"])
    assert violations(spec) == []
    change, expected = BREAKAGES[breakage]
    change(spec)
    assert any(expected in v for v in violations(spec)), violations(spec)
