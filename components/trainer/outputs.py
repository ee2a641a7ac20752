"""The Trainer's parameters and results as Kubeflow Pipelines hands them over: the
built-in model's hyper-parameters from the component's parameters, and the Model
artifact's metadata, the HTML report, the UI's metrics and the output parameters from a
:class:`~.executor.TrainResult`. The component's body calls these; tests call them with
plain ``kfp.dsl`` artifacts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kubetfx.components.trainer.executor import TrainResult
from kubetfx.components.trainer.report import training_html

from kubetfx.reports import write_report


def hyperparameters(
    *,
    module_file: str,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    hidden_units: Sequence[Any],
    dropout: float,
    seed: int,
    patience: int = 5,
    min_delta: float = 0.0,
    validation_fraction: float = 0.1,
    steps_per_execution: int = 0,
) -> dict[str, Any]:
    """The built-in model's hyper-parameters; none with a ``module_file``, whose ``run_fn``
    takes its own from ``custom_config``."""
    if module_file:
        return {}
    return {
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "hidden_units": [int(u) for u in hidden_units],
        "dropout": dropout,
        "seed": seed,
        "patience": patience,
        "min_delta": min_delta,
        "validation_fraction": validation_fraction,
        "steps_per_execution": steps_per_execution,
    }


def publish(
    result: TrainResult, *, model: Any, report: Any, metrics: Any, label_key: str
) -> tuple[float, str, str, int, str]:
    """Fill the outputs from ``result``; returns (val_accuracy, device, warnings,
    epochs_run, stopped) for the component's output parameters."""
    for warning in result.warnings:
        print(f"trainer: warning: {warning}")
    model.metadata.update(result.metadata())
    write_report(report, training_html(result, f"Training: label {label_key!r}"))
    for name, value in result.metrics.items():
        metrics.log_metric(name, value)
    return (
        float(result.metrics.get("val_accuracy", 0.0)),
        result.device,
        result.short_warnings(),
        result.epochs,
        result.stop_summary,
    )
