"""What a compiled pipeline's DAG says about one task: whom it waits for, what it gets, how
often it is tried; and what a DAG hands back.

Pure functions of the pipeline spec and the results so far: the runner
(:mod:`kubetfx.local.runner`) walks the DAG and calls them.
"""

from __future__ import annotations

import re
from typing import Any

from kubetfx.errors import PipelineSpecError
from kubetfx.local.ir import DagSpec, RetryPolicy, TaskSpec, Values
from kubetfx.local.results import FAILED, OK_STATES, SKIPPED, SUCCEEDED, Artifacts, TaskResult
from kubetfx.local.spec import select


def placeholders(pipeline_name: str, run_id: str, qname: str) -> dict[str, str]:
    """The values of the KFP placeholders a task's constant input may be."""
    # The backend's driver replaces a constant only when it *is* one of these
    # (backend/src/v2/driver/resolve.go); a placeholder inside a longer string, or
    # {{$.pipeline_root}}, reaches the task as written. So here.
    return {
        "{{$.pipeline_job_name}}": pipeline_name,
        "{{$.pipeline_job_resource_name}}": run_id,
        "{{$.pipeline_job_uuid}}": run_id,
        "{{$.pipeline_task_name}}": qname,
        "{{$.pipeline_task_uuid}}": f"{run_id}/{qname}",
    }


def resolve_inputs(
    task: TaskSpec,
    dag_params: Values,
    dag_artifacts: Artifacts,
    done: dict[str, TaskResult],
    *,
    qname: str,
    pipeline_name: str,
    run_id: str,
) -> tuple[Values, Artifacts, str]:
    """A task's input values and artifacts, from its DAG's inputs and its upstream tasks;
    and the first input that was not produced (its branch was skipped), if any."""
    params: Values = {}
    artifacts: Artifacts = {}
    missing = ""
    inputs = task.get("inputs", {})
    for key, spec in inputs.get("parameters", {}).items():
        if "componentInputParameter" in spec:
            source = spec["componentInputParameter"]
            if source not in dag_params:
                continue  # optional input left unset: the component default applies
            value = dag_params[source]
        elif "taskOutputParameter" in spec:
            ref = spec["taskOutputParameter"]
            producer = done[ref["producerTask"]]
            if ref["outputParameterKey"] not in producer.params:
                missing = missing or f"{ref['producerTask']}.{ref['outputParameterKey']}"
                continue
            value = producer.params[ref["outputParameterKey"]]
        elif "runtimeValue" in spec:
            value = spec["runtimeValue"].get("constant")
            if isinstance(value, str):
                value = placeholders(pipeline_name, run_id, qname).get(value, value)
        elif "taskFinalStatus" in spec:
            producer = done[spec["taskFinalStatus"]["producerTask"]]
            value = {
                "state": SUCCEEDED if producer.state in OK_STATES + (SKIPPED,) else FAILED,
                "pipelineJobResourceName": run_id,
                "pipelineTaskName": producer.name,
                "error": {"code": 0 if producer.state in OK_STATES else 1, "message": producer.message},
            }
        else:
            raise PipelineSpecError(f"task {qname!r}: unsupported input spec for {key!r}: {spec}")
        selector = spec.get("parameterExpressionSelector")
        if selector:
            value = select(value, selector)
        params[key] = value
    for key, spec in inputs.get("artifacts", {}).items():
        if "componentInputArtifact" in spec:
            source = spec["componentInputArtifact"]
            if source not in dag_artifacts:
                missing = missing or source
                continue
            artifacts[key] = dag_artifacts[source]
        elif "taskOutputArtifact" in spec:
            ref = spec["taskOutputArtifact"]
            producer = done[ref["producerTask"]]
            got = producer.artifacts.get(ref["outputArtifactKey"])
            if not got:
                missing = missing or f"{ref['producerTask']}.{ref['outputArtifactKey']}"
                continue
            artifacts[key] = got
        else:
            raise PipelineSpecError(f"task {qname!r}: unsupported artifact input {key!r}: {spec}")
    return params, artifacts, missing


# ------------------------------------------------------------------ tasks


def _seconds(value: Any) -> float:
    """A protobuf Duration as the pipeline spec writes it (``"30s"``, ``"1.5s"``), in seconds."""
    if isinstance(value, int | float):
        return float(value)
    text = str(value or "0s").strip()
    try:
        return float(text[:-1] if text.endswith("s") else text)
    except ValueError:
        raise PipelineSpecError(
            f"retry policy: cannot read duration {value!r} (expected e.g. '30s')"
        ) from None


def retry_delay(policy: RetryPolicy, attempt: int) -> float:
    """Seconds to wait before retry ``attempt`` (1, 2, ...) under a task's ``retryPolicy``:
    ``backoffDuration * backoffFactor ** (attempt - 1)``, at most ``backoffMaxDuration``
    (the backend's Argo retry strategy; the compiler's defaults are 0s, 2 and 3600s)."""
    base = _seconds(policy.get("backoffDuration", "0s"))
    if base <= 0:
        return 0.0
    factor = float(policy.get("backoffFactor", 2.0) or 1.0)
    cap = _seconds(policy.get("backoffMaxDuration", "3600s")) or float("inf")
    return min(base * factor ** max(0, attempt - 1), cap)


def upstream(task: TaskSpec) -> set[str]:
    """The tasks ``task`` waits for: named dependencies and producers of its inputs."""
    ups = set(task.get("dependentTasks", []))
    inputs = task.get("inputs", {})
    for spec in inputs.get("parameters", {}).values():
        if "taskOutputParameter" in spec:
            ups.add(spec["taskOutputParameter"]["producerTask"])
        if "taskFinalStatus" in spec:
            ups.add(spec["taskFinalStatus"]["producerTask"])
    for spec in inputs.get("artifacts", {}).values():
        if "taskOutputArtifact" in spec:
            ups.add(spec["taskOutputArtifact"]["producerTask"])
    return ups


def dag_outputs(dag: DagSpec, done: dict[str, TaskResult]) -> tuple[Values, Artifacts]:
    """A DAG's output values and artifacts, from the tasks that ran in it."""
    params: Values = {}
    artifacts: Artifacts = {}
    outputs = dag.get("outputs", {})
    for key, spec in outputs.get("parameters", {}).items():
        selectors = []
        if "valueFromParameter" in spec:
            selectors = [spec["valueFromParameter"]]
        elif "valueFromOneof" in spec:
            selectors = spec["valueFromOneof"].get("parameterSelectors", [])
        for selector in selectors:
            producer = done.get(selector["producerSubtask"])
            if producer and selector["outputParameterKey"] in producer.params:
                params[key] = producer.params[selector["outputParameterKey"]]
                break
    for key, spec in outputs.get("artifacts", {}).items():
        for selector in spec.get("artifactSelectors", []):
            producer = done.get(selector["producerSubtask"])
            if producer and producer.artifacts.get(selector["outputArtifactKey"]):
                artifacts[key] = producer.artifacts[selector["outputArtifactKey"]]
                break
    return params, artifacts


def readable(condition: str) -> str:
    """``inputs.parameter_values['pipelinechannel--evaluator-blessed'] == true`` ->
    ``evaluator-blessed == true``: the compiler's channel names, without the plumbing."""
    return re.sub(r"inputs\.parameter_values\['pipelinechannel--([^']+)'\]", r"\1", condition)
