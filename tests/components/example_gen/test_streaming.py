"""ExampleGen reads and writes batch by batch: the same Examples as reading the whole
table at once (records, columnar copy, sources, row counts, fingerprint), and a batch never
holds more rows than its size allows."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from kubetfx.components.example_gen import executor

from kubetfx.artifacts import examples, layout, tabular
from kubetfx.errors import InputDataError
from kubetfx.fingerprint import fingerprint_files, local_path

PENGUINS = "pkg://palmerpenguins/data/penguins.csv"


def _whole_table(input_uri: str, out: Path, splits: str = "train:2,eval:1", partition: str = "") -> dict:
    """What ExampleGen wrote when it read the whole table at once: one read of every file,
    one split assignment, each split written in one go."""
    from tfx_bsl.coders import example_coder

    files, _ = tabular.resolve_input(input_uri)
    table, sources = tabular.read_files(files, tabular.detect_format(files, "auto"))
    spec = executor.parse_splits(splits)
    index = executor.assign_splits(table, spec, partition)
    batch = tabular.to_record_batch(table)
    encoder = example_coder.RecordBatchToExamplesEncoder()
    counts = {}
    for i, (name, _) in enumerate(spec):
        mask = pa.array(index == i)
        examples.write_split(
            str(out), name, encoder.encode(batch.filter(mask)), table.filter(mask), sources.filter(mask)
        )
        counts[name] = int((index == i).sum())
    return {"counts": counts, "fingerprint": fingerprint_files(files), "columns": table.column_names}


def _decoded(records: list[bytes]) -> pa.Table:
    """tf.Examples as a table, columns by name (a serialized Example's features come in no set order)."""
    from tfx_bsl.coders import example_coder

    table = pa.Table.from_batches([example_coder.ExamplesToRecordBatchDecoder().DecodeBatch(records)])
    return table.select(sorted(table.column_names))


def _assert_same_examples(streamed: Path, whole: Path, splits: list[str]) -> None:
    for split in splits:
        ours, theirs = examples.records(str(streamed), split), examples.records(str(whole), split)
        assert len(ours) == len(theirs) and _decoded(ours).equals(_decoded(theirs)), split
        for name in (layout.COLUMNAR_FILE, layout.SOURCE_ROWS_FILE):
            ours = pq.read_table(streamed / f"Split-{split}" / name)
            theirs = pq.read_table(whole / f"Split-{split}" / name)
            assert ours.schema == theirs.schema, (split, name)
            assert ours.equals(theirs), (split, name)


def _tricky_csv(path: Path) -> None:
    """Rows that make batches disagree if read one at a time: a column of integers that
    turns out to hold a decimal, one empty until late, one of integers in some batches
    and text in another, a blank line, quoted fields with commas and line breaks."""
    lines = ["id,count,late,mixed,note"]
    for i in range(600):
        count = "3.5" if i == 555 else str(i % 17)
        late = "" if i < 500 else str(i * 2)
        mixed = "x" if i == 420 else str(i % 5)
        note = '"two\nlines, here"' if i % 97 == 0 else ("" if i % 11 == 0 else f"n{i % 4}")
        lines.append(f"r{i},{count},{late},{mixed},{note}")
        if i == 250:
            lines.append("")
    path.write_text("\n".join(lines) + "\n")


def _airports() -> str:
    spec = importlib.util.find_spec("vega_datasets")
    assert spec is not None, "vega_datasets (kubetfx's dev extra) ships the airports table"
    return str(Path(next(iter(spec.submodule_search_locations)), "_data", "airports.csv"))


@pytest.mark.parametrize("dataset", ["penguins", "airports", "tricky", "two_csv", "parquet"])
def test_streamed_examples_equal_the_whole_table_ones(tmp_path: Path, dataset: str) -> None:
    if dataset == "penguins":
        uri = str(local_path(PENGUINS))
    elif dataset == "airports":
        uri = _airports()
    elif dataset == "tricky":
        _tricky_csv(tmp_path / "tricky.csv")
        uri = str(tmp_path / "tricky.csv")
    elif dataset == "two_csv":
        (tmp_path / "in").mkdir()
        (tmp_path / "in" / "a.csv").write_text("x,y\n" + "".join(f"{i},{i % 3}\n" for i in range(300)))
        (tmp_path / "in" / "b.csv").write_text("x,y\n" + "".join(f"{i}.5,\n" for i in range(300)))
        uri = str(tmp_path / "in")
    else:
        (tmp_path / "in").mkdir()
        for i in range(2):
            table = pa.table({"x": list(range(3000)), "name": [f"n{j % 7}" for j in range(3000)]})
            if i:
                table = table.set_column(0, "x", pa.array([float(j) / 2 for j in range(3000)]))
            pq.write_table(table, tmp_path / "in" / f"p{i}.parquet")
        uri = str(tmp_path / "in")
    expected = _whole_table(uri, tmp_path / "whole")
    # Batches of a few KB: many per file, so rows, types and lines cross batch edges.
    result = executor.run(uri, str(tmp_path / "streamed"), batch_mb=0.004)
    assert result.row_counts == expected["counts"]
    assert result.fingerprint == expected["fingerprint"] and result.columns == expected["columns"]
    _assert_same_examples(tmp_path / "streamed", tmp_path / "whole", list(expected["counts"]))


def test_partition_feature_splits_equal_the_whole_table_ones(tmp_path: Path) -> None:
    uri = str(local_path(PENGUINS))
    expected = _whole_table(uri, tmp_path / "whole", "train:3,eval:1,test:1", "body_mass_g")
    result = executor.run(
        uri,
        str(tmp_path / "streamed"),
        splits="train:3,eval:1,test:1",
        partition_feature="body_mass_g",
        batch_mb=0.002,
    )
    assert result.row_counts == expected["counts"]
    _assert_same_examples(tmp_path / "streamed", tmp_path / "whole", ["train", "eval", "test"])


def test_a_batch_holds_no_more_rows_than_its_size_allows(tmp_path: Path) -> None:
    """Read in 64 KB batches, a 200,000-row CSV (about 7 MB) comes in about 100 batches,
    none over 64 KB of input (rows of 35 bytes: at most ~1,900 rows)."""
    path = tmp_path / "big.csv"
    with open(path, "w") as f:
        f.write("a,b,c,d\n")
        for i in range(200_000):
            # Quoted text with a comma: a batch's edge often falls inside a quoted field.
            f.write(f'{i:08d},{i % 1000:06d},{i * 7 % 10007:06d},"te,xt{i % 13:03d}"\n')
    size = 64 * 1024
    scan = tabular.TableScan([str(path)], "csv", batch_mb=size / 2**20)
    assert scan.num_rows == 200_000
    row_bytes = path.stat().st_size / 200_001
    largest, batches, seen = 0, 0, 0
    for table, sources in scan.batches():
        assert sources.column("row")[0].as_py() == seen  # in file order, none skipped
        largest, batches, seen = max(largest, table.num_rows), batches + 1, seen + table.num_rows
    assert seen == 200_000
    assert largest <= size / row_bytes + 1, largest
    assert batches >= path.stat().st_size // size


def test_a_row_ends_at_a_newline_outside_quotes() -> None:
    assert tabular.csv_row_boundary(b'a,"x"\nb,"y') == 6  # the unfinished line opens a quote
    assert tabular.csv_row_boundary(b'a,"x\ny"\nb,"y') == 8  # a line break inside quotes
    assert tabular.csv_row_boundary(b'a,"x\ny\nz') == 0  # still inside the first row
    assert tabular.csv_row_boundary(b"a,b") == 0


def test_an_open_quote_longer_than_the_batches_allow_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "open.csv"
    path.write_text('id,note\n1,a\n2,"opens\n' + "".join(f"{i},x\n" for i in range(3, 3000)))
    with pytest.raises(
        InputDataError, match=r"open.csv:3: a quoted field \(column 'note'\) opens on this line"
    ):
        executor.run(str(path), str(tmp_path / "out"), batch_mb=0.001)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_bad_batch_size_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from kubetfx.errors import ConfigError

    monkeypatch.setenv(tabular.BATCH_MB_ENV, "lots")
    with pytest.raises(ConfigError, match="KUBETFX_BATCH_MB='lots'"):
        tabular.batch_bytes()
