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

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kubetfx.staging import discard, publish, stage_outputs, unstage_uris

if TYPE_CHECKING:
    from kubetfx.lineage.record import ArtifactRecord, Identity
    from kubetfx.lineage.store import Store

Records = dict[str, list["ArtifactRecord"]]


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

    def fail(self, execution_id: int, message: str) -> None:
        """FAILED, with the reason."""
        from kubetfx.lineage.record import fail_execution

        fail_execution(self.store, execution_id, message)


class TaskLifecycle:
    """One attempt of one task: its staged outputs and its execution (see the module docstring).

    ``recorder`` is None when lineage is off: the outputs are still staged and published.
    """

    def __init__(self, executor_input: dict[str, Any], recorder: Recorder | None) -> None:
        self.executor_input = executor_input
        self.recorder = recorder
        self.staged: dict[str, str] = {}
        self.execution_id: int | None = None

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
        """Remove what was staged and record the execution FAILED with ``message``."""
        discard(self.staged)
        if self.recorder is not None and self.execution_id:
            self.recorder.fail(self.execution_id, message)

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
        if self.recorder is None or not self.execution_id:
            return {}
        return self.recorder.finish(self.execution_id, outputs, output_params, extra)
