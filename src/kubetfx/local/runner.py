"""The local runner: executes a compiled KFP pipeline YAML on this machine.

It walks the pipeline's DAGs in dependency order (independent tasks in parallel),
passes parameters and artifacts, honours conditions, loops, exit handlers, importers
and nested pipelines, and runs every container task with the command its YAML names
and the executor input the KFP launcher would build, with the local interpreter in
place of the image. Each task runs in its own process, so a task that crashes or is
killed cannot take the runner down.

Lineage: kubetfx tasks record their own executions (``kubetfx.task``); the runner
records the run, cached and skipped tasks, and tasks of plain KFP components.

Object-store mode (a pipeline root such as ``s3://BUCKET/PREFIX`` or ``minio://...``):
every artifact lives in the object store, at the URI the KFP backend would give it
(``ROOT/PIPELINE/RUN/TASK/SALT/OUTPUT``), and the runner plays KFP's launcher for each
task: it gives the task its own temporary folder in place of the pod's filesystem,
downloads the input artifacts to the launcher's local paths under it (``/minio/...``,
``/s3/...``, ``/gcs/...``), runs the command, uploads the outputs on success and removes
the folder. No task is handed a local path another task wrote, and tasks are named as
the backend names them (``pusher``, not ``condition-1/pusher``).

A kubetfx task records itself COMPLETE before the launcher uploads its outputs, so in
object-store mode the runner hands it a *pending* cache key (``upload-pending:HOST:PID:KEY``)
and sets the real key only once every output is in the store: no other run, and no rerun,
takes a half-uploaded artifact from the cache. An upload that fails, or whose runner died
(the next run with that key finds the PID gone), marks the execution FAILED, its outputs
ABANDONED, and removes what was uploaded of them.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubetfx import storage
from kubetfx.errors import PipelineSpecError
from kubetfx.faults import failpoint
from kubetfx.fingerprint import fingerprint_files, fingerprint_uri, local_path
from kubetfx.identity import IDENTITY_INPUTS, SCOPE_PARAMETER
from kubetfx.local import cel
from kubetfx.local.spec import PipelineDoc, select
from kubetfx.local.warm import enabled as warm_enabled
from kubetfx.local.warm import shim_dir as warm_shim_dir
from kubetfx.process import ENV_RUNNER_PID, with_parent_death_signal
from kubetfx.settings import PUSH_ROOT_ENV, redact, resolve_push_roots
from kubetfx.staging import discard, publish, stage_outputs, unstage_uris

SUCCEEDED = "SUCCEEDED"
CACHED = "CACHED"
FAILED = "FAILED"
SKIPPED = "SKIPPED"
NOT_RUN = "NOT_RUN"  # an upstream task failed
OK_STATES = (SUCCEEDED, CACHED)

TASK_MODULE_MARK = "-m kubetfx.task"
# Object-store mode: a task's cache key until its outputs are all in the store.
UPLOAD_PENDING = "upload-pending:"


@dataclass
class Artifact:
    """An artifact handed from task to task."""

    key: str
    uri: str
    schema_title: str
    schema_version: str = "0.0.1"
    metadata: dict[str, Any] = field(default_factory=dict)
    id: int | None = None

    def runtime(self) -> dict[str, Any]:
        """The RuntimeArtifact JSON of an executor input."""
        return {
            "name": str(self.id) if self.id is not None else self.key,
            "type": {"schemaTitle": self.schema_title, "schemaVersion": self.schema_version},
            "uri": self.uri,
            "metadata": self.metadata,
        }

    def fingerprint(self) -> str:
        from kubetfx.lineage.record import FINGERPRINT_KEY

        return str(self.metadata.get(FINGERPRINT_KEY) or self.uri)


@dataclass
class TaskResult:
    """What one task (or DAG) did."""

    name: str
    state: str
    params: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, list[Artifact]] = field(default_factory=dict)
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


class LocalRunner:
    """Runs one compiled pipeline; create one per run."""

    def __init__(
        self,
        doc: PipelineDoc,
        *,
        metadata_url: str,
        pipeline_root: str,
        cache: bool = True,
        max_parallel: int | None = None,
        echo: Callable[[str], None] | None = None,
        task_env: dict[str, str] | None = None,
        warm: bool | None = None,
    ) -> None:
        from kubetfx.lineage.store import connect

        self.doc = doc
        self.metadata_url = metadata_url
        self.store = connect(metadata_url)
        self.pipeline_root = pipeline_root
        self.cache = cache
        self.slots = threading.Semaphore(max_parallel or os.cpu_count() or 2)
        self.echo = echo or (lambda line: print(line, flush=True))
        self.task_env = task_env or {}
        self.warm = warm_enabled(warm)  # None: KUBETFX_WARM decides (on unless "0")
        self.results: list[TaskResult] = []
        self._results_lock = threading.Lock()
        now = datetime.now(UTC)
        self.run_id = f"{doc.name}-{now:%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
        # Object-store mode: every artifact in the store, every task in its own folder.
        self.remote = storage.is_remote(pipeline_root)
        self.run_root = storage.join(pipeline_root, doc.name, self.run_id)
        self.log_root = ""
        if self.remote:
            from kubetfx.settings import default_home

            self.log_root = str(default_home().absolute() / "logs" / doc.name / self.run_id)
        self.started = time.monotonic()
        self.scope = doc.name  # the lineage scope: the pipeline's name unless lineage_scope says

    # ------------------------------------------------------------------ public

    def run(self, parameters: dict[str, Any]) -> RunResult:
        """Run the pipeline with already type-checked root parameters."""
        from kubetfx.lineage import record

        scope = parameters.get(SCOPE_PARAMETER)
        self.scope = scope if isinstance(scope, str) and scope else self.doc.name
        identity = self._identity("")
        record.update_run(
            self.store,
            identity,
            state="RUNNING",
            parameters=parameters,
            pipeline_file=os.path.abspath(self.doc.path),
        )
        self.echo(f"run {self.run_id}: pipeline {self.doc.name}, outputs under {self.run_root}")
        for note in self.doc.notes:
            self.echo(f"note: {note}")
        if self.remote:
            self.echo(
                "note: object-store mode: artifacts in the object store, each task in its own "
                "folder with the KFP launcher's downloads and uploads"
            )
        try:
            result = self._run_dag(self.doc.root, parameters, {}, prefix="")
        except BaseException:
            record.update_run(self.store, identity, state=FAILED)
            raise
        seconds = time.monotonic() - self.started
        state = SUCCEEDED if result.state in OK_STATES else FAILED
        record.update_run(self.store, identity, state=state, seconds=round(seconds, 3))
        return RunResult(
            run_id=self.run_id,
            pipeline_name=self.doc.name,
            state=state,
            tasks=list(self.results),
            seconds=seconds,
            metadata=str(self.store),
            pipeline_root=self.run_root,
            outputs=result.params,
        )

    # ------------------------------------------------------------------ DAGs

    def _identity(self, task_name: str) -> Any:
        from kubetfx.lineage.record import Identity

        return Identity(
            pipeline_name=self.scope,
            run_id=self.run_id,
            task_name=task_name,
            pipeline_root=self.pipeline_root,
        )

    def _run_dag(
        self,
        component: dict[str, Any],
        params: dict[str, Any],
        artifacts: dict[str, list[Artifact]],
        prefix: str,
    ) -> TaskResult:
        dag = component["dag"]
        tasks: dict[str, dict[str, Any]] = dag.get("tasks", {})
        upstream = {name: _upstream(task) for name, task in tasks.items()}
        for name, ups in upstream.items():
            missing = ups - set(tasks)
            if missing:
                raise PipelineSpecError(f"task {name!r} depends on unknown task {sorted(missing)[0]!r}")
        done: dict[str, TaskResult] = {}
        running: dict[Future[TaskResult], str] = {}
        with ThreadPoolExecutor(max_workers=max(1, len(tasks))) as pool:
            while len(done) < len(tasks):
                settled = len(done)
                for name, task in tasks.items():
                    if name in done or name in running.values():
                        continue
                    if not upstream[name] <= set(done):
                        continue
                    blocked = self._blocked(task, upstream[name], done)
                    if blocked:
                        done[name] = self._not_run(f"{prefix}{name}", task, blocked)
                        continue
                    future = pool.submit(
                        self._run_task_safely, name, task, params, artifacts, done.copy(), prefix
                    )
                    running[future] = name
                if not running:
                    if len(done) == len(tasks):
                        break
                    if len(done) == settled:  # nothing ran, nothing was settled: a cycle
                        raise PipelineSpecError(f"tasks in {prefix or 'root'} form a cycle")
                    continue  # tasks marked NOT_RUN in this pass may unblock others
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    done[running.pop(future)] = future.result()
        state = SUCCEEDED
        if any(r.state in (FAILED, NOT_RUN) for r in done.values()):
            state = FAILED
        outputs_params, outputs_artifacts = _dag_outputs(dag, done)
        failed = [r for r in done.values() if r.state == FAILED]
        return TaskResult(
            name=prefix.rstrip("/") or "root",
            state=state,
            params=outputs_params,
            artifacts=outputs_artifacts,
            message=failed[0].message if failed else "",
            kind="dag",
        )

    def _blocked(self, task: dict[str, Any], ups: set[str], done: dict[str, TaskResult]) -> str:
        if task.get("triggerPolicy", {}).get("strategy") == "ALL_UPSTREAM_TASKS_COMPLETED":
            return ""
        bad = sorted(u for u in ups if done[u].state in (FAILED, NOT_RUN))
        return f"upstream task {bad[0]} failed" if bad else ""

    def _not_run(self, qname: str, task: dict[str, Any], reason: str) -> TaskResult:
        return self._skipped(qname, self.doc.components[task["componentRef"]["name"]], reason, state=NOT_RUN)

    def _add(self, result: TaskResult) -> TaskResult:
        with self._results_lock:
            self.results.append(result)
        return result

    def _run_task_safely(self, *args: Any) -> TaskResult:
        name, prefix = args[0], args[-1]
        try:
            return self._run_task(*args)
        except Exception as err:  # noqa: BLE001 - one task's bug must not hide the others
            message = redact(f"{type(err).__name__}: {err}")
            self.echo(f"  {prefix}{name}: FAILED: {message}")
            return self._add(TaskResult(name=f"{prefix}{name}", state=FAILED, message=message))

    def _run_task(
        self,
        name: str,
        task: dict[str, Any],
        dag_params: dict[str, Any],
        dag_artifacts: dict[str, list[Artifact]],
        done: dict[str, TaskResult],
        prefix: str,
    ) -> TaskResult:
        qname = f"{prefix}{name}"
        component = self.doc.components[task["componentRef"]["name"]]
        params, artifacts, missing = self._resolve_inputs(
            task, component, dag_params, dag_artifacts, done, qname
        )
        condition = task.get("triggerPolicy", {}).get("condition")
        if condition and not missing:
            try:
                ok = cel.evaluate(condition, params)
            except Exception as err:  # noqa: BLE001 - report as a task failure with the condition
                raise PipelineSpecError(f"cannot evaluate condition {condition!r}: {err}") from None
            if not ok:
                return self._skipped(qname, component, f"condition false: {_readable(condition)}")
        if missing:
            return self._skipped(
                qname, component, f"input {missing} was not produced (its branch was skipped)"
            )
        if "parameterIterator" in task:
            return self._run_loop(qname, task, component, params, artifacts)
        if "dag" in component:
            # The backend names a task by its own name, whatever DAG it is in.
            inner = "" if self.remote else f"{qname}/"
            result = self._run_dag(component, params, artifacts, prefix=inner)
            result.name = qname
            return result
        executor = self.doc.executors[component["executorLabel"]]
        if "importer" in executor:
            return self._add(self._run_importer(qname, task, executor["importer"], params))
        return self._add(
            self._run_container(qname, task, component, executor["container"], params, artifacts)
        )

    def _skipped(
        self, qname: str, component: dict[str, Any], reason: str, state: str = SKIPPED
    ) -> TaskResult:
        from ml_metadata.proto import metadata_store_pb2 as pb

        from kubetfx.lineage import record

        kind = "dag" if "dag" in component else "container"
        execution_id = record.record_outcome(
            self.store,
            self._identity(qname),
            state=pb.Execution.CANCELED,
            params={},
            type_name="system.DAGExecution" if kind == "dag" else record.CONTAINER_EXECUTION,
            extra={"skipped_reason": reason, "task_state": state},
        )
        self.echo(f"  {qname}: {'skipped' if state == SKIPPED else 'not run'} ({reason})")
        result = self._add(
            TaskResult(name=qname, state=state, message=reason, execution_id=execution_id, kind=kind)
        )
        if kind == "dag":  # name what did not run inside it, for the summary
            self._add_skipped_inside(component, "" if self.remote else f"{qname}/", reason, state)
        return result

    def _add_skipped_inside(self, component: dict[str, Any], prefix: str, reason: str, state: str) -> None:
        for inner, task in component["dag"].get("tasks", {}).items():
            child = self.doc.components[task["componentRef"]["name"]]
            if "dag" in child:
                self._add_skipped_inside(child, f"{prefix}{inner}/", reason, state)
            else:
                self._add(TaskResult(name=f"{prefix}{inner}", state=state, message=reason, kind="container"))

    def _run_loop(
        self,
        qname: str,
        task: dict[str, Any],
        component: dict[str, Any],
        params: dict[str, Any],
        artifacts: dict[str, list[Artifact]],
    ) -> TaskResult:
        iterator = task["parameterIterator"]
        items_spec = iterator["items"]
        if "raw" in items_spec:
            items = json.loads(items_spec["raw"])
        else:
            items = params[items_spec["inputParameter"]]
        if isinstance(items, str):
            items = json.loads(items)
        limit = int(task.get("iteratorPolicy", {}).get("parallelismLimit", 0) or 0) or len(items) or 1
        results: list[TaskResult | None] = [None] * len(items)

        def one(index: int) -> None:
            inputs = {**params, iterator["itemInput"]: items[index]}
            results[index] = self._run_dag(component, inputs, artifacts, prefix=f"{qname}/{index}/")

        with ThreadPoolExecutor(max_workers=max(1, min(limit, len(items) or 1))) as pool:
            list(pool.map(one, range(len(items))))
        done = [r for r in results if r is not None]
        state = FAILED if any(r.state == FAILED for r in done) else SUCCEEDED
        # Loop outputs are collected over iterations (dsl.Collected).
        collected_params: dict[str, Any] = {}
        collected_artifacts: dict[str, list[Artifact]] = {}
        for result in done:
            for key, value in result.params.items():
                collected_params.setdefault(key, []).append(value)
            for key, values in result.artifacts.items():
                collected_artifacts.setdefault(key, []).extend(values)
        failed = [r for r in done if r.state == FAILED]
        return TaskResult(
            name=qname,
            state=state,
            params=collected_params,
            artifacts=collected_artifacts,
            message=failed[0].message if failed else "",
            kind="dag",
        )

    # ------------------------------------------------------------------ inputs

    def _placeholders(self, qname: str) -> dict[str, str]:
        # The backend's driver replaces a constant only when it *is* one of these
        # (backend/src/v2/driver/resolve.go); a placeholder inside a longer string, or
        # {{$.pipeline_root}}, reaches the task as written. So here.
        return {
            "{{$.pipeline_job_name}}": self.doc.name,
            "{{$.pipeline_job_resource_name}}": self.run_id,
            "{{$.pipeline_job_uuid}}": self.run_id,
            "{{$.pipeline_task_name}}": qname,
            "{{$.pipeline_task_uuid}}": f"{self.run_id}/{qname}",
        }

    def _resolve_inputs(
        self,
        task: dict[str, Any],
        component: dict[str, Any],
        dag_params: dict[str, Any],
        dag_artifacts: dict[str, list[Artifact]],
        done: dict[str, TaskResult],
        qname: str,
    ) -> tuple[dict[str, Any], dict[str, list[Artifact]], str]:
        params: dict[str, Any] = {}
        artifacts: dict[str, list[Artifact]] = {}
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
                    value = self._placeholders(qname).get(value, value)
            elif "taskFinalStatus" in spec:
                producer = done[spec["taskFinalStatus"]["producerTask"]]
                value = {
                    "state": SUCCEEDED if producer.state in OK_STATES + (SKIPPED,) else FAILED,
                    "pipelineJobResourceName": self.run_id,
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

    def _task_root(self, qname: str) -> str:
        return os.path.join(self.run_root, *qname.split("/"))

    def _run_importer(
        self, qname: str, task: dict[str, Any], importer: dict[str, Any], params: dict[str, Any]
    ) -> TaskResult:
        from ml_metadata.proto import metadata_store_pb2 as pb

        from kubetfx.lineage import record

        started = time.monotonic()
        source = importer.get("artifactUri", {})
        uri = source["constant"] if "constant" in source else params[source["runtimeParameter"]]
        type_schema = importer.get("typeSchema", {})
        metadata = dict(importer.get("metadata") or {})
        path = local_path(uri)
        if self.remote and not storage.is_remote(uri):
            # KFP's launcher downloads only object-store URIs: a path or pkg:// on this
            # machine would not reach a pod.
            raise PipelineSpecError(
                f"importer {qname}: {uri} is not an object-store URI (s3://, gs://, minio://); "
                "in object-store mode, as in a cluster, upload it first and import its URI"
            )
        if path is not None and not path.exists():
            raise FileNotFoundError(f"importer {qname}: nothing at {uri}")
        if path is None and storage.is_remote(uri) and not storage.exists(uri):
            raise FileNotFoundError(f"importer {qname}: nothing at {uri}")
        fp = fingerprint_uri(uri)
        if fp:
            metadata[record.FINGERPRINT_KEY] = fp
        artifact = Artifact(
            key="artifact",
            uri=str(path) if path is not None and "://" not in uri else uri,
            schema_title=type_schema.get("schemaTitle", "system.Artifact"),
            schema_version=type_schema.get("schemaVersion", "0.0.1"),
            metadata=metadata,
        )
        identity = self._identity(qname)
        existing = None if importer.get("reimport") else record.find_artifact(self.store, artifact.uri)
        if existing is not None and record.props(existing).get(record.FINGERPRINT_KEY) == fp:
            artifact.id = existing.id
            execution_id = record.record_outcome(
                self.store,
                identity,
                state=pb.Execution.COMPLETE,
                params={"uri": uri},
                outputs={"artifact": [_lineage_record(artifact)]},
                type_name=record.IMPORTER_EXECUTION,
            )
        else:
            execution_id = record.start_execution(
                self.store, identity, params={"uri": uri}, inputs={}, type_name=record.IMPORTER_EXECUTION
            )
            ids = record.finish_execution(
                self.store,
                identity,
                execution_id,
                outputs={"artifact": [_lineage_record(artifact)]},
                output_params={},
            )
            artifact.id = ids["artifact"][0]
        seconds = time.monotonic() - started
        self.echo(f"  {qname}: imported {artifact.uri}")
        return TaskResult(
            name=qname,
            state=SUCCEEDED,
            artifacts={"artifact": [artifact]},
            seconds=seconds,
            execution_id=execution_id,
            kind="importer",
        )

    def _executor_input(
        self,
        qname: str,
        component: dict[str, Any],
        params: dict[str, Any],
        artifacts: dict[str, list[Artifact]],
        pod: str = "",
    ) -> dict[str, Any]:
        root = self._task_root(qname)
        inner = os.path.join(root, ".kubetfx")
        outputs_dir = os.path.join(inner, "outputs")
        output_file = os.path.join(inner, "executor_output.json")
        if self.remote:
            # As KFP's driver and launcher: outputs at ROOT/PIPELINE/RUN/TASK/SALT/KEY, the
            # parameter files and executor output in the pod's own /tmp.
            root = storage.join(self.run_root, qname.rsplit("/", 1)[-1], uuid.uuid4().hex)
            outputs_dir = os.path.join(pod, "tmp/kfp/outputs")
            output_file = os.path.join(pod, "tmp/kfp_outputs/output_metadata.json")
        values = {}
        declared = component.get("inputDefinitions", {}).get("parameters", {})
        for key, spec in declared.items():
            if key in params:
                values[key] = _as_launched(params[key], spec.get("parameterType"))
            elif "defaultValue" in spec:
                values[key] = _as_launched(spec["defaultValue"], spec.get("parameterType"))
        outputs = component.get("outputDefinitions", {})
        return {
            "inputs": {
                "parameterValues": values,
                "artifacts": {
                    key: {"artifacts": [a.runtime() for a in arts]} for key, arts in artifacts.items()
                },
            },
            "outputs": {
                "parameters": {
                    key: {"outputFile": os.path.join(outputs_dir, key)}
                    for key in outputs.get("parameters", {})
                },
                "artifacts": {
                    key: {
                        "artifacts": [
                            {
                                "name": key,
                                "type": spec.get("artifactType", {}),
                                "uri": storage.join(root, key),
                                "metadata": {},
                            }
                        ]
                    }
                    for key, spec in outputs.get("artifacts", {}).items()
                },
                "outputFile": output_file,
            },
        }

    def _cache_key(
        self,
        container: dict[str, Any],
        executor_input: dict[str, Any],
        artifacts: dict[str, list[Artifact]],
    ) -> str:
        params = {
            k: v for k, v in executor_input["inputs"]["parameterValues"].items() if k not in IDENTITY_INPUTS
        }
        data = {}
        for key, value in params.items():
            # A parameter that names local data (a file, folder or {SPAN} pattern) folds
            # that data's content into the key: a changed file at the same path must miss.
            if isinstance(value, str) and ("/" in value or value.startswith("pkg://")):
                fp = fingerprint_uri(value)
                if fp:
                    data[key] = fp
        command_text = " ".join(map(str, container.get("command", [])))
        document = {
            # kubetfx tasks import shared modules beyond their own folder (which is all
            # KUBETFX_COMPONENT_VERSION covers): fold the installed sources in as well.
            "runtime": _kubetfx_sources() if TASK_MODULE_MARK in command_text else "",
            "image": container.get("image"),
            "command": container.get("command"),
            "args": container.get("args"),
            "params": params,
            "data": data,
            "artifacts": {k: [a.fingerprint() for a in arts] for k, arts in artifacts.items()},
            "outputs": {
                k: v["artifacts"][0]["type"] for k, v in executor_input["outputs"]["artifacts"].items()
            },
            "output_params": sorted(executor_input["outputs"]["parameters"]),
        }
        blob = json.dumps(document, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()

    def _cache_hit(self, cache_key: str) -> tuple[Any, dict[str, list[Any]]] | None:
        from kubetfx.lineage import record

        if self.remote:
            self._abandon_dead_uploads(cache_key)
        for execution in record.find_cached(self.store, cache_key):
            outputs = record.outputs_of(self.store, execution.id)
            # A hit whose outputs were deleted since is no hit; nor one whose outputs a task
            # of this mode cannot read (local outputs in object-store mode, or the reverse).
            if all(self._reachable(a) for arts in outputs.values() for a in arts if a.uri):
                return execution, outputs
        return None

    def _reachable(self, artifact: Any) -> bool:
        from kubetfx.lineage.record import FINGERPRINT_KEY, props

        uri = artifact.uri
        if storage.is_remote(uri) != self.remote:
            return False
        if self.remote and not props(artifact).get(FINGERPRINT_KEY):
            # The launcher uploads nothing for an output its task did not write (a Metrics
            # artifact whose values are in the executor output): nothing there to miss.
            return True
        try:
            return storage.exists(uri)
        except storage.StorageError:
            return False

    def _abandon_dead_uploads(self, cache_key: str) -> None:
        """Executions with this key whose runner died before their outputs were all
        uploaded: FAILED, their outputs ABANDONED and removed from the store."""
        from ml_metadata.metadata_store import ListOptions

        query = (
            f"custom_properties.cache_fingerprint.string_value LIKE '{UPLOAD_PENDING}%:{cache_key}'"
            " AND last_known_state = COMPLETE"
        )
        found = self.store.call(self.store.mlmd.get_executions, list_options=ListOptions(filter_query=query))
        for execution in found:
            tag = execution.custom_properties["cache_fingerprint"].string_value
            host, _, rest = tag[len(UPLOAD_PENDING) :].partition(":")
            pid = rest.partition(":")[0]
            if host != socket.gethostname() or not pid.isdigit() or _pid_alive(int(pid)):
                continue  # uploading now (another run), or on a machine we cannot look at
            self._abandon(
                execution.id,
                f"the runner (pid {pid}) stopped before the launcher had uploaded this task's "
                "outputs to the object store",
            )

    def _abandon(self, execution_id: int, message: str) -> None:
        """A COMPLETE execution whose outputs never fully reached the object store: FAILED,
        its output artifacts ABANDONED, what was uploaded of them removed."""
        from ml_metadata.proto import metadata_store_pb2 as pb

        from kubetfx.lineage import record
        from kubetfx.lineage.record import to_value

        [execution] = self.store.call(self.store.mlmd.get_executions_by_id, [execution_id])
        outputs = record.outputs_of(self.store, execution_id)
        abandoned = []
        for artifacts in outputs.values():
            for artifact in artifacts:
                if artifact.uri and storage.is_remote(artifact.uri):
                    try:
                        storage.remove(artifact.uri)
                    except storage.StorageError as err:
                        self.echo(f"  warning: could not remove the partial upload {artifact.uri}: {err}")
                artifact.state = pb.Artifact.ABANDONED
                abandoned.append(artifact)
        if abandoned:
            self.store.call(self.store.mlmd.put_artifacts, abandoned)
        execution.last_known_state = pb.Execution.FAILED
        to_value(message[:4000], execution.custom_properties["error"])
        self.store.call(self.store.mlmd.put_executions, [execution])

    def _uploaded(self, execution_id: int, cache_key: str) -> None:
        """Every output is in the store: the execution's real cache key, for later runs."""
        from kubetfx.lineage.record import to_value

        [execution] = self.store.call(self.store.mlmd.get_executions_by_id, [execution_id])
        to_value(cache_key, execution.custom_properties["cache_fingerprint"])
        self.store.call(self.store.mlmd.put_executions, [execution])

    def _run_container(
        self,
        qname: str,
        task: dict[str, Any],
        component: dict[str, Any],
        container: dict[str, Any],
        params: dict[str, Any],
        artifacts: dict[str, list[Artifact]],
    ) -> TaskResult:
        from ml_metadata.proto import metadata_store_pb2 as pb

        from kubetfx.lineage import record

        started = time.monotonic()
        pod = self._new_pod(qname)
        try:
            executor_input = self._executor_input(qname, component, params, artifacts, pod)
            cache_key = self._cache_key(container, executor_input, artifacts)
        finally:
            self._remove_pod(pod)
        # The compiler writes ``cachingOptions: {}`` for set_caching_options(False): a
        # missing enableCache is false, as in the backend's proto.
        use_cache = self.cache and bool(task.get("cachingOptions", {}).get("enableCache", False))
        user_params = {
            k: redact(v) if isinstance(v, str) else v
            for k, v in executor_input["inputs"]["parameterValues"].items()
            if k not in IDENTITY_INPUTS
        }
        if use_cache:
            hit = self._cache_hit(cache_key)
            if hit is not None:
                execution, outputs = hit
                out_params = record.props(execution).get("outputs") or {}
                produced = {
                    key: [_from_mlmd(key, a, self.store) for a in arts] for key, arts in outputs.items()
                }
                execution_id = record.record_outcome(
                    self.store,
                    self._identity(qname),
                    state=pb.Execution.CACHED,
                    params=user_params,
                    inputs={k: [_lineage_record(a) for a in v] for k, v in artifacts.items()},
                    outputs={k: [_lineage_record(a) for a in v] for k, v in produced.items()},
                    extra={"cache_fingerprint": cache_key, "cached_execution_id": str(execution.id)},
                )
                self.echo(f"  {qname}: cached (reuses execution {execution.id})")
                return TaskResult(
                    name=qname,
                    state=CACHED,
                    params=out_params,
                    artifacts=produced,
                    seconds=time.monotonic() - started,
                    execution_id=execution_id,
                    message=f"reused execution {execution.id}",
                )
        policy = task.get("retryPolicy", {})
        retries = int(policy.get("maxRetryCount", 0) or 0)
        attempt = 0
        while True:
            # Every attempt is a new pod: a fresh folder, new output URIs.
            pod = self._new_pod(qname)
            try:
                executor_input = self._executor_input(qname, component, params, artifacts, pod)
                result = self._execute(
                    qname, container, executor_input, artifacts, cache_key, user_params, pod
                )
            finally:
                self._remove_pod(pod)
            if result.state != FAILED or attempt >= retries:
                break
            attempt += 1
            delay = retry_delay(policy, attempt)
            self.echo(f"  {qname}: retry {attempt} of {retries}" + (f" in {delay:g}s" if delay else ""))
            if delay:
                time.sleep(delay)
        result.seconds = time.monotonic() - started
        return result

    def _new_pod(self, qname: str) -> str:
        """Object-store mode: a task's own folder, in place of a pod's filesystem ("" otherwise)."""
        if not self.remote:
            return ""
        return tempfile.mkdtemp(prefix=f"kubetfx-pod-{qname.rsplit('/', 1)[-1]}-")

    @staticmethod
    def _remove_pod(pod: str) -> None:
        if pod:
            shutil.rmtree(pod, ignore_errors=True)

    def _launcher_download(self, qname: str, executor_input: dict[str, Any], pod: str) -> None:
        """What KFP's launcher does before the command: inputs at their local paths, and the
        folders of output artifacts and parameter files made."""
        for key, spec in executor_input["inputs"]["artifacts"].items():
            for artifact in spec.get("artifacts", []):
                uri = artifact.get("uri", "")
                local = storage.launcher_path(uri, pod)
                if local is None:
                    raise PipelineSpecError(
                        f"task {qname}: input {key!r} is at {uri}, which a KFP launcher cannot "
                        "download (object-store mode takes s3://, gs:// or minio:// URIs only)"
                    )
                storage.download(uri, local, missing_ok=True)
        for spec in executor_input["outputs"]["artifacts"].values():
            for artifact in spec.get("artifacts", []):
                local = storage.launcher_path(artifact["uri"], pod)
                if local:
                    os.makedirs(os.path.dirname(local), exist_ok=True)
        for spec in executor_input["outputs"]["parameters"].values():
            os.makedirs(os.path.dirname(spec["outputFile"]), exist_ok=True)
        os.makedirs(os.path.dirname(executor_input["outputs"]["outputFile"]), exist_ok=True)

    def _launcher_upload(
        self, qname: str, executor_input: dict[str, Any], document: dict[str, Any], pod: str
    ) -> None:
        """What KFP's launcher does after a command that succeeded: each output artifact's
        local path uploaded to its URI (one the executor did not write is skipped, as there)."""
        written = document.get("artifacts", {})
        # A test hook (kubetfx.faults): after each file uploaded, before the rest.
        point = f"launcher.upload.{qname.rsplit('/', 1)[-1]}"
        for key, spec in executor_input["outputs"]["artifacts"].items():
            runtime = written.get(key, spec).get("artifacts", []) or spec.get("artifacts", [])
            for artifact in runtime:
                uri = artifact.get("uri") or spec["artifacts"][0]["uri"]
                local = storage.launcher_path(uri, pod)
                if local and os.path.exists(local):
                    storage.upload(local, uri, progress=functools.partial(failpoint, point))

    def _execute(
        self,
        qname: str,
        container: dict[str, Any],
        executor_input: dict[str, Any],
        artifacts: dict[str, list[Artifact]],
        cache_key: str,
        user_params: dict[str, Any],
        pod: str = "",
    ) -> TaskResult:
        from kfp.local import placeholder_utils

        from kubetfx.lineage import record

        root = pod or self._task_root(qname)
        inner = Path(pod, "tmp/kubetfx") if pod else Path(root, ".kubetfx")
        inner.mkdir(parents=True, exist_ok=True)
        command = list(container.get("command", [])) + list(container.get("args", []))
        wrapped = any(TASK_MODULE_MARK in part for part in command)
        if pod and not wrapped:
            # KFP's SDK writes such a task's outputs to /minio/..., /s3/... on this machine.
            raise PipelineSpecError(
                f"task {qname}: object-store mode runs kubetfx components (python -m kubetfx.task) "
                "only; this task runs a plain KFP command, which would write to this machine's "
                "/minio, /s3 or /gcs: run it in the default local mode or in a cluster"
            )
        identity = self._identity(qname)
        # The key a kubetfx task records until the launcher has uploaded its outputs.
        pending = f"{UPLOAD_PENDING}{socket.gethostname()}:{os.getpid()}:{cache_key}" if pod else ""
        staged: dict[str, str] = {}
        execution_id = None
        if not wrapped:
            # A plain KFP component cannot record its own lineage: do it for it, and
            # stage its outputs so a kill never leaves a half-written artifact.
            staged = stage_outputs(executor_input)
            execution_id = record.start_execution(
                self.store,
                identity,
                params=user_params,
                inputs={k: [_lineage_record(a) for a in v] for k, v in artifacts.items()},
                extra={"cache_fingerprint": cache_key, "image": container.get("image")},
            )
        shielded, tokens = _shield_pipeline_placeholders(executor_input)
        argv = placeholder_utils.replace_placeholders(
            full_command=command,
            executor_input_dict=shielded,
            pipeline_resource_name=self.doc.name,
            task_resource_name=qname,
            pipeline_root=self.pipeline_root,
            unique_pipeline_id=self.run_id,
        )
        argv = [_unshield(part, tokens) for part in argv]
        state_file = inner / "state.json"
        log_path = inner / "log.txt"
        pod_env: dict[str, str] = {}
        if pod:
            # The runner keeps the log (as KFP keeps a pod's log); the task sees only its folder.
            log_path = Path(self.log_root, f"{qname.replace('/', '.')}-{Path(pod).name}.log")
            log_path.parent.mkdir(parents=True, exist_ok=True)
            Path(pod, "tmp").mkdir(exist_ok=True)
            Path(pod, "work").mkdir(exist_ok=True)
            root = str(Path(pod, "work"))
            pod_env = {storage.MOUNT_ROOT_ENV: pod, "TMPDIR": str(Path(pod, "tmp"))}
            try:
                self._launcher_download(qname, executor_input, pod)
            except storage.StorageError as err:
                message = redact(f"launcher: {err}")
                self.echo(f"  {qname}: FAILED: {message}")
                return TaskResult(name=qname, state=FAILED, message=message)
        env = {
            **os.environ,
            **self.task_env,
            # The local interpreter stands in for the image's python3.
            "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
            "KUBETFX_METADATA": self.metadata_url,
            "KUBETFX_PIPELINE_ROOT": self.pipeline_root,
            "KUBETFX_PIPELINE_NAME": self.doc.name,
            "KUBETFX_RUN_ID": self.run_id,
            "KUBETFX_TASK_NAME": qname,
            "KUBETFX_CACHE_KEY": pending or cache_key,
            "KUBETFX_TASK_STATE": str(state_file),
            "PYTHONUNBUFFERED": "1",
            "KUBETFX_DIE_WITH_RUNNER": "1",
            PUSH_ROOT_ENV: ",".join(resolve_push_roots()),
            ENV_RUNNER_PID: str(os.getpid()),
            **pod_env,
        }
        if wrapped and self.warm:
            # The same command, run by a warm worker's forked process (kubetfx.local.warm).
            shim = warm_shim_dir(env["PATH"])
            if shim:
                env["PATH"] = shim + os.pathsep + env["PATH"]
        with self.slots:
            self.echo(f"  {qname}: running")
            began = time.monotonic()
            with open(log_path, "wb") as log:
                process = subprocess.Popen(
                    with_parent_death_signal(argv),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=root,
                )
                returncode = process.wait()
            seconds = time.monotonic() - began
        state = _read_json(state_file)
        if wrapped:
            execution_id = state.get("execution_id")
        if returncode != 0:
            discard(staged)
            message = _failure_message(log_path, returncode, state)
            if execution_id:
                record.fail_execution(self.store, execution_id, message)
            self.echo(f"  {qname}: FAILED after {seconds:.1f}s: {message}\n    log: {log_path}")
            return TaskResult(
                name=qname,
                state=FAILED,
                message=message,
                seconds=seconds,
                execution_id=execution_id,
                log=str(log_path),
            )
        document = _read_json(Path(executor_input["outputs"]["outputFile"]))
        if pod:
            try:
                self._launcher_upload(qname, executor_input, document, pod)
            except storage.StorageError as err:
                message = redact(f"launcher: {err}")
                if execution_id:
                    self._abandon(execution_id, message)
                self.echo(f"  {qname}: FAILED: {message}")
                return TaskResult(name=qname, state=FAILED, message=message, execution_id=execution_id)
            if execution_id:
                self._uploaded(execution_id, cache_key)
        if staged:
            unstage_uris(document, staged)
            publish(staged)
        out_params = _output_parameters(executor_input, document)
        produced = _output_artifacts(executor_input, document, staged)
        if wrapped:
            ids = state.get("artifact_ids", {})
        else:
            ids = record.finish_execution(
                self.store,
                identity,
                execution_id,
                outputs={k: [_lineage_record(a) for a in v] for k, v in produced.items()},
                output_params=out_params,
            )
        for key, arts in produced.items():
            for artifact, artifact_id in zip(arts, ids.get(key, []), strict=False):
                artifact.id = artifact_id
        self.echo(f"  {qname}: done in {seconds:.1f}s")
        return TaskResult(
            name=qname,
            state=SUCCEEDED,
            params=out_params,
            artifacts=produced,
            seconds=seconds,
            execution_id=execution_id,
            log=str(log_path),
        )


# ---------------------------------------------------------------------- helpers


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@functools.lru_cache(maxsize=1)
def _kubetfx_sources() -> str:
    """A hash of the installed kubetfx runtime and component sources (once per process)."""
    import kubetfx
    import kubetfx.components

    files = [
        str(path)
        for package in (kubetfx, kubetfx.components)
        for base in package.__path__
        for path in Path(base).rglob("*.py")
    ]
    return fingerprint_files(sorted(set(files)), base=None) or ""


def _as_launched(value: Any, declared: str | None) -> Any:
    """A value as the KFP launcher hands it over: protobuf numbers are doubles, and the
    backend writes integral ones without a fraction, so ``1.0`` arrives as ``1``."""
    if declared == "NUMBER_DOUBLE":
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_as_launched(v, None) for v in value]
    if isinstance(value, dict):
        return {k: _as_launched(v, None) for k, v in value.items()}
    return value


_PIPELINE_PLACEHOLDER = re.compile(r"\{\{\$\.pipeline_[a-z_]+\}\}")


def _shield_pipeline_placeholders(executor_input: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """A copy of ``executor_input`` whose parameter values hide ``{{$.pipeline_*}}``
    placeholders from kfp.local, which would replace them inside longer strings; KFP's
    launcher replaces only input and output placeholders there, so they reach the task as
    written. Returns the copy and token -> placeholder for :func:`_unshield`."""
    tokens: dict[str, str] = {}

    def hide(match: re.Match[str]) -> str:
        token = f"@@kubetfx-placeholder-{uuid.uuid4().hex}@@"
        tokens[token] = match.group(0)
        return token

    shielded = json.loads(json.dumps(executor_input))
    values = shielded.get("inputs", {}).get("parameterValues", {})
    for key, value in values.items():
        if isinstance(value, str) and "{{$.pipeline_" in value:
            values[key] = _PIPELINE_PLACEHOLDER.sub(hide, value)
    return shielded, tokens


def _unshield(part: Any, tokens: dict[str, str]) -> Any:
    if not isinstance(part, str):
        return part
    for token, placeholder in tokens.items():
        part = part.replace(token, placeholder)
    return part


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


def retry_delay(policy: dict[str, Any], attempt: int) -> float:
    """Seconds to wait before retry ``attempt`` (1, 2, ...) under a task's ``retryPolicy``:
    ``backoffDuration * backoffFactor ** (attempt - 1)``, at most ``backoffMaxDuration``
    (the backend's Argo retry strategy; the compiler's defaults are 0s, 2 and 3600s)."""
    base = _seconds(policy.get("backoffDuration", "0s"))
    if base <= 0:
        return 0.0
    factor = float(policy.get("backoffFactor", 2.0) or 1.0)
    cap = _seconds(policy.get("backoffMaxDuration", "3600s")) or float("inf")
    return min(base * factor ** max(0, attempt - 1), cap)


def _upstream(task: dict[str, Any]) -> set[str]:
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


def _dag_outputs(
    dag: dict[str, Any], done: dict[str, TaskResult]
) -> tuple[dict[str, Any], dict[str, list[Artifact]]]:
    params: dict[str, Any] = {}
    artifacts: dict[str, list[Artifact]] = {}
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


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _failure_message(log_path: Path, returncode: int, state: dict[str, Any]) -> str:
    if state.get("error"):
        return str(state["error"])
    if returncode < 0 or returncode in (128 + signal.SIGKILL, 128 + signal.SIGTERM):
        # sh reports a killed child as 128 + the signal number.
        number = -returncode if returncode < 0 else returncode - 128
        return f"killed by signal {signal.Signals(number).name}"
    lines = [line for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
    tail = lines[-1].strip() if lines else ""
    return redact(f"exit status {returncode}" + (f": {tail}" if tail else ""))


def _output_parameters(executor_input: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    values = dict(document.get("parameterValues", {}))
    for key, spec in executor_input["outputs"]["parameters"].items():
        path = spec["outputFile"]
        if key not in values and os.path.exists(path):
            text = Path(path).read_text()
            try:
                values[key] = json.loads(text)
            except json.JSONDecodeError:
                values[key] = text
    return values


def _output_artifacts(
    executor_input: dict[str, Any], document: dict[str, Any], staged: dict[str, str]
) -> dict[str, list[Artifact]]:
    from kubetfx.lineage.record import output_records

    produced: dict[str, list[Artifact]] = {}
    for key, records in output_records(executor_input, document, staged).items():
        declared = executor_input["outputs"]["artifacts"][key]["artifacts"][0]["type"]
        produced[key] = [
            Artifact(
                key=key,
                uri=r.uri,
                schema_title=declared.get("schemaTitle", r.schema_title),
                schema_version=declared.get("schemaVersion", "0.0.1"),
                metadata=r.metadata,
            )
            for r in records
        ]
    return produced


def _lineage_record(artifact: Artifact) -> Any:
    from kubetfx.lineage.record import ArtifactRecord

    return ArtifactRecord(
        key=artifact.key,
        uri=artifact.uri,
        schema_title=artifact.schema_title,
        metadata=artifact.metadata,
        id=artifact.id,
    )


def _from_mlmd(key: str, artifact: Any, store: Any) -> Artifact:
    from kubetfx.lineage.record import props
    from kubetfx.types import kfp_title

    types = store.call(store.mlmd.get_artifact_types_by_id, [artifact.type_id])
    metadata = {k: v for k, v in props(artifact).items() if k != "display_name"}
    type_name = types[0].name if types else "system.Artifact"
    return Artifact(
        key=key,
        uri=artifact.uri,
        schema_title=kfp_title(type_name) if type_name.startswith("kubetfx.") else type_name,
        metadata=metadata,
        id=artifact.id,
    )


def _readable(condition: str) -> str:
    """``inputs.parameter_values['pipelinechannel--evaluator-blessed'] == true`` ->
    ``evaluator-blessed == true``: the compiler's channel names, without the plumbing."""
    return re.sub(r"inputs\.parameter_values\['pipelinechannel--([^']+)'\]", r"\1", condition)
