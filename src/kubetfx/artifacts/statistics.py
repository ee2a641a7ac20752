"""The ExampleStatistics artifact: ``Split-<split>/FeatureStats.pb`` (binary
``DatasetFeatureStatisticsList``, TFX's layout), read and written."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from kubetfx.artifacts.layout import SPLIT_PREFIX, STATISTICS_FILE, split_dir, split_of, train_first
from kubetfx.errors import InputDataError


def path(statistics_dir: str, split: str) -> str:
    """Where one split's statistics are."""
    return os.path.join(split_dir(statistics_dir, split), STATISTICS_FILE)


def write(statistics_dir: str, split: str, statistics: Any) -> None:
    """Write one split's statistics (a DatasetFeatureStatisticsList)."""
    target = Path(path(statistics_dir, split))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(statistics.SerializeToString())


def load(statistics_dir: str, split: str) -> Any:
    """Read one split's statistics back."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    found = Path(path(statistics_dir, split))
    if not found.exists():
        raise InputDataError(f"{statistics_dir}: no statistics for split {split!r} ({found.name} missing)")
    return statistics_pb2.DatasetFeatureStatisticsList.FromString(found.read_bytes())


def splits_of(statistics_dir: str) -> list[str]:
    """Splits that have statistics (train first)."""
    return train_first(
        [split_of(p.parent.name) for p in Path(statistics_dir).glob(f"{SPLIT_PREFIX}*/{STATISTICS_FILE}")]
    )
