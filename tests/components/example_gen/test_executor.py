"""ExampleGen's executor on real files: TFRecords read back with TensorFlow, and bad input
that names the file, line and column."""

from __future__ import annotations

import glob
import json
import os
from pathlib import Path

import pytest
from kubetfx.components.example_gen import executor

from kubetfx.artifacts import layout
from kubetfx.errors import InputDataError
from kubetfx.fingerprint import local_path

PENGUINS = "pkg://palmerpenguins/data/penguins.csv"


def _read_back(output_dir: Path, split: str) -> list[dict]:
    import tensorflow as tf

    files = sorted(glob.glob(str(output_dir / f"Split-{split}" / "data_tfrecord-*.gz")))
    assert files, f"no TFRecords for split {split}"
    rows = []
    for raw in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        example = tf.train.Example.FromString(raw.numpy())
        row = {}
        for name, feature in example.features.feature.items():
            kind = feature.WhichOneof("kind")
            row[name] = list(getattr(feature, kind).value) if kind else []
        rows.append(row)
    return rows


def test_penguins_round_trip_through_tensorflow(tmp_path: Path) -> None:
    result = executor.run(PENGUINS, str(tmp_path))
    csv_rows = local_path(PENGUINS).read_text().strip().splitlines()[1:]
    assert sum(result.row_counts.values()) == len(csv_rows) == 344
    assert result.split_names == ["train", "eval"]
    # 2:1 buckets: roughly two thirds in train.
    assert 0.55 < result.row_counts["train"] / 344 < 0.78
    train, evaluation = _read_back(tmp_path, "train"), _read_back(tmp_path, "eval")
    assert len(train) == result.row_counts["train"] and len(evaluation) == result.row_counts["eval"]
    first = next(
        r for r in train + evaluation if r["bill_length_mm"] and abs(r["bill_length_mm"][0] - 39.1) < 1e-5
    )
    assert first["species"] == [b"Adelie"] and first["body_mass_g"] == [3750]
    # "NA" cells are missing values: present as empty features, never as the text "NA".
    missing = [r for r in train + evaluation if r["sex"] == []]
    assert len(missing) == 11
    assert not any(r["sex"] == [b"NA"] for r in train + evaluation)
    meta = result.metadata()
    assert json.loads(meta["split_names"]) == ["train", "eval"]
    assert meta["row_count_train"] == result.row_counts["train"]
    assert len(meta["fingerprint"]) == 32


def test_split_is_deterministic_and_follows_the_partition_feature(tmp_path: Path) -> None:
    a = executor.run(PENGUINS, str(tmp_path / "a"), partition_feature="island")
    b = executor.run(PENGUINS, str(tmp_path / "b"), partition_feature="island")
    assert a.row_counts == b.row_counts
    # tf.Example's feature map has no fixed byte order, so compare what TensorFlow reads.
    assert _read_back(tmp_path / "a", "eval") == _read_back(tmp_path / "b", "eval")
    islands = {s: {r["island"][0] for r in _read_back(tmp_path / "a", s)} for s in ("train", "eval")}
    assert not islands["train"] & islands["eval"], "rows of one island must land in one split"


def test_span_pattern_takes_the_newest_span(tmp_path: Path) -> None:
    for span, rows in ((1, 30), (12, 45), (3, 30)):
        body = "\n".join(f"{i},{i % 3}" for i in range(rows))
        (tmp_path / f"data-{span}.csv").write_text(f"x,y\n{body}\n")
    result = executor.run(str(tmp_path / "data-{SPAN}.csv"), str(tmp_path / "out"))
    assert result.span == 12
    assert sum(result.row_counts.values()) == 45
    assert result.files == [str(tmp_path / "data-12.csv")]


def test_folder_of_parquet_files(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(2):
        pq.write_table(
            pa.table({"x": list(range(50)), "name": [f"n{j}" for j in range(50)]}), folder / f"p{i}.parquet"
        )
    result = executor.run(str(folder), str(tmp_path / "out"))
    assert result.file_format == "parquet" and sum(result.row_counts.values()) == 100


def _write(path: Path, data: bytes | str) -> str:
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return str(path)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", b"", r"empty.csv: file is empty"),
        ("header_only.csv", b"a,b\n", r"header_only.csv: has a header but no data rows"),
        (
            "ragged.csv",
            b"a,b\n1,2\n3,4\n5,6,7\n8,9\n",
            r"ragged.csv:4: row has 3 fields but the header has 2",
        ),
        ("short.csv", b"a,b,c\n1,2,3\n4,5\n", r"short.csv:3: row has 2 fields but the header has 3"),
        ("latin1.csv", "a,b\n1,caf\xe9\n".encode("latin-1"), r"latin1.csv:2:6: byte 0xe9 is not valid UTF-8"),
        ("noname.csv", b"a,,c\n1,2,3\n", r"noname.csv:1:2: column 2 of the header has no name"),
        ("dupe.csv", b"a,b,a\n1,2,3\n", r"dupe.csv:1: header names column 'a' twice"),
    ],
)
def test_bad_csv_names_file_line_and_column(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    path = _write(tmp_path / name, content)
    out = tmp_path / "out"
    with pytest.raises(InputDataError, match=message):
        executor.run(path, str(out))


def test_missing_input_and_header_mismatch_between_files(tmp_path: Path) -> None:
    with pytest.raises(InputDataError, match=r"nope.csv: no such file or folder"):
        executor.run(str(tmp_path / "nope.csv"), str(tmp_path / "out"))
    folder = tmp_path / "in"
    folder.mkdir()
    _write(folder / "a.csv", "x,y\n1,2\n3,4\n")
    _write(folder / "b.csv", "x,z\n1,2\n3,4\n")
    with pytest.raises(
        InputDataError, match=r"b.csv:1: header differs from .*a.csv: missing \['y'\]; extra \['z'\]"
    ):
        executor.run(str(folder), str(tmp_path / "out"))
    with pytest.raises(InputDataError, match=r"no file matches this span pattern"):
        executor.run(str(tmp_path / "span-{SPAN}.csv"), str(tmp_path / "out"))


def test_an_empty_split_and_bad_split_specs_are_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "tiny.csv", "x,y\n1,2\n")
    with pytest.raises(InputDataError, match=r"split '(train|eval)' got no rows out of 1"):
        executor.run(path, str(tmp_path / "out"))
    with pytest.raises(InputDataError, match=r"'train' is not NAME:BUCKETS"):
        executor.run(path, str(tmp_path / "out"), splits="train,eval:1")
    with pytest.raises(InputDataError, match=r"partition_feature 'nope' is not a column"):
        executor.run(
            _write(tmp_path / "more.csv", "x,y\n" + "1,2\n" * 20),
            str(tmp_path / "o"),
            partition_feature="nope",
        )


def test_nothing_is_written_outside_the_output_dir(tmp_path: Path) -> None:
    before = set(os.listdir(tmp_path))
    executor.run(PENGUINS, str(tmp_path / "out"))
    assert set(os.listdir(tmp_path)) - before == {"out"}


def test_source_rows_name_each_examples_file_row_and_line(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    # A blank line and a quoted field over two lines: data rows and file lines differ.
    (tmp_path / "in").mkdir()
    text = 'id,note\nr0,a\n\nr1,"two\nlines"\nr2,b\n' + "".join(f"r{i},x\n" for i in range(3, 40))
    (tmp_path / "in" / "a.csv").write_text(text)
    lines = {"r0": 2, "r1": 4, "r2": 6, **{f"r{i}": 4 + i for i in range(3, 40)}}
    pq.write_table(
        pa.table({"id": [f"p{i}" for i in range(30)], "note": ["y"] * 30}), tmp_path / "in" / "b.parquet"
    )
    with pytest.raises(InputDataError, match="mixes CSV and Parquet"):
        executor.run(str(tmp_path / "in"), str(tmp_path / "bad"))
    executor.run(str(tmp_path / "in" / "a.csv"), str(tmp_path / "csv"))
    executor.run(str(tmp_path / "in" / "b.parquet"), str(tmp_path / "pq"))
    for out, expected_file in (("csv", "a.csv"), ("pq", "b.parquet")):
        for split in ("train", "eval"):
            data = pq.read_table(tmp_path / out / f"Split-{split}" / "data.parquet")
            sources = pq.read_table(tmp_path / out / f"Split-{split}" / layout.SOURCE_ROWS_FILE)
            assert sources.num_rows == data.num_rows and set(data.column_names) == {"id", "note"}
            assert set(sources.column("file").to_pylist()) == {expected_file}
            ids = data.column("id").to_pylist()
            if out == "csv":
                assert sources.column("line").to_pylist() == [lines[i] for i in ids]
                assert sources.column("row").to_pylist() == [int(i[1:]) for i in ids]
            else:
                assert sources.column("line").null_count == data.num_rows
                assert sources.column("row").to_pylist() == [int(i[1:]) for i in ids]
