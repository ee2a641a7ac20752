"""serving_drift's KFP interface: the typed signature is the spec; the body calls the executor."""

from typing import NamedTuple

from kfp.dsl import HTML, Artifact, Output

from kubetfx.dsl import component


@component
def serving_drift(
    drift: Output[Artifact],
    report: Output[HTML],
    logs_uri: str = "",
    model_name: str = "model",
    window: str = "",
    log_format: str = "auto",
    psi_threshold: float = 0.2,
    linf_threshold: float = 0.25,
    js_threshold: float = 0.3,
    min_requests: int = 30,
    force: bool = False,
) -> NamedTuple("Outputs", [("drifted", bool), ("retrain", bool), ("reason", str)]):
    """Compares a window of serving request logs with the served model's training data.

    The served model (the newest push of ``model_name``, rollbacks included), its training
    statistics and schema, and its evaluation are found in ML Metadata. Per feature: TFDV's
    L-infinity (categorical) or Jensen-Shannon (numeric) distance and the PSI; the
    predicted classes against the evaluation's; anomalies against the schema's SERVING
    environment. Never cache it: its answer depends on the logs and lineage written since.

    Args:
        drift: Output ServingDrift: ``serving_drift.json``, the same as its metadata.
        report: Output HTML report: distances per feature, predictions, anomalies.
        logs_uri: A file, folder or glob of request logs (local or object store); empty: off.
        model_name: The name the model is pushed and served under.
        window: ``""`` every logged request, ``"1000"`` the newest 1000, ``"24h"`` those
            logged in the 24 hours before the newest one (``s``, ``m``, ``h``, ``d``).
        log_format: ``auto``, ``kserve`` (JSON lines of CloudEvents) or ``tfserving``
            (TFRecords of PredictionLog).
        psi_threshold: A feature whose PSI is over it drifted.
        linf_threshold: A categorical feature (or the predictions) whose L-infinity
            distance is over it drifted.
        js_threshold: A numeric feature whose Jensen-Shannon distance is over it drifted.
        min_requests: Fewer rows in the window measure nothing and raise no alarm.
        force: Say ``retrain`` whatever the traffic (retrain on purpose).

    Returns:
        drifted: True when a feature or the predictions drifted past a threshold.
        retrain: ``drifted or force``: gate retraining on it.
        reason: One line: ``drifted: ...``, ``no drift: ...``, ``too few requests: ...``,
            ``off: ...`` or ``not measured: ...``.
    """
    from kubetfx.components.serving_drift import executor, report_html

    from kubetfx.reports import write_report
    from kubetfx.task import lineage_store

    thresholds = executor.Thresholds(psi_threshold, linf_threshold, js_threshold, min_requests)
    store = lineage_store()
    result = executor.check(
        logs_uri,
        model_name,
        drift.path,
        store=store,
        thresholds=thresholds,
        window=window,
        log_format=log_format,
    )
    drift.metadata.update(result.metadata())
    write_report(report, report_html.render(result))
    print(f"serving_drift: {result.reason}")
    outputs = NamedTuple("Outputs", [("drifted", bool), ("retrain", bool), ("reason", str)])
    return outputs(result.drifted, result.drifted or force, result.reason)
