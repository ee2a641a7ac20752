"""Lineage in ML Metadata, in the layout the KFP backend writes.

Contexts ``system.Pipeline`` (named by pipeline) and ``system.PipelineRun`` (named by
run id); executions ``system.ContainerExecution`` (``system.ImporterExecution`` for
importers) with KFP's custom properties (``display_name``, ``task_name``, ``image``,
``cache_fingerprint``, ``cached_execution_id``, ``inputs``, ``outputs``); artifacts typed
by their schema titles; INPUT/OUTPUT events whose path is the input or output name.
Source of that layout: ``backend/src/v2/metadata/client.go`` in kubeflow/pipelines.

What the operator's commands show (drift table, a dataset's impact, push history) is
computed in :mod:`kubetfx.lineage.summaries`; the CLI only formats it.
"""
