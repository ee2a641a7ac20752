"""One declarative way to ask for GPUs for a task: an accelerator profile.

A profile says what a platform team knows about its GPU nodes: how many GPUs, which type,
the node-pool labels and the taint to tolerate. :meth:`AcceleratorProfile.apply` turns it
into what a self-hosted Kubeflow needs: the GPU resource limit (KFP's accelerator type and
count) plus, through kfp-kubernetes, a node selector per label and a toleration; and the
GPU variant of kubetfx's image (``kubetfx.images.GPU_IMAGE``: TensorFlow with CUDA). With
``target: vertex`` the same file names the accelerator the way Vertex AI Pipelines does
(``NVIDIA_L4``) and sets no Kubernetes fields, so user code does not change.

Profiles are YAML::

    count: 1
    gpu_type: nvidia-l4                 # node label value, or a Vertex name with target: vertex
    node_selector:
      cloud.google.com/gke-accelerator: nvidia-l4
    toleration: {key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}
    target: kubeflow                    # or vertex

Checked when loaded, so a bad profile fails at compile time, naming the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubetfx.errors import ConfigError

KUBERNETES_GPU = "nvidia.com/gpu"
_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_OPERATORS = ("Exists", "Equal")
_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
_VERTEX_NAME = re.compile(r"^[A-Z][A-Z0-9_]+$")


@dataclass(frozen=True)
class Toleration:
    """A Kubernetes toleration for the GPU nodes' taint."""

    key: str = KUBERNETES_GPU
    operator: str = "Exists"
    value: str | None = None
    effect: str = "NoSchedule"


@dataclass(frozen=True)
class AcceleratorProfile:
    """GPUs for one task, and where to find them."""

    count: int = 1
    gpu_type: str = ""
    node_selector: dict[str, str] = field(default_factory=dict)
    toleration: Toleration | None = field(default_factory=Toleration)
    target: str = "kubeflow"
    source: str = "profile"

    def __post_init__(self) -> None:
        where = self.source
        if not isinstance(self.count, int) or isinstance(self.count, bool) or not 1 <= self.count <= 16:
            raise ConfigError(f"{where}: count must be a whole number from 1 to 16, got {self.count!r}")
        if self.target not in ("kubeflow", "vertex"):
            raise ConfigError(f"{where}: target must be kubeflow or vertex, got {self.target!r}")
        if self.target == "vertex":
            if not _VERTEX_NAME.match(self.gpu_type or ""):
                raise ConfigError(
                    f"{where}: gpu_type {self.gpu_type!r} is not a Vertex accelerator name (e.g. NVIDIA_L4)"
                )
            if self.node_selector:
                raise ConfigError(
                    f"{where}: node_selector applies to Kubeflow only; remove it for target vertex"
                )
        for key, value in self.node_selector.items():
            if not _LABEL_KEY.match(str(key)):
                raise ConfigError(f"{where}: node_selector key {key!r} is not a valid Kubernetes label key")
            if not isinstance(value, str) or not _LABEL_VALUE.match(value):
                raise ConfigError(f"{where}: node_selector[{key!r}] = {value!r} is not a valid label value")
        if self.toleration is not None:
            t = self.toleration
            if t.operator not in _OPERATORS:
                raise ConfigError(f"{where}: toleration.operator must be Exists or Equal, got {t.operator!r}")
            if t.effect not in _EFFECTS:
                raise ConfigError(
                    f"{where}: toleration.effect must be one of {', '.join(_EFFECTS)}, got {t.effect!r}"
                )
            if t.operator == "Equal" and not t.value:
                raise ConfigError(f"{where}: toleration.operator Equal needs a value")

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "profile") -> AcceleratorProfile:
        """From a mapping (a parsed YAML file); unknown fields are errors."""
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: an accelerator profile is a mapping of fields")
        known = {"count", "gpu_type", "node_selector", "toleration", "target"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown field {unknown[0]!r}; fields: {', '.join(sorted(known))}")
        toleration = data.get("toleration", {})
        if toleration is not None and not isinstance(toleration, dict):
            raise ConfigError(
                f"{source}: toleration must be a mapping (key, operator, value, effect) or null"
            )
        if toleration is not None:
            bad = sorted(set(toleration) - {"key", "operator", "value", "effect"})
            if bad:
                raise ConfigError(f"{source}: toleration has unknown field {bad[0]!r}")
        node_selector = data.get("node_selector") or {}
        if not isinstance(node_selector, dict):
            raise ConfigError(f"{source}: node_selector must be a mapping of label to value")
        target = data.get("target", "kubeflow")
        return cls(
            count=data.get("count", 1),
            gpu_type=str(data.get("gpu_type", "")),
            node_selector={str(k): v for k, v in node_selector.items()},
            toleration=None if toleration is None or target == "vertex" else Toleration(**toleration),
            target=target,
            source=source,
        )

    @classmethod
    def load(cls, path: str | Path) -> AcceleratorProfile:
        """Read a YAML profile; errors name the file (and line, for YAML syntax)."""
        import yaml

        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: accelerator profile not found")
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
            raise ConfigError(f"{path}{where}: not valid YAML ({getattr(err, 'problem', err)})") from None
        return cls.from_dict(data or {}, source=str(path))

    def apply(self, task: Any) -> Any:
        """Set the task's GPU limit, placement and image; returns the task.

        A task that runs kubetfx's CPU image gets its GPU variant (``kubetfx.images``), whose
        TensorFlow has the CUDA libraries: the CPU image on a GPU node would train on the CPU.
        """
        use_gpu_image(task)
        if self.target == "vertex":
            return task.set_accelerator_type(self.gpu_type).set_accelerator_limit(self.count)
        from kfp import kubernetes

        task.set_accelerator_type(KUBERNETES_GPU).set_accelerator_limit(self.count)
        for key, value in sorted(self.node_selector.items()):
            kubernetes.add_node_selector(task, label_key=key, label_value=value)
        if self.toleration is not None:
            t = self.toleration
            kubernetes.add_toleration(task, key=t.key, operator=t.operator, value=t.value, effect=t.effect)
        return task


def use_gpu_image(task: Any) -> Any:
    """Switch a task that runs kubetfx's CPU image to the GPU image (same registry and tag).

    A task with any other image keeps it: a user's own component image has a GPU variant
    only its owner knows. Returns the task.
    """
    from kubetfx.images import gpu_variant

    container = getattr(task, "container_spec", None)
    if container is None:  # an importer or a nested pipeline: no container of its own
        return task
    gpu_image = gpu_variant(container.image)
    if gpu_image is not None:
        container.image = gpu_image
    return task
