"""The reference pipeline's data validation as a user sees it: a bad span stops the run,
lineage says why, drift is a time series, schemas evolve through a reviewed diff."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
from ml_metadata.proto import metadata_store_pb2 as pb

from kubetfx.fingerprint import local_path
from kubetfx.lineage.record import props
from kubetfx.lineage.store import connect

REPO = Path(__file__).resolve().parents[2]
PIPELINE = str(REPO / "pipelines/training/pipeline.yaml")
CURATED = str(REPO / "schemas/penguins/schema.pbtxt")


def _penguins() -> pd.DataFrame:
    return pd.read_csv(local_path("pkg://palmerpenguins/data/penguins.csv"), keep_default_na=False)


def _executions(workdir: Path) -> dict[str, pb.Execution]:
    store = connect(f"sqlite:///{workdir}/mlmd.sqlite")
    return {props(e)["task_name"]: e for e in store.mlmd.get_executions()}


def test_a_bad_span_stops_the_run_and_lineage_says_why(workdir: Path, cli) -> None:
    folder = workdir / "data"
    folder.mkdir()
    _penguins().to_csv(folder / "span-1.csv", index=False)
    uri = str(folder / "span-{SPAN}.csv")
    first = cli("run", PIPELINE, "--param", f"input_uri={uri}")
    assert first.returncode == 0, first.stdout + first.stderr
    assert re.search(r"^example-validator\s+SUCCEEDED", first.stdout, re.MULTILINE), first.stdout
    assert "anomaly_count=0" in first.stdout

    shifted = _penguins()
    shifted.loc[shifted.index[::6], "island"] = "Atlantis"
    mass = pd.to_numeric(shifted["body_mass_g"], errors="coerce")
    shifted["body_mass_g"] = (mass + 2500).astype("Int64").astype(str).replace("<NA>", "NA")
    shifted.loc[shifted["body_mass_g"] != "NA", "body_mass_g"] = (
        pd.to_numeric(shifted["body_mass_g"], errors="coerce").clip(upper=6999).astype("Int64").astype(str)
    )
    shifted.to_csv(folder / "span-2.csv", index=False)
    second = cli("run", PIPELINE, "--param", f"input_uri={uri}")
    assert second.returncode == 1
    assert re.search(r"^example-validator\s+FAILED", second.stdout, re.MULTILINE), second.stdout
    assert "feature 'island'" in second.stdout and "Atlantis" in second.stdout
    assert re.search(r"^trainer\s+NOT_RUN", second.stdout, re.MULTILINE), (
        "no training on data that failed validation"
    )

    validator = _executions(workdir)["example-validator"]
    failed = [
        e
        for e in connect(f"sqlite:///{workdir}/mlmd.sqlite").mlmd.get_executions()
        if props(e)["task_name"] == "example-validator" and e.last_known_state == pb.Execution.FAILED
    ]
    assert len(failed) == 1 and validator.id == failed[0].id
    error = props(failed[0])["error"]
    assert "feature 'island'" in error and "feature 'body_mass_g'" in error and "Jensen-Shannon" in error
    run_id = next(line.split()[1] for line in second.stdout.splitlines() if line.startswith("Run "))
    run_dir = next(workdir.glob(f"root/*/{run_id}"))
    # The failed validation's report is published whole (it is needed most then); no partial output.
    report = (run_dir / "example-validator/report.html").read_text()
    assert "FAILED" in report and "Atlantis" in report and "body_mass_g" in report
    assert "span 1" in report  # the baseline: the earlier span of the same source
    assert (run_dir / "example-validator/anomalies/drift.json").exists()
    assert not list(run_dir.glob("example-validator/*.partial-*"))

    # Record and continue: the same data passes with fail_on_anomalies=false, and the
    # drift series now has the span-2-vs-span-1 distances.
    third = cli(
        "run",
        PIPELINE,
        "--param",
        f"input_uri={uri}",
        "--param",
        "fail_on_anomalies=false",
        "--param",
        "epochs=1",
    )
    assert third.returncode == 0, third.stdout
    assert re.search(r"example-validator\s+SUCCEEDED.*anomaly_count=[1-9]\d*, valid=False", third.stdout)
    drift = cli("drift", "kubetfx-training", "--plot", str(workdir / "drift.png"))
    assert drift.returncode == 0, drift.stderr
    assert "span 2 vs span 1" in drift.stdout
    mass_line = next(line for line in drift.stdout.splitlines() if line.startswith("body_mass_g"))
    assert "*" in mass_line  # over the threshold
    assert (workdir / "drift.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    third_id = next(line.split()[1] for line in third.stdout.splitlines() if line.startswith("Run "))
    html = next(workdir.glob(f"root/*/{third_id}/example-validator/report.html")).read_text()
    assert "Atlantis" in html and "body_mass_g" in html
    stats_report = next(workdir.glob("root/**/statistics-gen/report.html")).read_text()
    for page in (html, stats_report):
        assert "<script" not in page and not re.search(r"(src|href)=['\"]?https?:", page), (
            "must be self-contained"
        )


def test_schema_diff_proposes_and_writes_a_change(workdir: Path, cli) -> None:
    frame = _penguins()
    frame.loc[frame.index[:30], "island"] = "Atlantis"
    data = workdir / "new.csv"
    frame.to_csv(data, index=False)
    proposed = workdir / "proposed.pbtxt"
    result = cli("schema", "diff", CURATED, "--data", str(data), "--write", str(proposed))
    assert result.returncode == 0, result.stderr
    # Progress, and none of the libraries' start-up warnings.
    progress = result.stderr.strip().splitlines()
    assert progress and all(re.match(r"^\[ *\d+\.\ds\] ", line) for line in progress), result.stderr
    assert progress[-1].endswith("] done") and "loading TensorFlow Data Validation" in progress[0]
    assert '+  value: "Atlantis"' in result.stdout
    assert 'value: "Atlantis"' in proposed.read_text()
    same = cli("schema", "diff", CURATED, "--data", str(local_path("pkg://palmerpenguins/data/penguins.csv")))
    assert "no change proposed" in same.stdout
