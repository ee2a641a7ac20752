"""StatisticsGen's in-memory path split over processes by column: the statistics are the
ones TFDV's ``generate_statistics_in_memory`` gives in one pass, byte for byte."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from kubetfx.components.example_gen import executor as example_gen
from kubetfx.components.statistics_gen import executor as statistics_gen

from kubetfx import process
from kubetfx.artifacts import layout
from kubetfx.artifacts.tabular import to_record_batch
from kubetfx.errors import ConfigError
from kubetfx.fingerprint import local_path


def _mixed_table(rows: int = 3000, seed: int = 3, ids: int = 800) -> pa.Table:
    """Numbers with gaps and NaN, integers, booleans, few and many (``ids``) distinct strings
    (some missing, empty or not ASCII), and a column with no values at all.

    Up to 1,024 distinct strings a feature: above that TFDV's top-k sketch (Misra-Gries,
    1,024 buckets) keeps values of equal counts in hash-table order, which differs from
    one call to the next even in one process, so two single passes can differ there.
    """
    rng = np.random.default_rng(seed)
    missing = rng.random(rows) < 0.1
    floats = rng.normal(5, 2, rows)
    floats[rng.random(rows) < 0.05] = np.nan
    floats[:3] = [-0.0, 1e-45, 3.4e38]  # a float32 denormal, near float32's largest
    words = np.array(["", "alpha", "beta", "gamma", "δέλτα", "ε" * 40])
    return pa.table(
        {
            "x": pa.array(floats, mask=missing),
            "n": pa.array(rng.integers(-3, 4, rows), mask=rng.random(rows) < 0.2),
            "f32": pa.array(rng.normal(0, 1, rows).astype(np.float32), mask=rng.random(rows) < 0.3),
            "word": pa.array(words[rng.integers(0, len(words), rows)], mask=rng.random(rows) < 0.15),
            "flag": pa.array(rng.random(rows) < 0.3),
            "id": pa.array([f"id-{k}-{k * 7919 % 104729}" for k in rng.integers(0, ids, rows)]),
            "zero": pa.array(np.zeros(rows)),
            "empty": pa.array([None] * rows, type=pa.string()),
            "code": pa.array(words[rng.integers(0, 3, rows)]),
        }
    )


def _single_pass(parquet: Path, name: str) -> bytes:
    """What StatisticsGen wrote before: TFDV's one-pass in-memory statistics of the whole copy."""
    from tensorflow_data_validation.statistics import stats_impl

    batch = to_record_batch(pq.read_table(parquet))
    stats = stats_impl.generate_statistics_in_memory(batch, statistics_gen.stats_options())
    stats.datasets[0].name = name
    return stats.SerializeToString()


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("parallel")
    pq.write_table(_mixed_table(), root / "mixed.parquet")
    example_gen.run(str(root / "mixed.parquet"), str(root / "examples"))
    return root / "examples"


@pytest.mark.parametrize("workers", [1, 2, 3, 8])
def test_columns_over_processes_give_the_single_pass_bytes(examples: Path, workers: int) -> None:
    parquet = examples / "Split-train" / layout.COLUMNAR_FILE
    stats = statistics_gen.statistics_of_columnar(str(parquet), "train", workers=workers)
    assert stats.SerializeToString() == _single_pass(parquet, "train")
    assert [f.path.step[0] for f in stats.datasets[0].features] == pq.read_schema(parquet).names


def test_sampled_rows_are_the_same_in_every_process(examples: Path) -> None:
    parquet = str(examples / "Split-train" / layout.COLUMNAR_FILE)
    one = statistics_gen.statistics_of_columnar(parquet, "train", 0.4, workers=1)
    two = statistics_gen.statistics_of_columnar(parquet, "train", 0.4, workers=3)
    assert one.SerializeToString() == two.SerializeToString()
    assert 0.3 < one.datasets[0].num_examples / pq.ParquetFile(parquet).metadata.num_rows < 0.5


def test_run_on_penguins_writes_the_same_files_with_one_or_two_processes(tmp_path: Path) -> None:
    frame = pd.read_csv(local_path("pkg://palmerpenguins/data/penguins.csv"), keep_default_na=False)
    frame.to_csv(tmp_path / "p.csv", index=False)
    example_gen.run(str(tmp_path / "p.csv"), str(tmp_path / "ex"))
    one = statistics_gen.run(str(tmp_path / "ex"), str(tmp_path / "one"), workers=1)
    two = statistics_gen.run(str(tmp_path / "ex"), str(tmp_path / "two"), workers=2)
    assert one.path == two.path == {s: "in-memory (columnar copy)" for s in ("train", "eval")}
    for split in ("train", "eval"):
        written = (tmp_path / "two" / f"Split-{split}" / layout.STATISTICS_FILE).read_bytes()
        assert written == (tmp_path / "one" / f"Split-{split}" / layout.STATISTICS_FILE).read_bytes()
        assert written == _single_pass(tmp_path / "ex" / f"Split-{split}" / layout.COLUMNAR_FILE, split)


def test_decoded_tfrecords_and_tables_also_split_by_column(examples: Path, tmp_path: Path) -> None:
    from kubetfx.artifacts.examples import split_files
    from kubetfx.tfrecord import read_tfrecord_gz

    records = [r for f in split_files(str(examples), "eval") for r in read_tfrecord_gz(f)]
    one = statistics_gen.statistics_in_memory(records, "eval", workers=1).SerializeToString()
    assert statistics_gen.statistics_in_memory(records, "eval", workers=3).SerializeToString() == one
    table = _mixed_table(500)
    one = statistics_gen.statistics_of_table(table, "serving", workers=1).SerializeToString()
    assert statistics_gen.statistics_of_table(table, "serving", workers=4).SerializeToString() == one


def test_dictionary_read_gives_the_arrays_of_a_plain_read(tmp_path: Path) -> None:
    table = _mixed_table(5000, seed=11, ids=5000)
    path = tmp_path / "groups.parquet"
    # Several row groups, so several dictionaries per column; a small dictionary page
    # limit makes the many-valued "id" fall back to plain pages.
    pq.write_table(table, path, row_group_size=1200, dictionary_pagesize_limit=4096)
    parquet = pq.ParquetFile(path)
    names = parquet.schema_arrow.names
    encoded = {n for n in names if statistics_gen._dictionary_encoded(parquet, names.index(n))}
    assert {"word", "code"} <= encoded and "id" not in encoded
    read = statistics_gen.read_columns(str(path), names)
    assert pa.types.is_dictionary(read.schema.field("word").type)
    expected = to_record_batch(pq.read_table(path))
    assert to_record_batch(read, shortcuts=True).equals(expected)
    # and a table that came from anywhere with a dictionary column
    word = table.schema.get_field_index("word")
    anywhere = table.set_column(word, "word", table.column("word").dictionary_encode())
    assert to_record_batch(anywhere, shortcuts=True).equals(to_record_batch(table))


def _list_column(rng: np.random.Generator, values: list[bytes], rows: int, nulls: bool = False) -> pa.Array:
    """Lists of 0-3 of ``values``; with ``nulls``, some examples without the feature (null
    lists, as decoded tf.Examples have)."""
    lengths = rng.integers(0, 4, rows)
    missing = rng.random(rows) < (0.2 if nulls else 0.0)
    lengths[missing] = 0
    ends = np.cumsum(lengths)
    offsets = pa.array(np.concatenate([[0], ends]), mask=np.concatenate([missing, [False]]))
    flat = pa.array([values[i] for i in rng.integers(0, len(values), int(ends[-1]))], pa.large_binary())
    return pa.LargeListArray.from_arrays(offsets, flat)


def test_top_k_from_counts_gives_tfdvs_bytes() -> None:
    """Distinct values with counts into TFDV's top-k and uniques sketches: the proto TFDV's
    ``generate_statistics_in_memory`` gives, with multi-valued and missing features,
    strings TFDV replaces (not UTF-8, over 1,024 bytes), and either side of the sketch's
    1,024 buckets; the features that cannot be counted go the usual way."""
    from tensorflow_data_validation.statistics import stats_impl
    from tensorflow_data_validation.statistics.generators import top_k_uniques_sketch_stats_generator as topk

    rng = np.random.default_rng(5)
    short = [b"a", b"", "é".encode(), b"\xff\xfe", b"z" * 1023]
    long = [*short, b"x" * 2000, b"y" * 1500, b"z" * 1024]
    rows = 6000
    batch = pa.RecordBatch.from_arrays(
        [
            _list_column(rng, short, rows),
            _list_column(rng, long, rows, nulls=True),
            _list_column(rng, [b"v%d" % i for i in range(1023)], rows),
            _list_column(rng, [b"w%d" % i for i in range(1024)], rows),
            pa.LargeListArray.from_arrays(pa.array(np.arange(rows + 1)), pa.array(rng.normal(size=rows))),
        ],
        ["short", "long", "k1023", "k1024", "number"],
    )
    expected = stats_impl.generate_statistics_in_memory(batch, statistics_gen.stats_options())
    assert statistics_gen._tfdv_statistics(batch).SerializeToString() == expected.SerializeToString()
    generator = next(
        g
        for g in stats_impl.get_generators(statistics_gen.stats_options(), in_memory=True)
        if isinstance(g, topk.TopKUniquesSketchStatsGenerator)
    )
    generator.__class__ = statistics_gen._top_k_uniques_from_counts()
    counted = [generator._distinct_values_and_counts(batch.column(i)) is not None for i in range(5)]
    assert counted == [True, False, True, False, False]  # long values, 1,024 distinct, numbers


def _in_children(monkeypatch: pytest.MonkeyPatch, misbehave) -> None:
    """Make every forked statistics worker call ``misbehave()`` before its work."""
    parent = os.getpid()
    tfdv_statistics = statistics_gen._tfdv_statistics

    def statistics(batch):
        if os.getpid() != parent:
            misbehave()
        return tfdv_statistics(batch)

    monkeypatch.setattr(statistics_gen, "_tfdv_statistics", statistics)


def test_a_failed_worker_changes_nothing_but_the_time(
    examples: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture
) -> None:
    parquet = examples / "Split-train" / layout.COLUMNAR_FILE

    def out_of_memory() -> None:
        raise MemoryError("a worker ran out of memory")

    _in_children(monkeypatch, out_of_memory)
    stats = statistics_gen.statistics_of_columnar(str(parquet), "train", workers=3)
    assert stats.SerializeToString() == _single_pass(parquet, "train")
    err = capfd.readouterr().err
    assert "MemoryError: a worker ran out of memory" in err
    assert err.count("computing them in this process") == 2


def test_a_hung_worker_is_killed_and_its_columns_computed_here(
    examples: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture
) -> None:
    parquet = examples / "Split-train" / layout.COLUMNAR_FILE
    _in_children(monkeypatch, lambda: time.sleep(600))
    monkeypatch.setattr(process, "HANG_SECONDS", 1.0)
    monkeypatch.setattr(process, "HANG_FACTOR", 0.0)
    started = time.monotonic()
    stats = statistics_gen.statistics_of_columnar(str(parquet), "train", workers=2)
    assert time.monotonic() - started < 60
    assert stats.SerializeToString() == _single_pass(parquet, "train")
    err = capfd.readouterr().err
    pid = int(err.split("statistics worker ")[1].split()[0])
    with pytest.raises(ProcessLookupError):  # killed and reaped: no zombie left
        os.kill(pid, 0)


def test_no_process_to_be_had_computes_here(
    examples: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture
) -> None:
    parquet = examples / "Split-train" / layout.COLUMNAR_FILE

    def no_fork() -> int:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", no_fork)
    stats = statistics_gen.statistics_of_columnar(str(parquet), "train", workers=2)
    assert stats.SerializeToString() == _single_pass(parquet, "train")
    assert "no statistics worker ([Errno 11] Resource temporarily unavailable)" in capfd.readouterr().err


def test_how_many_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    cpus = len(os.sched_getaffinity(0))
    assert statistics_gen.processes_for(None, 344, 8) == 1  # small: a fork costs more than it saves
    assert statistics_gen.processes_for(None, 1_000_000, 20) == min(cpus, 20)
    assert statistics_gen.processes_for(None, 1_000_000, 1) == 1
    assert statistics_gen.processes_for(3, 10, 2) == 2  # asked for: at most one a column
    assert statistics_gen.processes_for(1, 10**9, 50) == 1
    monkeypatch.delenv(statistics_gen.WORKERS_ENV, raising=False)
    assert statistics_gen.workers_from_env() is None
    monkeypatch.setenv(statistics_gen.WORKERS_ENV, "2")
    assert statistics_gen.workers_from_env() == 2
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv(statistics_gen.WORKERS_ENV, bad)
        with pytest.raises(ConfigError, match=statistics_gen.WORKERS_ENV):
            statistics_gen.workers_from_env()


def test_a_cgroup_cpu_quota_caps_the_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    v2, quota, period = tmp_path / "cpu.max", tmp_path / "quota", tmp_path / "period"
    monkeypatch.setattr(process, "CPU_QUOTA_FILES", ((str(v2), None), (str(quota), str(period))))
    cpus = len(os.sched_getaffinity(0))
    assert process.usable_cpus() == cpus  # no files: no quota
    quota.write_text("-1\n")
    period.write_text("100000\n")
    assert process.usable_cpus() == cpus
    quota.write_text("50000\n")  # half a CPU: one process
    assert process.usable_cpus() == 1
    v2.write_text("max 100000\n")  # v2 first
    assert process.usable_cpus() == cpus
    v2.write_text("150000 100000\n")
    assert process.usable_cpus() == min(cpus, 2)


def test_column_groups_cover_every_column_once_at_about_equal_cost() -> None:
    schema = pa.schema(
        [(f"num_{i}", pa.float64()) if i % 2 == 0 else (f"cat_{i}", pa.string()) for i in range(20)]
    )
    groups = statistics_gen.column_groups(schema, 2)
    assert sorted(c for g in groups for c in g) == sorted(schema.names)
    assert all(g == sorted(g, key=schema.names.index) for g in groups)  # column order kept
    kinds = [sum(c.startswith("cat") for c in g) for g in groups]
    assert kinds == [5, 5]
    alone = statistics_gen.column_groups(schema.remove(0).remove(0), 30)
    assert sorted(alone) == sorted([n] for n in schema.names[2:])


def test_the_counter_left_out_is_still_where_tfdv_keeps_it() -> None:
    """The in-memory path turns off one Beam counter of TFDV's top-k generator (it costs
    seconds at random and feeds nothing): if TFDV renames it, the statistics stay right
    but the cost comes back; this says so."""
    from tensorflow_data_validation.statistics.generators import top_k_uniques_sketch_stats_generator as topk

    assert topk.TopKUniquesSketchStatsGenerator()._length_counter_sampling_rate == 0.01
