"""An executor that gives its output a suffix (``report`` -> ``report.html``) still
publishes atomically, and a failure leaves nothing staged behind."""

from __future__ import annotations

from pathlib import Path

from kubetfx.staging import discard, publish, stage_outputs, unstage_uris


def _executor_input(folder: Path) -> dict:
    return {
        "outputs": {
            "artifacts": {
                "report": {"artifacts": [{"name": "report", "uri": str(folder / "report")}]},
                "stats": {"artifacts": [{"name": "stats", "uri": str(folder / "stats")}]},
            }
        }
    }


def test_a_suffixed_output_is_published_under_its_final_name(tmp_path: Path) -> None:
    executor_input = _executor_input(tmp_path)
    staged = stage_outputs(executor_input)
    report = executor_input["outputs"]["artifacts"]["report"]["artifacts"][0]
    report["uri"] += ".html"  # what kubetfx.reports.write_report does
    Path(report["uri"]).write_text("<!doctype html>")
    Path(executor_input["outputs"]["artifacts"]["stats"]["artifacts"][0]["uri"]).mkdir()
    document = {
        "artifacts": {
            k: {"artifacts": [dict(v["artifacts"][0])]}
            for k, v in executor_input["outputs"]["artifacts"].items()
        }
    }
    assert not (tmp_path / "report.html").exists(), "nothing visible before publishing"
    unstage_uris(document, staged)
    publish(staged)
    assert document["artifacts"]["report"]["artifacts"][0]["uri"] == str(tmp_path / "report.html")
    assert (tmp_path / "report.html").read_text() == "<!doctype html>"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "stats"]


def test_a_failure_discards_suffixed_staging_files(tmp_path: Path) -> None:
    executor_input = _executor_input(tmp_path)
    staged = stage_outputs(executor_input)
    report = executor_input["outputs"]["artifacts"]["report"]["artifacts"][0]
    Path(report["uri"] + ".html").write_text("half")
    discard(staged)
    assert list(tmp_path.iterdir()) == []
