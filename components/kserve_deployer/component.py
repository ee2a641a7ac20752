"""kserve_deployer's KFP interface: the typed signature is the spec; the body calls the executor."""

from typing import NamedTuple

from kfp.dsl import Artifact, Input, Output

from kubetfx.dsl import component


@component
def kserve_deployer(
    pushed_model: Input[Artifact],
    deployment: Output[Artifact],
    namespace: str = "",
    prometheus_url: str = "",
    steps: str = "5,25,50,100",
    window: str = "60s",
    interval: str = "10s",
    warmup: str = "30s",
    max_error_rate: float = 0.01,
    max_extra_error_rate: float = 0.01,
    max_p95_ratio: float = 1.5,
    max_p95_extra_ms: float = 100.0,
    min_requests: int = 50,
    max_holds: int = 3,
) -> NamedTuple("Outputs", [("state", str), ("serving", bool), ("version", int)]):
    """Serves the pushed version on KServe, through a stepped canary with automatic rollback.

    The InferenceService (named after the model) is pinned to the exact version folder.
    When none exists it is created; when it serves another version, the new one becomes a
    canary that gets ``steps`` percent of traffic in turn; at each step Prometheus's
    figures for canary and stable (error rate, p95 latency over ``window``) decide: promote,
    or roll back at once (traffic back to the stable version, recorded in lineage, the
    ``KubetfxCanaryRolledBack`` alert). Never cache it: it acts on a cluster.

    Args:
        pushed_model: PushedModel from the Pusher (``model_name``, ``version``, ``destination``).
        deployment: Output record: ``inferenceservice.yaml`` (the manifest aimed at) and
            metadata (state, versions, reason, steps).
        namespace: Where the InferenceService lives; empty: the pipeline pod's namespace.
        prometheus_url: The Prometheus that scrapes Knative's queue-proxy (for a rollout).
        steps: Canary traffic percentages, in order (100 is added when missing).
        window: Analysis window per step (``60s``, ``2m``).
        interval: How often Prometheus is asked during a step.
        warmup: Canary traffic at the first step that is not judged (a new revision's
            first requests load the model); ``0s``: none.
        max_error_rate: A canary failing more than this share (and more than the stable
            by ``max_extra_error_rate``) is rolled back.
        max_extra_error_rate: See ``max_error_rate``.
        max_p95_ratio: A canary whose p95 is over this many times the stable's...
        max_p95_extra_ms: ...and more than this many ms slower is rolled back.
        min_requests: Fewer requests per revision in a window decide nothing.
        max_holds: Windows with too little traffic before the canary is rolled back.

    Returns:
        state: ``deployed``, ``unchanged``, ``promoted``, ``rolled_back`` or ``skipped``.
        serving: Whether the pushed version serves all traffic now.
        version: The pushed version.
    """
    from kubetfx.components.kserve_deployer import executor, outputs

    from kubetfx.serving.rollout import RolloutSettings, Thresholds, parse_seconds
    from kubetfx.task import lineage_store

    settings = RolloutSettings(
        steps=[int(s) for s in steps.split(",")],
        window_s=parse_seconds(window),
        interval_s=parse_seconds(interval),
        max_holds=max_holds,
        warmup_s=parse_seconds(warmup, allow_zero=True),
        thresholds=Thresholds(
            max_error_rate, max_extra_error_rate, max_p95_ratio, max_p95_extra_ms, min_requests
        ),
    )
    result = executor.deploy(
        dict(pushed_model.metadata),
        deployment.path,
        namespace=executor.current_namespace(namespace),
        prometheus_url=prometheus_url,
        settings=settings,
        store=lineage_store(),
    )
    deployment.metadata.update(outputs.artifact_metadata(result))
    print(f"kserve_deployer: {result.state}: {result.reason}")
    results = NamedTuple("Outputs", [("state", str), ("serving", bool), ("version", int)])
    return results(*outputs.parameters(result))
