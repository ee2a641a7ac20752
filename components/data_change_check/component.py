"""data_change_check's KFP interface: has the data changed since the last run that trained?"""

from typing import NamedTuple

from kfp.dsl import Dataset, Input

from kubetfx.dsl import component


@component
def data_change_check(
    examples: Input[Dataset],
    force: bool = False,
) -> NamedTuple("Outputs", [("changed", bool), ("previous_run", str), ("reason", str)]):
    """Tells whether the data differs from what the last finished training run used.

    Compares the content ``fingerprint`` ExampleGen recorded on ``examples`` with the
    one on the Examples evaluated by the last run of the same pipeline that trained and
    finished (its Evaluator completed and, when it blessed, its Pusher completed), found
    in ML Metadata. Runs that failed or stopped before the Evaluator do not count. With
    lineage off or no such run, the data counts as changed. Never cache it: its answer
    depends on the lineage written since.

    Args:
        examples: Examples from ExampleGen (``fingerprint`` and ``span`` in metadata).
        force: Report a change whatever the data (retrain on purpose).

    Returns:
        changed: False only when the fingerprints are equal; gate training on it.
        previous_run: The run compared with (empty when none).
        reason: One line: ``changed: ...``, ``unchanged: ...`` or ``forced: ...``.
    """
    import os

    from kubetfx.components.data_change_check import executor

    from kubetfx.task import ENV_RUN, lineage_store, pipeline_name

    result = executor.run(
        examples.metadata,
        examples.uri,
        store=lineage_store(),
        pipeline_name=pipeline_name(),
        run_id=os.environ.get(ENV_RUN, ""),
        force=force,
    )
    print(f"data_change_check: {result.reason}")
    outputs = NamedTuple("Outputs", [("changed", bool), ("previous_run", str), ("reason", str)])
    return outputs(result.changed, result.previous_run, result.reason)
