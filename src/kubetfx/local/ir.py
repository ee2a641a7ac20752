"""The pieces of a compiled pipeline spec (KFP's IR, as parsed from YAML) the runner reads.

TypedDicts for documentation and checking only: the spec stays the dicts
:mod:`kubetfx.local.spec` loaded. Parameter values are JSON (:data:`Values`).
"""

from __future__ import annotations

from typing import Any, TypedDict

Values = dict[str, Any]  # parameter name -> JSON value


class ComponentRef(TypedDict):
    name: str


class TriggerPolicy(TypedDict, total=False):
    condition: str  # a CEL expression over the task's inputs
    strategy: str  # ALL_UPSTREAM_TASKS_SUCCEEDED (default) or ALL_UPSTREAM_TASKS_COMPLETED


class RetryPolicy(TypedDict, total=False):
    maxRetryCount: int
    backoffDuration: str  # a protobuf Duration: "30s"
    backoffFactor: float
    backoffMaxDuration: str


class TaskInputs(TypedDict, total=False):
    parameters: dict[str, dict[str, Any]]  # componentInputParameter, taskOutputParameter, ...
    artifacts: dict[str, dict[str, Any]]  # componentInputArtifact, taskOutputArtifact


class TaskSpec(TypedDict, total=False):
    """A task of a DAG (``PipelineTaskSpec``)."""

    componentRef: ComponentRef
    dependentTasks: list[str]
    inputs: TaskInputs
    triggerPolicy: TriggerPolicy
    parameterIterator: dict[str, Any]  # dsl.ParallelFor: items and the item's input name
    iteratorPolicy: dict[str, int]  # parallelismLimit
    cachingOptions: dict[str, bool]  # enableCache
    retryPolicy: RetryPolicy
    taskInfo: dict[str, str]


class DagSpec(TypedDict, total=False):
    tasks: dict[str, TaskSpec]
    outputs: dict[str, Any]  # parameters and artifacts, with the tasks they come from


class ComponentSpec(TypedDict, total=False):
    """A component (``ComponentSpec``): a DAG, or an executor (container or importer)."""

    dag: DagSpec
    executorLabel: str
    inputDefinitions: dict[str, Any]
    outputDefinitions: dict[str, Any]


class PlatformExecutor(TypedDict, total=False):
    """A task's executor in the Kubernetes platform spec (kfp-kubernetes), as far as the
    runner reads it: the environment a pod gets from ConfigMaps, Secrets and field paths."""

    configMapAsEnv: list[dict[str, Any]]  # configMapName, keyToEnv: [{configMapKey, envVar}]
    secretAsEnv: list[dict[str, Any]]  # secretName, keyToEnv: [{secretKey, envVar}]
    fieldPathAsEnv: list[dict[str, str]]  # name, fieldPath
