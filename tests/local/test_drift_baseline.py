"""Drift is measured against the right baseline: the statistics the previous run of the
same data source used, never another source's, also after a cache reuse; features
without a baseline are new, not anomalies. Real TFDV, real files, a real ML Metadata
store; lineage written through the same functions the task wrapper and the local runner
use, so no whole pipeline has to run (one test runs the reference pipeline for the
report, lineage and audit of a failed and a passed validation)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
from kubetfx.components.example_gen import executor as example_gen
from kubetfx.components.example_validator import executor as validator
from kubetfx.components.schema_gen import executor as schema_gen
from kubetfx.components.statistics_gen import executor as statistics_gen
from ml_metadata.proto import metadata_store_pb2 as pb

from kubetfx.artifacts.kinds import ANOMALIES, TYPE_KEY
from kubetfx.fingerprint import local_path
from kubetfx.lineage import record
from kubetfx.lineage.query import StatisticsBaseline, drift_series, previous_statistics
from kubetfx.lineage.record import ArtifactRecord, Identity, props
from kubetfx.lineage.store import Store, connect
from kubetfx.reports import anomalies_html

PIPELINE = "drift-test"
PENGUINS = "pkg://palmerpenguins/data/penguins.csv"
PENGUINS_RAW = "pkg://palmerpenguins/data/penguins-raw.csv"
CURATED = "pkg://kubetfx.schemas/penguins/schema.pbtxt"
REPO = Path(__file__).resolve().parents[2]


def _penguins() -> pd.DataFrame:
    return pd.read_csv(local_path(PENGUINS), keep_default_na=False)


def _raw(tmp_path: Path) -> tuple[pd.DataFrame, Path]:
    """The raw penguins data without its free-text columns (comments, dates) and rows with
    gaps: a schema inferred from the train split would rightly find new values or missing
    cells in eval, true anomalies that are not what these tests are about."""
    raw = pd.read_csv(local_path(PENGUINS_RAW), keep_default_na=False).drop(columns=["Comments", "Date Egg"])
    raw = raw[~raw.isin(["NA", ""]).any(axis=1)]
    path = tmp_path / "raw.csv"
    raw.to_csv(path, index=False)
    return raw, path


def _shifted_mass(frame: pd.DataFrame) -> pd.DataFrame:
    shifted = frame.copy()
    mass = pd.to_numeric(shifted["body_mass_g"], errors="coerce")
    shifted["body_mass_g"] = (mass + 2500).clip(upper=6999).astype("Int64").astype(str).replace("<NA>", "NA")
    return shifted


class Runs:
    """Runs of one pipeline in one store: ExampleGen and StatisticsGen on real data, lineage
    recorded as the task wrapper records it; a cache hit recorded as the runner does."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.store: Store = connect(f"sqlite:///{tmp_path}/mlmd.sqlite")
        self.statistics: dict[str, str] = {}  # run -> statistics URI it used

    def _identity(self, run: str, task: str) -> Identity:
        return Identity(pipeline_name=PIPELINE, run_id=run, task_name=task)

    def run(self, run: str, input_uri: str) -> str:
        """ExampleGen + StatisticsGen of ``input_uri`` in run ``run``; the statistics' URI."""
        examples = str(self.tmp / run / "examples")
        stats = str(self.tmp / run / "statistics")
        gen = example_gen.run(input_uri, examples)
        identity = self._identity(run, "example-gen")
        ex_id = record.start_execution(self.store, identity, params={"input_uri": input_uri}, inputs={})
        ids = record.finish_execution(
            self.store,
            identity,
            ex_id,
            outputs={"examples": [ArtifactRecord("examples", examples, "system.Dataset", gen.metadata())]},
            output_params={},
        )
        result = statistics_gen.run(examples, stats)
        identity = self._identity(run, "statistics-gen")
        examples_in = ArtifactRecord("examples", examples, "system.Dataset", id=ids["examples"][0])
        st_id = record.start_execution(self.store, identity, params={}, inputs={"examples": [examples_in]})
        record.finish_execution(
            self.store,
            identity,
            st_id,
            outputs={
                "statistics": [
                    ArtifactRecord("statistics", stats, "system.Artifact", result.metadata(gen.metadata()))
                ]
            },
            output_params={},
        )
        self.statistics[run] = stats
        return stats

    def reuse(self, run: str, cached_from: str) -> str:
        """Run ``run`` gets ExampleGen and StatisticsGen from ``cached_from``'s cache."""
        produced = {}
        for task, key in (("example-gen", "examples"), ("statistics-gen", "statistics")):
            uri = str(self.tmp / cached_from / key)
            artifact = record.find_artifact(self.store, uri)
            inputs = (
                {"examples": [ArtifactRecord("examples", produced["examples"], "system.Dataset")]}
                if key == "statistics"
                else {}
            )
            record.record_outcome(
                self.store,
                self._identity(run, task),
                state=pb.Execution.CACHED,
                params={},
                inputs=inputs,
                outputs={key: [ArtifactRecord(key, uri, "system.Artifact", id=artifact.id)]},
            )
            produced[key] = uri
        self.statistics[run] = produced["statistics"]
        return produced["statistics"]

    def validate(
        self, run: str, schema: str = "", label_key: str = "species", **kwargs
    ) -> tuple[StatisticsBaseline | None, validator.ValidationResult]:
        """The validator of run ``run``: baseline from lineage, then real TFDV validation,
        recorded as an input event like the task wrapper records it."""
        stats = self.statistics[run]
        identity = self._identity(run, "example-validator")
        record.start_execution(
            self.store,
            identity,
            params={},
            inputs={"statistics": [ArtifactRecord("statistics", stats, "system.Artifact")]},
        )
        baseline = previous_statistics(self.store, PIPELINE, stats, run_id=run)
        schema_dir = str(self.tmp / run / ("schema-curated" if schema else "schema-inferred"))
        schema_gen.run(stats, schema_dir, schema_file=schema, label_key=label_key)
        result = validator.run(
            stats,
            schema_dir,
            str(self.tmp / run / "anomalies"),
            baseline_statistics_dir=baseline.uri if baseline else "",
            baseline_span=baseline.span if baseline else None,
            baseline_run=baseline.run_id if baseline else "",
            source=baseline.source if baseline else "",
            **kwargs,
        )
        return baseline, result


def test_two_sources_in_one_store_then_the_first_again(tmp_path: Path) -> None:
    runs = Runs(tmp_path)
    runs.run("run-1", PENGUINS)
    baseline, first = runs.validate("run-1", schema=CURATED)
    assert baseline is None and first.problems() == []

    # Another data set, other columns: no baseline (not the penguins statistics), no anomaly.
    runs.run("run-2", str(_raw(tmp_path)[1]))
    baseline, second = runs.validate("run-2", label_key="Species")
    assert baseline is None, baseline
    assert second.problems() == [] and second.drift == {} and second.new_features == []
    assert "No baseline" in anomalies_html(second)

    # Penguins again: compared with run 1's penguins statistics, never run 2's raw data.
    runs.run("run-3", PENGUINS)
    baseline, third = runs.validate("run-3", schema=CURATED)
    assert baseline is not None
    assert (baseline.run_id, baseline.source, baseline.uri) == ("run-1", PENGUINS, runs.statistics["run-1"])
    assert third.problems() == [], third.problems()
    assert set(third.drift) == set(_penguins().columns) and max(third.drift.values()) == 0.0
    assert third.new_features == [] and third.gone_features == []
    page = anomalies_html(third)
    assert "No baseline" not in page and "No earlier statistics" not in page
    assert "statistics of run run-1 (source pkg://palmerpenguins/data/penguins.csv, span 0)" in page


def test_a_shifted_feature_on_the_same_source_is_flagged_by_name(tmp_path: Path) -> None:
    runs = Runs(tmp_path)
    data = tmp_path / "daily.csv"
    _penguins().to_csv(data, index=False)
    runs.run("monday", str(data))
    runs.validate("monday", schema=CURATED)
    _shifted_mass(_penguins()).to_csv(data, index=False)  # the same source, new content
    runs.run("tuesday", str(data))
    baseline, result = runs.validate("tuesday", schema=CURATED)
    assert baseline is not None and baseline.run_id == "monday"
    assert result.drifted == ["body_mass_g"]
    assert result.metadata()["anomalous_features"] == ["body_mass_g"]
    message = validator.failure_message(result)
    assert "feature 'body_mass_g'" in message and "Jensen-Shannon" in message
    assert f"statistics of run monday (source {data}, span 0)" in message


def test_cache_reuse_compares_with_the_previous_run_not_the_oldest(tmp_path: Path) -> None:
    runs = Runs(tmp_path)
    data = tmp_path / "data.csv"
    _penguins().to_csv(data, index=False)
    runs.run("v1", str(data))
    _shifted_mass(_penguins()).to_csv(data, index=False)
    runs.run("v2", str(data))
    # v1's data again: ExampleGen and StatisticsGen come from v1's cache (same statistics
    # artifact, older than v2's). The previous run of this source is v2, so v2's are the baseline.
    _penguins().to_csv(data, index=False)
    reused = runs.reuse("v1-again", cached_from="v1")
    assert reused == runs.statistics["v1"]
    baseline, result = runs.validate("v1-again", schema=CURATED)
    assert baseline is not None
    assert (baseline.run_id, baseline.uri) == ("v2", runs.statistics["v2"])
    assert not baseline.same_statistics
    assert result.drifted == ["body_mass_g"], result.drift  # back from the shift: a true change
    # Without a run id, the latest run that used the checked statistics is the running one.
    assert previous_statistics(runs.store, PIPELINE, runs.statistics["v1"]).run_id == "v2"
    # Run v1 itself (looked at afterwards) still had no baseline: nothing ran before it.
    assert previous_statistics(runs.store, PIPELINE, runs.statistics["v1"], run_id="v1") is None
    # A later run that reuses the same cache again compares with what v1-again used.
    runs.reuse("v1-third", cached_from="v1")
    again = previous_statistics(runs.store, PIPELINE, runs.statistics["v1"], run_id="v1-third")
    assert again is not None and again.run_id == "v1-again" and again.same_statistics


def test_new_and_renamed_features_are_findings_not_anomalies(tmp_path: Path) -> None:
    raw, data = _raw(tmp_path)
    runs = Runs(tmp_path)
    runs.run("r1", str(data))
    runs.validate("r1", label_key="Species")
    renamed = raw.rename(columns={"Delta 13 C (o/oo)": "Delta 13 C (per mil)"})
    renamed["Clutch Size"] = 2
    renamed.to_csv(data, index=False)
    runs.run("r2", str(data))
    # The schema is inferred from this run's data: the new and renamed columns are in it.
    baseline, result = runs.validate("r2", label_key="Species")
    assert baseline is not None and baseline.run_id == "r1"
    assert result.problems() == [], result.problems()
    assert result.new_features == ["Clutch Size", "Delta 13 C (per mil)"]
    assert result.gone_features == ["Delta 13 C (o/oo)"]
    assert "Delta 15 N (o/oo)" in result.drift  # names that need quoting are measured too
    page = anomalies_html(result)
    assert "New since the baseline" in page and "Delta 13 C (per mil)" in page


def test_anomalous_features_names_need_no_unquoting(tmp_path: Path) -> None:
    raw, data = _raw(tmp_path)
    runs = Runs(tmp_path)
    runs.run("r1", str(data))
    runs.validate("r1", label_key="Species")
    schema_dir = str(tmp_path / "r1" / "schema-inferred")
    bad = raw.copy()
    bad["Delta 15 N (o/oo)"] = "unknown"  # a number column turned into text
    bad.to_csv(data, index=False)
    runs.run("r2", str(data))
    result = validator.run(runs.statistics["r2"], schema_dir, str(tmp_path / "r2" / "anomalies"))
    assert result.metadata()["anomalous_features"] == ["Delta 15 N (o/oo)"], result.problems()
    assert all("feature 'Delta 15 N (o/oo)'" in p for p in result.problems())


def _run_id(stdout: str) -> str:
    return next(line for line in stdout.splitlines() if line.startswith("Run ")).split()[1]


def test_pipeline_report_lineage_and_audit_of_passed_failed_and_other_source_validations(
    workdir: Path, cli
) -> None:
    pipeline = str(REPO / "pipelines/training/pipeline.yaml")
    env = {"KUBETFX_PUSH_ROOT": str(workdir / "serving")}
    data = workdir / "penguins.csv"
    _penguins().to_csv(data, index=False)
    first = cli("run", pipeline, "--param", f"input_uri={data}", "--param", "epochs=15", env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    audit = cli("audit", "penguins:1", env=env)
    assert audit.returncode == 0, audit.stderr
    section = audit.stdout.split("## Data validation", 1)[1].split("##", 1)[0]
    assert "not in lineage" not in section
    assert re.search(r"\| verdict \| passed \|", section), section
    assert re.search(r"\| anomaly_count \| 0 \|", section), section
    assert "| drift_baseline | none: no earlier statistics of this data source |" in section

    _shifted_mass(_penguins()).to_csv(data, index=False)
    second = cli("run", pipeline, "--param", f"input_uri={data}", env=env)
    assert second.returncode == 1, second.stdout
    assert "feature 'body_mass_g'" in second.stdout
    run_id = _run_id(second.stdout)
    [report] = workdir.glob(f"root/*/{run_id}/example-validator/report.html")
    page = report.read_text()
    assert "FAILED: 1 anomaly" in page and "body_mass_g" in page and "over threshold" in page
    assert f"statistics of run {_run_id(first.stdout)} (source {data}, span 0)" in page
    assert not list(workdir.glob(f"root/*/{run_id}/example-validator/*.partial-*"))
    store = connect(f"sqlite:///{workdir}/mlmd.sqlite")
    ctx = store.mlmd.get_context_by_type_and_name("system.PipelineRun", run_id)
    [failed] = [
        e
        for e in store.mlmd.get_executions_by_context(ctx.id)
        if props(e)["task_name"] == "example-validator"
    ]
    assert failed.last_known_state == pb.Execution.FAILED
    assert "body_mass_g" in props(failed)["error"]
    outputs = record.outputs_of(store, failed.id)
    assert sorted(outputs) == ["anomalies", "metrics", "report"]
    assert outputs["report"][0].uri == str(report)
    anomalies = props(outputs["anomalies"][0])
    assert anomalies["anomalous_features"] == '["body_mass_g"]'
    assert anomalies["baseline_run"] == _run_id(first.stdout)
    assert anomalies[TYPE_KEY] == ANOMALIES
    # The failed run's distances are part of the drift series, with their baseline run.
    [point] = drift_series(store, "kubetfx-training")
    assert (point.run_id, point.baseline_run) == (run_id, _run_id(first.stdout))
    assert point.distances["body_mass_g"] > point.thresholds["body_mass_g"]

    # Another CSV (a renamed, quoted-name column; schema inferred): no baseline, so none of
    # the false "previous data missing" anomalies that used to stop the run here.
    other = workdir / "renamed.csv"
    _penguins().rename(columns={"year": "Year (yyyy)"}).to_csv(other, index=False)
    third = cli(
        "run",
        pipeline,
        "--param",
        f"input_uri={other}",
        "--param",
        "schema_file=",
        "--param",
        "epochs=1",
        env=env,
    )
    assert re.search(
        r"^example-validator\s+SUCCEEDED.*anomaly_count=0, valid=True", third.stdout, re.MULTILINE
    ), third.stdout + third.stderr
    [page] = workdir.glob(f"root/*/{_run_id(third.stdout)}/example-validator/report.html")
    assert "No baseline: no earlier run of this pipeline read this data source" in page.read_text()
