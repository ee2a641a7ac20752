"""One task's way from start to outcome: stage its outputs, start its execution, then publish
or discard, and record.

The task wrapper (:mod:`kubetfx.task`, in every kubetfx task) and the local runner (for a
plain KFP component, which has no wrapper to do it) both go through
:class:`TaskLifecycle`, so a task's outputs appear at their URIs only on success and its
execution is never COMPLETE without them, whoever runs it::

    life = TaskLifecycle(executor_input, recorder)
    life.start(params, inputs, extra)       # RUNNING, outputs pointed at staging paths
    ... run the executor ...
    life.fail(message)                      # staged outputs removed, FAILED
    # or
    outputs = life.publish(document)        # staged outputs renamed into place
    ids = life.record(outputs, output_params)   # outputs and COMPLETE, one transaction
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from kubetfx.identity import ENV_PIPELINE, ENV_TASK
from kubetfx.staging import discard, publish, stage_outputs, unstage_uris

if TYPE_CHECKING:
    from kubetfx.lineage.record import ArtifactRecord, Identity
    from kubetfx.lineage.store import Store

Records = dict[str, list["ArtifactRecord"]]
# The execution property saying why the task's metrics did not reach the Pushgateway.
METRICS_NOTE = "metrics_push"


class Recorder:
    """Lineage writes for one task: its execution in ``store`` under ``identity``."""

    def __init__(self, store: Store, identity: Identity) -> None:
        self.store = store
        self.identity = identity

    def start(
        self, params: Mapping[str, Any], inputs: Records, extra: Mapping[str, Any] | None = None
    ) -> int:
        """The execution, RUNNING with its inputs; its id."""
        from kubetfx.lineage.record import start_execution

        return start_execution(self.store, self.identity, params=params, inputs=inputs, extra=extra)

    def finish(
        self,
        execution_id: int,
        outputs: Records,
        output_params: Mapping[str, Any],
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, list[int]]:
        """Outputs and COMPLETE in one transaction; the output artifacts' ids by key."""
        from kubetfx.lineage.record import finish_execution

        return finish_execution(
            self.store,
            self.identity,
            execution_id,
            outputs=outputs,
            output_params=dict(output_params),
            extra=extra,
        )

    def fail(self, execution_id: int, message: str, extra: Mapping[str, Any] | None = None) -> None:
        """FAILED, with the reason."""
        from kubetfx.lineage.record import fail_execution

        fail_execution(self.store, execution_id, message, extra)

    def published(self, execution_id: int) -> list[dict[str, Any]]:
        """The metadata of what the execution recorded as its outputs so far (a task that
        publishes before it fails, as the ExampleValidator does)."""
        from kubetfx.lineage.record import outputs_of, props

        return [props(a) for artifacts in outputs_of(self.store, execution_id).values() for a in artifacts]


class TaskLifecycle:
    """One attempt of one task: its staged outputs and its execution (see the module docstring).

    ``recorder`` is None when lineage is off: the outputs are still staged and published.
    """

    def __init__(self, executor_input: dict[str, Any], recorder: Recorder | None) -> None:
        self.executor_input = executor_input
        self.recorder = recorder
        self.staged: dict[str, str] = {}
        self.execution_id: int | None = None
        self.started = time.time()

    def start(
        self, params: Mapping[str, Any], inputs: Records, extra: Mapping[str, Any] | None = None
    ) -> int | None:
        """Record the execution RUNNING (if lineage is on); the execution's id or None.

        The outputs are not staged yet: see :meth:`stage`.
        """
        if self.recorder is not None:
            self.execution_id = self.recorder.start(params, inputs, extra)
        return self.execution_id

    def stage(self) -> dict[str, str]:
        """Point the local outputs of the executor input at staging paths (in place), so a
        kill never leaves a half-written artifact at its URI; staging -> final path."""
        self.staged = stage_outputs(self.executor_input)
        return self.staged

    def fail(self, message: str) -> None:
        """Remove what was staged, push the outcome's metrics, and record the execution
        FAILED with ``message``."""
        discard(self.staged)
        published: list[dict[str, Any]] = []
        if self.recorder is not None and self.execution_id:
            try:
                published = self.recorder.published(self.execution_id)
            except Exception:  # noqa: BLE001 - metrics never stand in the way of the record
                published = []
        note = self.push_metrics(succeeded=False, outputs=published)
        if self.recorder is not None and self.execution_id:
            self.recorder.fail(self.execution_id, message, {METRICS_NOTE: note or None})

    def publish(self, document: dict[str, Any]) -> Records:
        """Rename the staged outputs into place, point ``document`` (the executor output) at
        their final URIs, and return the output artifacts as lineage records."""
        from kubetfx.lineage.record import output_records

        unstage_uris(document, self.staged)
        publish(self.staged)
        return output_records(self.executor_input, document, self.staged)

    def record(
        self, outputs: Records, output_params: Mapping[str, Any], extra: Mapping[str, Any] | None = None
    ) -> dict[str, list[int]]:
        """Outputs and COMPLETE (if lineage is on); the output artifacts' ids by key."""
        note = self.push_metrics(
            succeeded=True, outputs=[r.metadata for records in outputs.values() for r in records]
        )
        if note:
            extra = {**(extra or {}), METRICS_NOTE: note}
        if self.recorder is None or not self.execution_id:
            return {}
        return self.recorder.finish(self.execution_id, outputs, output_params, extra)

    def push_metrics(self, *, succeeded: bool, outputs: Sequence[Mapping[str, Any]]) -> str:
        """Push the task's metrics to the Pushgateway, if one is set (:mod:`kubetfx.metrics`);
        "" when pushed or off, else why not, which is also printed as a warning. Never raises:
        a Pushgateway that is down or slow never fails a task."""
        from kubetfx import metrics

        if not metrics.gateway_from_env():
            return ""
        if self.recorder is not None:
            pipeline, task = self.recorder.identity.pipeline_name, self.recorder.identity.task_name
        else:
            pipeline, task = os.environ.get(ENV_PIPELINE, ""), os.environ.get(ENV_TASK, "")
        ended = time.time()
        try:
            note = metrics.push_task(
                pipeline=pipeline,
                task=task,
                succeeded=succeeded,
                seconds=ended - self.started,
                ended=ended,
                outputs=outputs,
                store=self.recorder.store if self.recorder is not None else None,
            )
        except Exception as err:  # noqa: BLE001 - metrics never fail a task
            note = f"metrics not pushed: {type(err).__name__}: {err}"
        if note:
            print(f"kubetfx: warning: {note}", flush=True)
        return note
