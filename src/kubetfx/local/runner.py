"""The local runner: executes a compiled KFP pipeline YAML on this machine.

It walks the pipeline's DAGs in dependency order (independent tasks in parallel),
passes parameters and artifacts, honours conditions, loops, exit handlers, importers
and nested pipelines, and runs every container task with the command its YAML names
and the executor input the KFP launcher would build, with the local interpreter in
place of the image. Each task runs in its own process, so a task that crashes or is
killed cannot take the runner down.

Lineage: kubetfx tasks record their own executions (``kubetfx.task``); the runner
records the run, cached and skipped tasks, and tasks of plain KFP components (through
the same :class:`kubetfx.lifecycle.TaskLifecycle`).

This module walks the DAGs; the parts it calls say what they are: :mod:`.dag` (what
the spec says of a task: upstream tasks, inputs, retries), :mod:`.container` (one
container task: cache, attempts, lifecycle, launch), :mod:`.executor_input` (what a
task is handed and hands back), :mod:`.cache` (cache keys, hits, pending uploads),
:mod:`.launch` (the command line and the launchers: a plain process or the warm
worker), :mod:`.pod` (object-store mode's pod and launcher), :mod:`.importer`,
:mod:`.ir` (the spec's pieces, typed) and :mod:`.results`.

Object-store mode (a pipeline root such as ``s3://BUCKET/PREFIX`` or ``minio://...``):
every artifact lives in the object store, at the URI the KFP backend would give it
(``ROOT/PIPELINE/RUN/TASK/SALT/OUTPUT``), and the runner plays KFP's launcher for each
task: it gives the task its own temporary folder in place of the pod's filesystem,
downloads the input artifacts to the launcher's local paths under it (``/minio/...``,
``/s3/...``, ``/gcs/...``), runs the command, uploads the outputs on success and removes
the folder. No task is handed a local path another task wrote, and tasks are named as
the backend names them (``pusher``, not ``condition-1/pusher``).

Each task gets only what a pod would: its environment is built from the task's platform
spec and kubetfx's settings (:meth:`.pod.Pod.environment`), not the runner's whole
environment. A kubetfx task records itself COMPLETE before the launcher uploads its
outputs, so it carries a *pending* cache key until every output is in the store
(:mod:`.cache`).
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime
from typing import TYPE_CHECKING, cast

from kubetfx import storage
from kubetfx.errors import PipelineSpecError
from kubetfx.identity import SCOPE_PARAMETER
from kubetfx.local import cel
from kubetfx.local.container import ContainerTasks
from kubetfx.local.dag import dag_outputs, readable, resolve_inputs, retry_delay, upstream
from kubetfx.local.executor_input import runs_kubetfx_task
from kubetfx.local.importer import run_importer
from kubetfx.local.ir import ComponentSpec, TaskSpec, Values
from kubetfx.local.launch import ProcessLauncher, WarmLauncher, command_env, start_worker_early
from kubetfx.local.results import (
    CACHED,
    FAILED,
    NOT_RUN,
    OK_STATES,
    SKIPPED,
    SUCCEEDED,
    Artifact,
    Artifacts,
    RunResult,
    TaskResult,
)
from kubetfx.local.spec import PipelineDoc
from kubetfx.local.warm import enabled as warm_enabled
from kubetfx.settings import redact

if TYPE_CHECKING:
    from kubetfx.lineage.record import Identity

__all__ = [
    "CACHED",
    "FAILED",
    "NOT_RUN",
    "SKIPPED",
    "SUCCEEDED",
    "Artifact",
    "LocalRunner",
    "RunResult",
    "TaskResult",
    "retry_delay",
]


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
        environ: dict[str, str] | None = None,
    ) -> None:
        from kubetfx.lineage.store import connect

        self.doc = doc
        self.metadata_url = metadata_url
        self.store = connect(metadata_url)
        self.pipeline_root = pipeline_root
        self.echo = echo or (lambda line: print(line, flush=True))
        self.results: list[TaskResult] = []
        self._results_lock = threading.Lock()
        now = datetime.now(UTC)
        self.run_id = f"{doc.name}-{now:%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
        # Object-store mode: every artifact in the store, every task in its own folder.
        self.remote = storage.is_remote(pipeline_root)
        self.run_root = storage.join(pipeline_root, doc.name, self.run_id)
        log_root = ""
        if self.remote:
            from kubetfx.settings import default_home

            log_root = str(default_home().absolute() / "logs" / doc.name / self.run_id)
        self.started = time.monotonic()
        self.scope = doc.name  # the lineage scope: the pipeline's name unless lineage_scope says
        self.containers = ContainerTasks(
            doc,
            store=self.store,
            metadata_url=metadata_url,
            pipeline_root=pipeline_root,
            run_id=self.run_id,
            run_root=self.run_root,
            log_root=log_root,
            use_cache=cache,
            # kubetfx tasks through the warm worker unless it is off (None: KUBETFX_WARM decides).
            launcher=WarmLauncher() if warm_enabled(warm) else ProcessLauncher(),
            max_parallel=max_parallel or os.cpu_count() or 2,
            echo=self.echo,
            identity=self._identity,
            task_env=task_env or {},
            # Tasks start from this environment (default: this process's, now).
            environ=environ,
        )
        self.warm = warm_enabled(warm)

    # ------------------------------------------------------------------ public

    def run(self, parameters: Values) -> RunResult:
        """Run the pipeline with already type-checked root parameters."""
        from kubetfx.lineage import record

        self.start_worker_early()
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
            result = self._run_dag(cast(ComponentSpec, self.doc.root), parameters, {}, prefix="")
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

    def start_worker_early(self) -> bool:
        """Start the warm worker now, if the run has kubetfx tasks and none serves them
        yet, without waiting for its imports (:func:`.launch.start_worker_early`)."""
        if not self.warm:
            return False
        for executor in self.doc.executors.values():
            container = executor.get("container")
            if container and runs_kubetfx_task(container):
                command = " ".join([*container.get("command", []), *container.get("args", [])])
                return start_worker_early(
                    self.containers.environ,
                    {**self.containers.task_env, **(command_env(command) or {})},
                    remote=self.remote,
                )
        return False

    # ------------------------------------------------------------------ DAGs

    def _identity(self, task_name: str) -> Identity:
        from kubetfx.lineage.record import Identity

        return Identity(
            pipeline_name=self.scope,
            run_id=self.run_id,
            task_name=task_name,
            pipeline_root=self.pipeline_root,
        )

    def _run_dag(
        self,
        component: ComponentSpec,
        params: Values,
        artifacts: Artifacts,
        prefix: str,
    ) -> TaskResult:
        dag = component["dag"]
        tasks: dict[str, TaskSpec] = dag.get("tasks", {})
        ups = {name: upstream(task) for name, task in tasks.items()}
        for name, needs in ups.items():
            missing = needs - set(tasks)
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
                    if not ups[name] <= set(done):
                        continue
                    blocked = self._blocked(task, ups[name], done)
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
        outputs_params, outputs_artifacts = dag_outputs(dag, done)
        failed = [r for r in done.values() if r.state == FAILED]
        return TaskResult(
            name=prefix.rstrip("/") or "root",
            state=state,
            params=outputs_params,
            artifacts=outputs_artifacts,
            message=failed[0].message if failed else "",
            kind="dag",
        )

    def _blocked(self, task: TaskSpec, ups: set[str], done: dict[str, TaskResult]) -> str:
        if task.get("triggerPolicy", {}).get("strategy") == "ALL_UPSTREAM_TASKS_COMPLETED":
            return ""
        bad = sorted(u for u in ups if done[u].state in (FAILED, NOT_RUN))
        return f"upstream task {bad[0]} failed" if bad else ""

    def _not_run(self, qname: str, task: TaskSpec, reason: str) -> TaskResult:
        return self._skipped(qname, self.doc.components[task["componentRef"]["name"]], reason, state=NOT_RUN)

    def _add(self, result: TaskResult) -> TaskResult:
        with self._results_lock:
            self.results.append(result)
        return result

    def _run_task_safely(
        self,
        name: str,
        task: TaskSpec,
        dag_params: Values,
        dag_artifacts: Artifacts,
        done: dict[str, TaskResult],
        prefix: str,
    ) -> TaskResult:
        try:
            return self._run_task(name, task, dag_params, dag_artifacts, done, prefix)
        except Exception as err:  # noqa: BLE001 - one task's bug must not hide the others
            message = redact(f"{type(err).__name__}: {err}")
            self.echo(f"  {prefix}{name}: FAILED: {message}")
            return self._add(TaskResult(name=f"{prefix}{name}", state=FAILED, message=message))

    def _run_task(
        self,
        name: str,
        task: TaskSpec,
        dag_params: Values,
        dag_artifacts: Artifacts,
        done: dict[str, TaskResult],
        prefix: str,
    ) -> TaskResult:
        qname = f"{prefix}{name}"
        component = self.doc.components[task["componentRef"]["name"]]
        params, artifacts, missing = resolve_inputs(
            task,
            dag_params,
            dag_artifacts,
            done,
            qname=qname,
            pipeline_name=self.doc.name,
            run_id=self.run_id,
        )
        condition = task.get("triggerPolicy", {}).get("condition")
        if condition and not missing:
            try:
                ok = cel.evaluate(condition, params)
            except Exception as err:  # noqa: BLE001 - report as a task failure with the condition
                raise PipelineSpecError(f"cannot evaluate condition {condition!r}: {err}") from None
            if not ok:
                return self._skipped(qname, component, f"condition false: {readable(condition)}")
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
            return self._add(
                run_importer(
                    self.store,
                    self._identity(qname),
                    executor["importer"],
                    params,
                    remote=self.remote,
                    echo=self.echo,
                )
            )
        return self._add(
            self.containers.run(qname, task, component, executor["container"], params, artifacts)
        )

    def _skipped(self, qname: str, component: ComponentSpec, reason: str, state: str = SKIPPED) -> TaskResult:
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

    def _add_skipped_inside(self, component: ComponentSpec, prefix: str, reason: str, state: str) -> None:
        for inner, task in component["dag"].get("tasks", {}).items():
            child = self.doc.components[task["componentRef"]["name"]]
            if "dag" in child:
                self._add_skipped_inside(child, f"{prefix}{inner}/", reason, state)
            else:
                self._add(TaskResult(name=f"{prefix}{inner}", state=state, message=reason, kind="container"))

    def _run_loop(
        self,
        qname: str,
        task: TaskSpec,
        component: ComponentSpec,
        params: Values,
        artifacts: Artifacts,
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
        collected_params: Values = {}
        collected_artifacts: Artifacts = {}
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
