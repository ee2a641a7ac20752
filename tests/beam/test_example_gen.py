"""ExampleGen on Beam, with SDK workers in other processes, writes the in-process path's
examples: the same records in the same order per split, the same row counts, columnar
copy, row sources and input fingerprint."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from kubetfx.components.example_gen import beam as example_gen_beam
from kubetfx.components.example_gen import executor as example_gen

from kubetfx.artifacts import examples
from kubetfx.errors import InputDataError


def _canonical(record: bytes) -> bytes:
    """A tf.Example's bytes with its feature map in a fixed order (the encoder writes map
    entries in no fixed order, so equal examples may differ in bytes)."""
    from tensorflow.core.example import example_pb2

    return example_pb2.Example.FromString(record).SerializeToString(deterministic=True)


@pytest.mark.parametrize(
    ("kind", "partition_feature"),
    [("csv", ""), ("parquet", "count")],
    ids=["csv-files", "parquet-row-groups"],
)
def test_beam_path_writes_the_in_process_examples(
    kind: str, partition_feature: str, tables: dict[str, str], worker_pool: list[str], tmp_path: Path
) -> None:
    splits = "train:3,eval:1" if not partition_feature else "train:1,eval:1"
    ours = example_gen.run(
        tables[kind], str(tmp_path / "in"), splits=splits, partition_feature=partition_feature
    )
    theirs = example_gen_beam.run(
        tables[kind],
        str(tmp_path / "beam"),
        splits=splits,
        partition_feature=partition_feature,
        beam_pipeline_args=worker_pool,
    )
    assert theirs.row_counts == ours.row_counts and sum(ours.row_counts.values()) == 3000
    assert all(ours.row_counts.values())
    assert theirs.fingerprint == ours.fingerprint
    assert theirs.columns == ours.columns
    assert theirs.metadata() == ours.metadata()
    shards = sorted(p.name for p in (tmp_path / "beam" / "Split-train").glob("data_tfrecord-*.gz"))
    pieces = 2 if kind == "csv" else 5  # two files; 3000 rows in row groups of 700
    assert len(shards) == pieces and shards[0] == f"data_tfrecord-00000-of-{pieces:05d}.gz"
    assert not (tmp_path / "beam" / example_gen_beam.PARTS_DIR).exists()
    for split in ours.row_counts:
        mine = [_canonical(r) for r in examples.records(str(tmp_path / "in"), split)]
        beam = [_canonical(r) for r in examples.records(str(tmp_path / "beam"), split)]
        assert len(beam) == ours.row_counts[split]
        assert beam == mine, split
        for name in ("data.parquet", "source_rows.parquet"):
            a = pq.read_table(tmp_path / "in" / f"Split-{split}" / name)
            b = pq.read_table(tmp_path / "beam" / f"Split-{split}" / name)
            assert b.equals(a), (split, name)


def test_a_bad_row_read_by_a_worker_is_named_by_file_and_line(
    tables: dict[str, str], worker_pool: list[str], tmp_path: Path
) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "a.csv").write_text("x,y\n1,2\n3,4\n")
    (folder / "b.csv").write_text("x,y\n1,2\n3,4,5\n")
    with pytest.raises(InputDataError) as caught:
        example_gen_beam.run(str(folder), str(tmp_path / "out"), beam_pipeline_args=worker_pool)
    # the in-process reader's message, as it is: no runner's wrapping around it
    assert str(caught.value) == (
        f"{folder / 'b.csv'}:3: row has 3 fields but the header has 2;"
        " fix the row (a stray comma or an unquoted field?)"
    )
    assert not list((tmp_path / "out").glob("Split-*"))  # nothing half-written is left
