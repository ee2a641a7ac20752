"""What a local run hands from task to task and reports: artifacts, task and run results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypedDict

SUCCEEDED = "SUCCEEDED"
CACHED = "CACHED"
FAILED = "FAILED"
SKIPPED = "SKIPPED"
NOT_RUN = "NOT_RUN"  # an upstream task failed
OK_STATES = (SUCCEEDED, CACHED)


class RuntimeArtifact(TypedDict, total=False):
    """One artifact as an executor input names it (KFP's ``RuntimeArtifact`` as JSON)."""

    name: str
    type: dict[str, str]
    uri: str
    metadata: dict[str, Any]


@dataclass
class Artifact:
    """An artifact handed from task to task."""

    key: str
    uri: str
    schema_title: str
    schema_version: str = "0.0.1"
    metadata: dict[str, Any] = field(default_factory=dict)
    id: int | None = None

    def runtime(self) -> RuntimeArtifact:
        """The RuntimeArtifact JSON of an executor input."""
        return {
            "name": str(self.id) if self.id is not None else self.key,
            "type": {"schemaTitle": self.schema_title, "schemaVersion": self.schema_version},
            "uri": self.uri,
            "metadata": self.metadata,
        }

    def fingerprint(self) -> str:
        """The content fingerprint of its data (its URI where none was recorded)."""
        from kubetfx.lineage.record import FINGERPRINT_KEY

        return str(self.metadata.get(FINGERPRINT_KEY) or self.uri)


Artifacts = dict[str, list[Artifact]]


@dataclass
class TaskResult:
    """What one task (or DAG) did."""

    name: str
    state: str
    params: dict[str, Any] = field(default_factory=dict)
    artifacts: Artifacts = field(default_factory=dict)
    seconds: float = 0.0
    message: str = ""
    execution_id: int | None = None
    kind: str = "container"  # container | importer | dag
    log: str = ""


@dataclass
class RunResult:
    """The outcome of a pipeline run."""

    run_id: str
    pipeline_name: str
    state: str
    tasks: list[TaskResult]
    seconds: float
    metadata: str
    pipeline_root: str
    outputs: dict[str, Any] = field(default_factory=dict)

    def task(self, name: str) -> TaskResult:
        """A task by (qualified) name."""
        for result in self.tasks:
            if result.name == name:
                return result
        raise KeyError(f"no task {name!r} in run {self.run_id}; tasks: {[t.name for t in self.tasks]}")
