"""The ExampleAnomalies artifact: ``Split-<split>/SchemaDiff.pb`` (binary Anomalies, TFX's
layout), ``Serving/SchemaDiff.pb`` when a serving sample was validated, and ``drift.json``
(the ExampleValidator's findings: drift, skew, new and gone features)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from kubetfx.artifacts.layout import ANOMALIES_FILE, DRIFT_FILE, SERVING_ANOMALIES_DIR, split_dir


def write(anomalies_dir: str, split: str, anomalies: Any) -> None:
    """Write one split's Anomalies proto."""
    _write(Path(split_dir(anomalies_dir, split), ANOMALIES_FILE), anomalies)


def write_serving(anomalies_dir: str, anomalies: Any) -> None:
    """Write the serving sample's Anomalies proto."""
    _write(Path(anomalies_dir, SERVING_ANOMALIES_DIR, ANOMALIES_FILE), anomalies)


def write_drift(anomalies_dir: str, findings: dict[str, Any]) -> None:
    """Write ``drift.json``."""
    Path(os.path.join(anomalies_dir, DRIFT_FILE)).write_text(json.dumps(findings, indent=2, sort_keys=True))


def _write(path: Path, anomalies: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(anomalies.SerializeToString())
