"""Names of the identity inputs every kubetfx component has (filled from KFP placeholders).

Kept apart from :mod:`kubetfx.dsl` so the task wrapper can use them without importing
kfp's authoring side (which a task runs without, under ``_KFP_RUNTIME``).
"""

PIPELINE_INPUT = "kubetfx_pipeline"
RUN_INPUT = "kubetfx_run_id"
TASK_INPUT = "kubetfx_task"
IDENTITY_INPUTS = (PIPELINE_INPUT, RUN_INPUT, TASK_INPUT)
