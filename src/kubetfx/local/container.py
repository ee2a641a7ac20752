"""One container task of a local run: its cache key and hit, its attempts, and each attempt's
lifecycle, launch and launcher downloads and uploads.

:class:`ContainerTasks` holds what the tasks of one run share (the store, the cache, the
launcher, the run's names and folders); :meth:`ContainerTasks.run` runs one task the way
the KFP backend would (reuse a cached execution, else up to ``retryPolicy`` attempts).
A kubetfx task records its own lineage and stages its own outputs
(:mod:`kubetfx.task`); for a plain KFP component this module does both, through the
same :class:`kubetfx.lifecycle.TaskLifecycle`.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from kubetfx import storage
from kubetfx.errors import PipelineSpecError
from kubetfx.identity import IDENTITY_INPUTS
from kubetfx.lifecycle import Recorder, TaskLifecycle
from kubetfx.local import executor_input
from kubetfx.local.cache import Cache, cache_key
from kubetfx.local.dag import retry_delay
from kubetfx.local.executor_input import ContainerSpec, ExecutorInput, lineage_records, runs_kubetfx_task
from kubetfx.local.ir import ComponentSpec, PlatformExecutor, TaskSpec, Values
from kubetfx.local.launch import (
    Launch,
    Launcher,
    ProcessLauncher,
    command_line,
    failure_message,
    shared_environment,
)
from kubetfx.local.pod import Pod
from kubetfx.local.results import CACHED, FAILED, SUCCEEDED, Artifacts, TaskResult
from kubetfx.local.spec import PipelineDoc
from kubetfx.settings import redact, resolve_push_roots
from kubetfx.taskenv import TaskEnv

if TYPE_CHECKING:
    from kubetfx.lineage.record import Identity
    from kubetfx.lineage.store import Store


class ContainerTasks:
    """Runs the container tasks of one run (see the module docstring)."""

    def __init__(
        self,
        doc: PipelineDoc,
        *,
        store: Store,
        metadata_url: str,
        pipeline_root: str,
        run_id: str,
        run_root: str,
        log_root: str,
        use_cache: bool,
        launcher: Launcher,
        max_parallel: int,
        echo: Callable[[str], None],
        identity: Callable[[str], Identity],
        task_env: dict[str, str],
        environ: dict[str, str] | None = None,
    ) -> None:
        self.doc = doc
        self.pipeline_name = doc.name
        self.store = store
        self.metadata_url = metadata_url
        self.pipeline_root = pipeline_root
        self.run_id = run_id
        self.run_root = run_root
        self.log_root = log_root  # object-store mode: where the runner keeps the task logs
        self.remote = storage.is_remote(pipeline_root)
        self.use_cache = use_cache
        self.cache = Cache(store, remote=self.remote, echo=echo)
        self.launcher = launcher  # for kubetfx tasks; plain KFP commands run as plain processes
        self.slots = threading.Semaphore(max_parallel)
        self.echo = echo
        self.identity = identity  # a task's lineage identity (the run's scope may change)
        self.task_env = task_env  # extra variables for every task
        # The environment tasks start from: the runner's as it was when the run began, not
        # as libraries the runner imports during the run leave it (numpy sets OpenBLAS
        # variables when imported), so every task of a run gets the same, whatever ran
        # first (the warm worker serving a task is chosen by its environment).
        self.environ = dict(os.environ if environ is None else environ)

    def _task_root(self, qname: str) -> str:
        return os.path.join(self.run_root, *qname.split("/"))

    def _executor_input(
        self,
        qname: str,
        component: ComponentSpec,
        params: Values,
        artifacts: Artifacts,
        pod: Pod | None,
    ) -> ExecutorInput:
        if pod is None:
            inner = os.path.join(self._task_root(qname), ".kubetfx")
            paths: executor_input.Paths = {
                "root": self._task_root(qname),
                "parameters": os.path.join(inner, "outputs"),
                "output_file": os.path.join(inner, "executor_output.json"),
            }
        else:
            # As KFP's driver and launcher: outputs at ROOT/PIPELINE/RUN/TASK/SALT/KEY, the
            # parameter files and executor output in the pod's own /tmp.
            paths = pod.paths(storage.join(self.run_root, qname.rsplit("/", 1)[-1], uuid.uuid4().hex))
        return executor_input.build(component, params, artifacts, paths)

    def _new_pod(self, qname: str) -> Pod | None:
        """Object-store mode: a task's own folder, in place of a pod's filesystem."""
        return Pod(qname.rsplit("/", 1)[-1]) if self.remote else None

    def run(
        self,
        qname: str,
        task: TaskSpec,
        component: ComponentSpec,
        container: ContainerSpec,
        params: Values,
        artifacts: Artifacts,
    ) -> TaskResult:
        """Run task ``qname`` as the KFP backend would: reuse a cached execution with the
        same key if caching is on, else attempt it (again, under its retry policy)."""
        started = time.monotonic()
        # The key holds no output URI: the executor input of any attempt gives the same.
        inputs = self._executor_input(qname, component, params, artifacts, None)
        key = cache_key(container, inputs, artifacts)
        user_params = {
            k: redact(v) if isinstance(v, str) else v
            for k, v in inputs["inputs"]["parameterValues"].items()
            if k not in IDENTITY_INPUTS
        }
        # The compiler writes ``cachingOptions: {}`` for set_caching_options(False): a
        # missing enableCache is false, as in the backend's proto.
        if self.use_cache and task.get("cachingOptions", {}).get("enableCache", False):
            cached = self._reuse(qname, key, user_params, artifacts, started)
            if cached is not None:
                return cached
        policy = task.get("retryPolicy", {})
        retries = int(policy.get("maxRetryCount", 0) or 0)
        attempt = 0
        while True:
            # Every attempt is a new pod: a fresh folder, new output URIs.
            pod = self._new_pod(qname)
            try:
                attempt_input = self._executor_input(qname, component, params, artifacts, pod)
                result = self._execute(
                    qname, task, container, attempt_input, artifacts, key, user_params, pod
                )
            finally:
                if pod is not None:
                    pod.remove()
            if result.state != FAILED or attempt >= retries:
                break
            attempt += 1
            delay = retry_delay(policy, attempt)
            self.echo(f"  {qname}: retry {attempt} of {retries}" + (f" in {delay:g}s" if delay else ""))
            if delay:
                time.sleep(delay)
        result.seconds = time.monotonic() - started
        return result

    def _reuse(
        self, qname: str, key: str, user_params: Values, artifacts: Artifacts, started: float
    ) -> TaskResult | None:
        """A cache hit recorded as this task's CACHED execution, or None."""
        from ml_metadata.proto import metadata_store_pb2 as pb

        from kubetfx.lineage import record

        hit = self.cache.hit(key)
        if hit is None:
            return None
        execution, outputs = hit
        produced = self.cache.artifacts(outputs)
        execution_id = record.record_outcome(
            self.store,
            self.identity(qname),
            state=pb.Execution.CACHED,
            params=user_params,
            inputs=lineage_records(artifacts),
            outputs=lineage_records(produced),
            extra={"cache_fingerprint": key, "cached_execution_id": str(execution.id)},
        )
        self.echo(f"  {qname}: cached (reuses execution {execution.id})")
        return TaskResult(
            name=qname,
            state=CACHED,
            params=record.props(execution).get("outputs") or {},
            artifacts=produced,
            seconds=time.monotonic() - started,
            execution_id=execution_id,
            message=f"reused execution {execution.id}",
        )

    def _task_env(self, qname: str, key: str, state_file: Path, pod: Pod | None) -> TaskEnv:
        return TaskEnv(
            metadata=self.metadata_url,
            pipeline_root=self.pipeline_root,
            push_root=",".join(resolve_push_roots()),
            pipeline_name=self.pipeline_name,
            run_id=self.run_id,
            task_name=qname,
            # The key a kubetfx task records until the launcher has uploaded its outputs.
            cache_key=self.cache.pending(key) or key,
            state_file=str(state_file),
            die_with_runner=True,
            runner_pid=os.getpid(),
            mount_root=pod.path if pod else "",
            tmpdir=pod.tmp if pod else "",
            unbuffered=True,
        )

    def _environment(
        self, env: TaskEnv, task: TaskSpec, container: ContainerSpec, pod: Pod | None
    ) -> dict[str, str]:
        if pod is not None:
            return pod.environment(
                env, container, self._platform(task), source=self.environ, extra=self.task_env
            )
        return {**shared_environment(self.environ, self.task_env, remote=False), **env.to_env()}

    def _platform(self, task: TaskSpec) -> PlatformExecutor:
        """The task's executor config in the Kubernetes platform spec (env from ConfigMaps,
        Secrets and field paths), empty if the pipeline has none."""
        component = self.doc.components[task["componentRef"]["name"]]
        platform = self.doc.platform.get("platforms", {}).get("kubernetes", {}).get("deploymentSpec", {})
        return platform.get("executors", {}).get(component.get("executorLabel", ""), {})

    def _execute(
        self,
        qname: str,
        task: TaskSpec,
        container: ContainerSpec,
        inputs: ExecutorInput,
        artifacts: Artifacts,
        key: str,
        user_params: Values,
        pod: Pod | None,
    ) -> TaskResult:
        """One attempt: lifecycle (plain KFP components), launch, launcher I/O, outcome."""
        from kubetfx.lineage.record import output_records

        wrapped = runs_kubetfx_task(container)
        if pod is not None and not wrapped:
            # KFP's SDK writes such a task's outputs to /minio/..., /s3/... on this machine.
            raise PipelineSpecError(
                f"task {qname}: object-store mode runs kubetfx components (python -m kubetfx.task) "
                "only; this task runs a plain KFP command, which would write to this machine's "
                "/minio, /s3 or /gcs: run it in the default local mode or in a cluster"
            )
        recorder = Recorder(self.store, self.identity(qname))
        life = None
        if not wrapped:
            # A plain KFP component cannot record its own lineage: do it for it, and
            # stage its outputs so a kill never leaves a half-written artifact.
            # The lifecycle points the outputs at staging paths in place, in this very dict.
            life = TaskLifecycle(cast(dict[str, Any], inputs), recorder)
            life.stage()
            life.start(
                user_params,
                lineage_records(artifacts),
                {"cache_fingerprint": key, "image": container.get("image")},
            )
        argv = command_line(
            container,
            inputs,
            pipeline_name=self.pipeline_name,
            task_name=qname,
            pipeline_root=self.pipeline_root,
            run_id=self.run_id,
        )
        if pod is None:
            cwd = self._task_root(qname)
            inner = Path(cwd, ".kubetfx")
            log_path = inner / "log.txt"
        else:
            # The runner keeps the log (as KFP keeps a pod's log); the task sees only its folder.
            cwd, inner = pod.work, pod.inner
            log_path = Path(self.log_root, f"{qname.replace('/', '.')}-{Path(pod.path).name}.log")
            log_path.parent.mkdir(parents=True, exist_ok=True)
            pod.prepare()
        inner.mkdir(parents=True, exist_ok=True)
        state_file = inner / "state.json"
        env = self._environment(self._task_env(qname, key, state_file, pod), task, container, pod)
        if pod is not None:
            try:
                pod.download(qname, inputs)
            except storage.StorageError as err:
                message = redact(f"launcher: {err}")
                self.echo(f"  {qname}: FAILED: {message}")
                return TaskResult(name=qname, state=FAILED, message=message)
        launcher = self.launcher if wrapped else ProcessLauncher()
        with self.slots:
            self.echo(f"  {qname}: running")
            began = time.monotonic()
            returncode = launcher.launch(Launch(argv=argv, env=env, cwd=cwd, log=log_path))
            seconds = time.monotonic() - began
        state = executor_input.read_json(state_file)
        execution_id = state.get("execution_id") if wrapped else life.execution_id if life else None
        if returncode != 0:
            message = failure_message(log_path, returncode, state)
            if life is not None:
                life.fail(message)
            elif execution_id:
                recorder.fail(execution_id, message)
            self.echo(f"  {qname}: FAILED after {seconds:.1f}s: {message}\n    log: {log_path}")
            return TaskResult(
                name=qname,
                state=FAILED,
                message=message,
                seconds=seconds,
                execution_id=execution_id,
                log=str(log_path),
            )
        document = executor_input.read_json(inputs["outputs"]["outputFile"])
        if pod is not None:
            try:
                pod.upload(inputs, document)
            except storage.StorageError as err:
                message = redact(f"launcher: {err}")
                if execution_id:
                    self.cache.abandon(execution_id, message)
                self.echo(f"  {qname}: FAILED: {message}")
                return TaskResult(name=qname, state=FAILED, message=message, execution_id=execution_id)
            if execution_id:
                self.cache.uploaded(execution_id, key)
        records = (
            life.publish(document)
            if life is not None
            else output_records(cast(dict[str, Any], inputs), document, {})
        )
        out_params = executor_input.output_parameters(inputs, document)
        produced = executor_input.output_artifacts(inputs, records)
        ids = life.record(lineage_records(produced), out_params) if life else state.get("artifact_ids", {})
        for output, arts in produced.items():
            for artifact, artifact_id in zip(arts, ids.get(output, []), strict=False):
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
