"""StatisticsGen reads a split batch by batch: the statistics of many small batches agree
with the one-pass statistics of the whole split (counts, ranges and top values exactly;
means to rounding), and no batch holds more rows than its size allows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from kubetfx.components.statistics_gen import executor as statistics_gen

from kubetfx.artifacts import tabular


def _table(rows: int = 20_000) -> pa.Table:
    rng = np.random.default_rng(7)
    words = np.array(["alpha", "beta", "gamma", "delta", "epsilon"])
    return pa.table(
        {
            "x": pa.array(rng.normal(5, 2, rows), mask=rng.random(rows) < 0.1),
            "n": pa.array(rng.integers(-50, 50, rows)),
            "word": pa.array(
                words[rng.choice(5, rows, p=[0.4, 0.3, 0.15, 0.1, 0.05])], mask=rng.random(rows) < 0.2
            ),
        }
    )


def _features(stats) -> dict:  # noqa: ANN001 - a DatasetFeatureStatisticsList
    return {f.path.step[0]: f for f in stats.datasets[0].features}


@pytest.mark.parametrize("workers", [1, 2])
def test_many_batches_agree_with_one_pass(tmp_path: Path, workers: int) -> None:
    path = tmp_path / "data.parquet"
    pq.write_table(_table(), path, row_group_size=3000)
    whole = statistics_gen.statistics_of_columnar(str(path), "train", workers=workers)
    # About 16 KB of column data a batch: some 20 batches.
    batched = statistics_gen.statistics_of_columnar(str(path), "train", workers=workers, batch_mb=1 / 64)
    assert batched.datasets[0].num_examples == whole.datasets[0].num_examples == 20_000
    ours, theirs = _features(batched), _features(whole)
    assert list(ours) == list(theirs) == ["x", "n", "word"]
    for name in ("x", "n"):
        a, b = ours[name].num_stats, theirs[name].num_stats
        assert a.common_stats.num_non_missing == b.common_stats.num_non_missing
        assert a.common_stats.num_missing == b.common_stats.num_missing
        assert (a.min, a.max, a.num_zeros) == (b.min, b.max, b.num_zeros)
        assert a.mean == pytest.approx(b.mean, rel=1e-9) and a.std_dev == pytest.approx(b.std_dev, rel=1e-9)
    a, b = ours["word"].string_stats, theirs["word"].string_stats
    assert a.common_stats.num_non_missing == b.common_stats.num_non_missing
    assert a.unique == b.unique == 5
    assert [(v.value, v.frequency) for v in a.top_values] == [(v.value, v.frequency) for v in b.top_values]


def test_a_column_batch_holds_no_more_rows_than_its_size_allows(tmp_path: Path) -> None:
    path = tmp_path / "data.parquet"
    pq.write_table(_table(), path, row_group_size=5000)
    size = 16 * 1024
    row_bytes = pq.ParquetFile(path).metadata.row_group(0).total_byte_size / 5000
    seen = 0
    for table in statistics_gen.read_column_batches(str(path), ["x", "n", "word"], size):
        assert table.num_rows <= max(1024, size / row_bytes + 1)
        seen += table.num_rows
    assert seen == 20_000


def test_a_serving_sample_read_in_batches_gives_the_whole_table_statistics(tmp_path: Path) -> None:
    path = tmp_path / "serving.csv"
    _table().to_pandas().to_csv(path, index=False)
    whole = statistics_gen.statistics_of_table(tabular.read_table(str(path)), "serving")
    batched = statistics_gen.statistics_of_table(tabular.scan_input(str(path), batch_mb=1 / 32), "serving")
    assert batched.datasets[0].num_examples == whole.datasets[0].num_examples == 20_000
    ours, theirs = _features(batched), _features(whole)
    assert list(ours) == list(theirs)
    assert ours["n"].num_stats.max == theirs["n"].num_stats.max
    assert (
        ours["word"].string_stats.top_values[0].frequency
        == theirs["word"].string_stats.top_values[0].frequency
    )
