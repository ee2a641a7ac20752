"""The wrapper every kubetfx task runs: ``python3 -m kubetfx.task`` (same arguments as KFP's).

It takes exactly what ``kfp.dsl.executor_main`` takes (``--executor_input``,
``--function_to_execute``, ``--component_module_path``), runs KFP's own executor, and
around it records the task's lineage in ML Metadata: the execution as RUNNING with
its inputs before, then outputs and COMPLETE in one transaction after, or FAILED
with the reason. It is the same in a Kubeflow pod and under the local runner.

Outputs that are local paths are written to a staging path and renamed into place
only on success, so a crash or a kill never leaves a half-written output at an
artifact's URI (:class:`kubetfx.lifecycle.TaskLifecycle`, which the local runner uses for
plain KFP components too). What the task learns from its environment is
:class:`kubetfx.taskenv.TaskEnv`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any

from kubetfx import taskenv
from kubetfx.errors import KubetfxError
from kubetfx.identity import (
    DATA_FINGERPRINT_INPUT,
    ENV_PIPELINE,
    ENV_RUN,
    ENV_TASK,
    IDENTITY_INPUTS,
    KFP_POD_ENV,
    PIPELINE_INPUT,
    RUN_INPUT,
    SCOPE_INPUT,
    TASK_INPUT,
)
from kubetfx.lifecycle import Recorder, TaskLifecycle
from kubetfx.settings import redact
from kubetfx.taskenv import TaskEnv

log = logging.getLogger("kubetfx.task")

# What executors read of the task's environment (names in kubetfx.taskenv). ENV_PIPELINE,
# ENV_RUN, ENV_TASK (kubetfx.identity): set by the local runner, and in a cluster by what
# kubetfx.cluster.use_cluster_settings() compiles in.
ENV_PIPELINE_ROOT = taskenv.PIPELINE_ROOT
ENV_EXECUTION_ID = taskenv.EXECUTION_ID  # set for the executor, see add_input()
KFP_EXECUTOR_MODULE = "kfp.dsl.executor_main"
__all__ = [
    "ENV_EXECUTION_ID",
    "ENV_PIPELINE",
    "ENV_PIPELINE_ROOT",
    "ENV_RUN",
    "ENV_TASK",
    "add_input",
    "lineage_store",
    "pipeline_name",
    "resolve_identity",
    "run",
]


NO_IDENTITY = (
    "this task runs in a Kubeflow Pipelines pod but does not know its run: kubetfx components"
    " take their run id, pipeline and task names from the environment that"
    " kubetfx.cluster.use_cluster_settings() wires; call it as the last line of your"
    " @dsl.pipeline function (after every task), then compile and submit again"
)


def _resolved(value: Any) -> str:
    """A value a runner filled in; empty for a KFP placeholder nobody resolved."""
    return "" if not isinstance(value, str) or value.startswith("{{$") else value


def resolve_identity(
    params: dict[str, Any], function_name: str, placeholders: dict[str, str] | None = None
) -> dict[str, str]:
    """The task's pipeline (its lineage scope), run and task name.

    From the environment first (kubetfx's runner; in a cluster, what
    ``use_cluster_settings()`` compiles in), then from the command's identity arguments
    when a runner resolved their KFP placeholders (the KFP SDK's local runner does; the
    KFP backend does not), then from the inputs of components compiled by earlier kubetfx
    versions. Raises KubetfxError in a KFP pod that lacks them (a component loaded from
    YAML into a pipeline that does not call ``use_cluster_settings()``): lineage recorded
    under an unknown run would make the resolver, drift and the data change check find
    nothing. Anywhere else it falls back to ``unknown-pipeline`` / ``unknown-run``.
    """
    given = {k: _resolved(v) for k, v in (placeholders or {}).items()}
    env = TaskEnv.from_env()
    pipeline = env.pipeline_name or given.get("pipeline") or _resolved(params.get(PIPELINE_INPUT))
    run_id = env.run_id or given.get("run_id") or _resolved(params.get(RUN_INPUT))
    task = (
        env.task_name
        or given.get("task")
        or _resolved(params.get(TASK_INPUT))
        or function_name.replace("_", "-")
    )
    if os.environ.get(KFP_POD_ENV) and not (pipeline and run_id):
        raise KubetfxError(NO_IDENTITY)
    scope = params.get(SCOPE_INPUT) or ""
    return {
        "pipeline_name": scope if isinstance(scope, str) and scope else pipeline or "unknown-pipeline",
        "run_id": run_id or "unknown-run",
        "task_name": task,
        "pipeline_root": env.pipeline_root,
    }


def _check_data_fingerprint(params: dict[str, Any], document: dict[str, Any]) -> None:
    """The data a task read is the data its ``kubetfx_data_fingerprint`` input named.

    That input is what makes KFP's cache key change with the data; if the data changed
    between the fingerprint and the read, the outputs would be cached under the wrong key.
    """
    expected = params.get(DATA_FINGERPRINT_INPUT) or ""
    read = (document.get("parameterValues") or {}).get("fingerprint")
    if expected and isinstance(read, str) and read != expected:
        raise KubetfxError(
            f"the input data changed while the run read it: fingerprint {read[:12]} read, "
            f"{expected[:12]} expected (kubetfx_data_fingerprint); run the pipeline again"
        )


def _write_state(path: str | None, state: dict[str, Any]) -> None:
    if not path:
        return
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(state, f)
    os.replace(tmp, path)


def run(argv: Sequence[str]) -> int:
    """Run one task; returns the process exit code."""
    taskenv.quiet_tensorflow()
    parser = argparse.ArgumentParser(prog="python -m kubetfx.task")
    parser.add_argument("--component_module_path")
    parser.add_argument("--function_to_execute", required=True)
    parser.add_argument("--executor_input", required=True)
    # The KFP entry point this wrapper stands in for (its executor is what runs inside);
    # compiled commands name it, which is also what the KFP SDK's local runner looks for.
    parser.add_argument("--kfp_executor", default=KFP_EXECUTOR_MODULE, choices=[KFP_EXECUTOR_MODULE])
    parser.add_argument("--kubetfx_pipeline", default="")
    parser.add_argument("--kubetfx_run_id", default="")
    parser.add_argument("--kubetfx_task", default="")
    args, _ = parser.parse_known_args(argv)
    env = TaskEnv.from_env()
    if env.die_with_runner:
        from kubetfx.process import die_with, die_with_parent

        die_with_parent()
        if env.runner_pid:
            die_with(env.runner_pid)

    executor_input = json.loads(args.executor_input)
    params = dict(executor_input.get("inputs", {}).get("parameterValues", {}))
    try:
        placeholders = {
            "pipeline": args.kubetfx_pipeline,
            "run_id": args.kubetfx_run_id,
            "task": args.kubetfx_task,
        }
        identity_args = resolve_identity(params, args.function_to_execute, placeholders)
    except KubetfxError as err:
        print(f"kubetfx: error: {err}", file=sys.stderr, flush=True)
        return 1
    # Executors that read lineage (drift baselines, the resolver, the data change check)
    # find their scope and store here.
    os.environ[ENV_PIPELINE] = identity_args["pipeline_name"]
    os.environ[ENV_RUN] = identity_args["run_id"]
    user_params = {
        k: redact(v) if isinstance(v, str) else v for k, v in params.items() if k not in IDENTITY_INPUTS
    }
    state_file = env.state_file

    life = TaskLifecycle(executor_input, _open_recorder(identity_args))
    extra = {
        "cache_fingerprint": env.cache_key or None,
        "kubetfx_component_version": env.component_version or None,
        "pod_name": os.environ.get("HOSTNAME") or os.uname().nodename,
    }
    try:
        execution_id = life.start(user_params, _input_records(executor_input), extra)
    except KubetfxError as err:  # a store kubetfx must not write to, or cannot open
        print(f"kubetfx: error: {err}", file=sys.stderr, flush=True)
        return 1
    _write_state(state_file, {"execution_id": execution_id, "status": "running", "pid": os.getpid()})
    if execution_id:
        os.environ[ENV_EXECUTION_ID] = str(execution_id)
    print(
        f"kubetfx: task {identity_args['task_name']} of run {identity_args['run_id']} started"
        + (f" (execution {execution_id})" if execution_id else " (lineage off: no KUBETFX_METADATA)"),
        flush=True,
    )

    life.stage()
    output_file = executor_input.get("outputs", {}).get("outputFile")
    try:
        _run_kfp_executor(args, executor_input)
        _check_data_fingerprint(params, _read_output(output_file))
    except BaseException as err:  # noqa: BLE001 - every failure is recorded, then re-raised
        message = _describe(err)
        try:
            life.fail(message)
        except Exception as again:  # noqa: BLE001 - report the task's own error below
            print(f"kubetfx: error: marking the task FAILED failed: {_describe(again)}", flush=True)
        _write_state(state_file, {"execution_id": execution_id, "status": "failed", "error": message})
        if not isinstance(err, KubetfxError):
            traceback.print_exc()
        print(f"kubetfx: error: {message}", file=sys.stderr, flush=True)
        return 1

    from kubetfx.lineage.record import finite

    # NaN and infinities (a diverged loss) become their names: the KFP launcher's protojson
    # and ML Metadata's SQL stores cannot hold them, and would leave the task half-recorded.
    non_finite: list[str] = []
    document = finite(_read_output(output_file), non_finite)
    if non_finite:
        print(f"kubetfx: warning: not a finite number, recorded by name: {', '.join(non_finite)}", flush=True)
    outputs = life.publish(document)
    # Hand the fingerprints on to the orchestrator, so nobody hashes the data twice.
    for key, records in outputs.items():
        document.setdefault("artifacts", {})[key] = {
            "artifacts": [
                {"name": key, "uri": r.uri, "metadata": r.metadata, "type": {"schemaTitle": r.schema_title}}
                for r in records
            ]
        }
    if output_file:
        _write_json(output_file, document)
    output_params = document.get("parameterValues", {})
    try:
        extra = {"non_finite": ", ".join(non_finite)} if non_finite else {}
        artifact_ids = life.record(outputs, output_params, extra)
    except Exception as err:  # noqa: BLE001 - never leave the execution RUNNING
        message = f"recording the task's outputs in lineage failed: {_describe(err)}"
        try:
            life.fail(message)
        except Exception as again:  # noqa: BLE001 - the store is gone: say so, exit non-zero
            message += f"; marking it FAILED failed too: {_describe(again)}"
        _write_state(state_file, {"execution_id": execution_id, "status": "failed", "error": message})
        print(f"kubetfx: error: {message}", file=sys.stderr, flush=True)
        return 1
    peak = _peak_rss_mb()
    _write_state(
        state_file,
        {
            "execution_id": execution_id,
            "status": "complete",
            "artifact_ids": artifact_ids,
            "peak_rss_mb": peak,
        },
    )
    print(f"kubetfx: task {identity_args['task_name']} done (peak memory {peak:,.0f} MB RSS)", flush=True)
    return 0


def _peak_rss_mb() -> float:
    """This process's peak resident memory. Forked from a warm worker, it counts the
    worker's pages the task mapped too (as a container's memory use would)."""
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _describe(err: BaseException) -> str:
    if isinstance(err, KubetfxError):
        return redact(str(err))
    if isinstance(err, SystemExit):
        return f"task exited with status {err.code}"
    if isinstance(err, KeyboardInterrupt):
        return "task interrupted"
    return redact(f"{type(err).__name__}: {err}")


def _run_kfp_executor(args: argparse.Namespace, executor_input: dict[str, Any]) -> None:
    from kfp.dsl import executor as kfp_executor
    from kfp.dsl import utils as kfp_utils

    module_path = args.component_module_path
    if module_path is None:
        raise KubetfxError("--component_module_path is required by kubetfx.task")
    module = kfp_utils.load_module(
        module_name=os.path.basename(module_path)[: -len(".py")],
        module_directory=os.path.dirname(module_path),
    )
    func = getattr(module, args.function_to_execute)
    from kubetfx.storage import apply_mount_root

    apply_mount_root()  # the local runner's object-store mode: this task's own launcher paths
    kfp_executor.Executor(executor_input=executor_input, function_to_execute=func).execute()


def _read_output(path: str | None) -> dict[str, Any]:
    if path and os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    return {}


def _write_json(path: str, document: dict[str, Any]) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(document, f)
    os.replace(tmp, path)


def _input_records(executor_input: dict[str, Any]) -> dict[str, list[Any]]:
    from kubetfx.lineage.record import ArtifactRecord

    records: dict[str, list[Any]] = {}
    for key, spec in executor_input.get("inputs", {}).get("artifacts", {}).items():
        records[key] = [ArtifactRecord.from_runtime(key, a) for a in spec.get("artifacts", [])]
    return records


def _open_recorder(identity_args: dict[str, str]) -> Recorder | None:
    """The task's lineage writes; None (and a warning) when no metadata store is configured."""
    store = lineage_store()
    if store is None:
        log.warning("KUBETFX_METADATA is not set: this task's lineage is not recorded")
        return None
    from kubetfx.lineage.record import Identity

    return Recorder(store, Identity(**identity_args))


def lineage_store() -> Any:
    """The metadata store of the running task, or None when lineage is off."""
    url = TaskEnv.from_env().metadata
    if not url:
        return None
    from kubetfx.lineage.store import connect

    return connect(url)


def add_input(key: str, artifact_id: int) -> bool:
    """Record that the running task also read artifact ``artifact_id`` (as input ``key``).

    For inputs that reach a task by reference rather than as a KFP artifact (the
    Evaluator's baseline model, found by the resolver): the lineage then shows them
    like any other input. Returns False when lineage is off, or when the artifact is
    already an input of the task (ML Metadata keeps one event per artifact and task).
    """
    store = lineage_store()
    execution_id = TaskEnv.from_env().execution_id
    if store is None or not execution_id:
        return False
    from kubetfx.lineage.record import add_input_event

    return add_input_event(store, execution_id, artifact_id, key)


def pipeline_name() -> str:
    """The name of the pipeline the running task belongs to."""
    return TaskEnv.from_env().pipeline_name


def main() -> None:
    """Console entry point."""
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
