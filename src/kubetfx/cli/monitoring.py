"""``kubetfx serving-drift``: serving traffic against the served model's training data."""

from __future__ import annotations

import click

from kubetfx.cli.options import metadata_option
from kubetfx.cli.store import existing_store


@click.command("serving-drift")
@click.argument("logs_uri")
@click.option(
    "--model", "model_name", required=True, help="The served model's name (as the Pusher pushed it)."
)
@click.option(
    "--window", default="", help="Newest N requests (e.g. 5000) or a time span (e.g. 24h); all by default."
)
@click.option(
    "--format",
    "log_format",
    type=click.Choice(["auto", "kserve", "tfserving"]),
    default="auto",
    show_default=True,
    help="KServe CloudEvents (JSON lines) or TF Serving PredictionLog (TFRecords).",
)
@click.option("--psi-threshold", type=float, default=0.2, show_default=True)
@click.option("--linf-threshold", type=float, default=0.25, show_default=True)
@click.option("--js-threshold", type=float, default=0.3, show_default=True)
@click.option(
    "--min-requests",
    type=int,
    default=30,
    show_default=True,
    help="Fewer measure nothing and raise no alarm.",
)
@click.option(
    "--out",
    "output_dir",
    type=click.Path(file_okay=False),
    default="serving-drift",
    show_default=True,
    help="Folder for serving_drift.json and report.html.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--fail-on-drift", is_flag=True, help="Exit with status 1 when the traffic drifted.")
@metadata_option
def serving_drift(
    logs_uri: str,
    model_name: str,
    window: str,
    log_format: str,
    psi_threshold: float,
    linf_threshold: float,
    js_threshold: float,
    min_requests: int,
    output_dir: str,
    as_json: bool,
    fail_on_drift: bool,
    metadata: str | None,
) -> None:
    """Drift of serving traffic (request logs at LOGS_URI: a file, folder or glob, local or
    in an object store) from the training data of the model being served, found in lineage."""
    import os
    import warnings

    from kubetfx.taskenv import quiet_tensorflow

    quiet_tensorflow()  # before TFDV imports TensorFlow: its start-up lines say nothing here
    warnings.filterwarnings("ignore", category=FutureWarning, module="google.api_core")
    from kubetfx.components.serving_drift import executor

    os.makedirs(output_dir, exist_ok=True)
    text, status = executor.command(
        logs_uri,
        model_name,
        store=existing_store(metadata),
        output_dir=output_dir,
        thresholds=executor.Thresholds(psi_threshold, linf_threshold, js_threshold, min_requests),
        window=window,
        log_format=log_format,
        as_json=as_json,
        fail_on_drift=fail_on_drift,
    )
    click.echo(text)
    if not as_json:
        click.echo(f"report: {os.path.join(output_dir, 'report.html')}")
    raise SystemExit(status)
