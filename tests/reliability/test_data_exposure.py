"""Data exposure: with a feature named in ``KUBETFX_REDACT_FEATURES``, the
reports and the audit a reviewer reads show none of its raw values.

One run of the reference pipeline through the CLI with ``island`` redacted, then the
statistics and evaluation reports, the evaluation summary, the lineage store (every
string kubetfx recorded) and ``kubetfx audit`` in both formats are searched for the three
island names. The data itself (examples, the schema's domain, TFMA's own files) keeps
them: those are artifacts, readable by whoever may read the data (docs/reliability.md).
"""

import sqlite3
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PIPELINE = str(REPO / "pipelines/training/pipeline.yaml")
ISLANDS = ("Biscoe", "Dream", "Torgersen")

pytestmark = pytest.mark.slow


def _found(text: str) -> list[str]:
    return [name for name in ISLANDS if name in text]


def test_a_redacted_feature_stays_out_of_reports_lineage_and_audit(workdir: Path, cli) -> None:
    env = {"KUBETFX_REDACT_FEATURES": "island"}
    run = cli("run", PIPELINE, "--param", "epochs=5", env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert not _found(run.stdout), "the run summary shows raw island values"

    root = workdir / "root"
    reports = [p for p in root.rglob("report*") if p.is_file()] + list(root.rglob("evaluation/summary.json"))
    statistics = [p for p in reports if "statistics-gen" in p.parts]
    evaluation = [p for p in reports if "evaluator" in p.parts]
    assert statistics and evaluation, reports
    for path in reports:
        text = path.read_text(errors="replace")
        assert not _found(text), f"{path} shows {_found(text)}"
    # The values are there, hidden: the island row of the statistics, the island slices.
    assert any("redacted (KUBETFX_REDACT_FEATURES)" in p.read_text() for p in statistics)
    assert all("island=#" in p.read_text() for p in evaluation)

    # Every string kubetfx put in the lineage store (properties, URIs, names).
    with sqlite3.connect(workdir / "mlmd.sqlite") as db:
        dump = "\n".join(db.iterdump())
    assert not _found(dump), f"lineage holds {_found(dump)}"
    assert "island=#" in dump

    for fmt in ("md", "html"):
        audit = cli("audit", "penguins:1", "--format", fmt, env=env)
        assert audit.returncode == 0, audit.stdout + audit.stderr
        assert not _found(audit.stdout), f"the {fmt} audit shows {_found(audit.stdout)}"
        assert "island=#" in audit.stdout
