"""`kubetfx submit` and `kubetfx schedule` against a KFP stand-in (tests/cluster/kfp_standin.py).

No Kubeflow cluster runs here: the stand-in answers kfp.Client's REST calls on a loopback
port, checks each request body against the kfp-server-api models and records it, so these
tests check exactly what kubetfx sends. They do not prove a real KFP server accepts it.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from kubetfx.kfpclient.cron import ScheduleError, kfp_cron
from kubetfx.kfpclient.versions import backend_range, check_versions

REPO = Path(__file__).resolve().parents[2]
PIPELINE = str(REPO / "pipelines/training/pipeline.yaml")
HASH_NAME = "sha256-" + hashlib.sha256(Path(PIPELINE).read_bytes()).hexdigest()[:12]
TOKEN = "tok-3f9c1d2e-never-print-me"  # noqa: S105 - a test token

SCHEDULES = """
experiment: retraining
schedules:
  - name: nightly
    pipeline: kubetfx-training
    cron: "{cron}"
    max_concurrency: 2
    params:
      epochs: 5
      fail_on_anomalies: false
  - name: weekly
    pipeline: kubetfx-training
    version: latest
    cron: "0 0 3 * * SUN"
    catchup: true
"""


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


def upload(kubetfx, url: str) -> None:
    done = kubetfx("submit", PIPELINE, "--no-run", "--host", url)
    assert done.exit_code == 0, done.output


def schedule_file(tmp_path: Path, cron: str = "0 2 * * *") -> str:
    path = tmp_path / "schedules.yaml"
    path.write_text(SCHEDULES.format(cron=cron))
    return str(path)


# ----------------------------------------------------------------------------- submit


def test_submit_uploads_then_a_version_then_reuses_it_and_runs_with_typed_params(standin, kubetfx) -> None:
    kfp = standin()
    first = kubetfx(
        "submit",
        PIPELINE,
        "--experiment",
        "exp",
        "--host",
        kfp.url,
        "-p",
        "epochs=3",
        "-p",
        "fail_on_anomalies=false",
    )
    assert first.exit_code == 0, first.output
    assert len(kfp.calls("POST", r"/pipelines/upload$")) == 1
    pipeline_id = next(iter(kfp.pipelines))
    run = kfp.calls("POST", r"/runs$")[-1].body
    assert run["runtime_config"]["parameters"] == {"epochs": 3, "fail_on_anomalies": False}
    assert run["pipeline_version_reference"]["pipeline_id"] == pipeline_id
    assert run["service_account"] == "kubetfx-pipeline-runner"  # the one kustomize/base creates
    run_id = next(iter(kfp.runs))
    assert f"pipeline: kubetfx-training (id {pipeline_id}, uploaded)" in first.stdout
    assert f"run URL: {kfp.url}/#/runs/details/{run_id}" in first.stdout
    assert "version: kubetfx-training (id" in first.stdout  # KFP names the first version after the pipeline

    second = kubetfx("submit", PIPELINE, "--experiment", "exp", "--host", kfp.url, "-p", "epochs=4")
    assert second.exit_code == 0, second.output
    uploads = kfp.calls("POST", r"/upload_version$")
    assert [u.query["name"] for u in uploads] == [HASH_NAME]
    assert uploads[0].query["pipelineid"] == pipeline_id
    new_version = next(v for v in kfp.versions.values() if v["display_name"] == HASH_NAME)
    run = kfp.calls("POST", r"/runs$")[-1].body
    assert run["pipeline_version_reference"]["pipeline_version_id"] == new_version["pipeline_version_id"]
    assert run["runtime_config"]["parameters"] == {"epochs": 4}
    assert len(kfp.calls("POST", r"/experiments$")) == 1  # the experiment is reused
    assert len(kfp.runs) == 2

    third = kubetfx("submit", PIPELINE, "--no-run", "--host", kfp.url)
    assert third.exit_code == 0, third.output
    assert "existing (same content)" in third.stdout
    assert len(kfp.calls("POST", r"/upload")) == 2 and len(kfp.runs) == 2

    taken = kubetfx("submit", PIPELINE, "--no-run", "--host", kfp.url, "--version-name", HASH_NAME)
    assert taken.exit_code == 2 and "already has a version" in one_line(taken.stderr)


def test_submit_checks_parameters_before_any_request(standin, kubetfx) -> None:
    kfp = standin()
    unknown = kubetfx("submit", PIPELINE, "--experiment", "e", "--host", kfp.url, "-p", "epoch=3")
    assert unknown.exit_code == 2 and "unknown parameter 'epoch'" in one_line(unknown.stderr)
    wrong = kubetfx("submit", PIPELINE, "--experiment", "e", "--host", kfp.url, "-p", "epochs=many")
    assert wrong.exit_code == 2 and "'epochs'" in one_line(wrong.stderr)
    no_experiment = kubetfx("submit", PIPELINE, "--host", kfp.url)
    assert no_experiment.exit_code == 2 and "--experiment" in one_line(no_experiment.stderr)
    assert kfp.requests == []


@pytest.mark.parametrize(
    ("server", "stream", "expected"),
    [
        ("2.14.0", "stdout", "KFP server 2.14.0 suits pipeline.yaml"),
        ("2.5.0", "stdout", "kubetfx pipelines run on KFP >=2.5.0,<3.0.0"),
        ("2.20.0", "stderr", "note: KFP server 2.20.0 is newer than the newest release kubetfx checked"),
        ("3.0.0", "stderr", "warning: KFP server 3.0.0 is a major version kubetfx has not checked"),
        ("unknown", "stderr", "note: the KFP server does not report its version"),
    ],
)
def test_submit_compares_the_server_with_the_backends_kubetfx_supports(
    standin, kubetfx, server, stream, expected
) -> None:
    kfp = standin(version=server)
    done = kubetfx("submit", PIPELINE, "--no-run", "--host", kfp.url)
    assert done.exit_code == 0, done.output
    assert expected in getattr(done, stream)


@pytest.mark.parametrize("server", ["2.4.0", "2.0.5"])
def test_a_backend_whose_driver_rejects_the_pipeline_is_refused_before_uploading(
    standin, kubetfx, server
) -> None:
    kfp = standin(version=server)
    done = kubetfx("submit", PIPELINE, "--experiment", "e", "--host", kfp.url)
    assert done.exit_code == 2
    assert f"KFP server {server} cannot run pipeline.yaml" in one_line(done.stderr)
    assert "2.5.0 or later" in done.stderr
    assert kfp.calls("POST") == []


def test_strict_version_stops_before_uploading(standin, kubetfx) -> None:
    kfp = standin(version="3.0.0")
    done = kubetfx("submit", PIPELINE, "--experiment", "e", "--strict-version", "--host", kfp.url)
    assert done.exit_code == 2
    assert "has not checked" in one_line(done.stderr) and "--strict-version" in done.stderr
    assert kfp.calls("POST") == []


def test_version_ranges() -> None:
    assert backend_range("kfp-2.13.0") == ((2, 1, 0), (2, 5, 0))  # from the installed kfp's metadata
    assert backend_range("2.10.1") == ((2, 1, 0), (2, 4, 0))
    assert backend_range("2.16.0") == ((2, 16, 0), (3, 0, 0))
    assert backend_range("2.5.0") is None
    assert check_versions("kfp-2.5.0", "2.4.0", "p.yaml").compatible is None
    assert check_versions("kfp-2.13.0", "v2.3.0", "p.yaml").compatible is True
    assert check_versions("kfp-2.13.0", "1.8.5", "p.yaml").compatible is False


def test_multi_user_needs_a_namespace_and_uses_it(standin, kubetfx) -> None:
    kfp = standin(multi_user=True)
    missing = kubetfx("submit", PIPELINE, "--experiment", "e", "--host", kfp.url)
    assert missing.exit_code == 2 and "multi-user: pass --namespace" in one_line(missing.stderr)
    done = kubetfx("submit", PIPELINE, "--experiment", "e", "--host", kfp.url, "--namespace", "team-a")
    assert done.exit_code == 0, done.output
    assert kfp.calls("POST", r"/upload$")[0].query["namespace"] == "team-a"
    assert kfp.calls("POST", r"/experiments$")[0].body["namespace"] == "team-a"


# ----------------------------------------------------------------------------- errors and secrets


def test_unreachable_host_is_one_line_with_exit_2(kubetfx) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    done = kubetfx("submit", PIPELINE, "--experiment", "e", "--host", f"http://127.0.0.1:{port}")
    assert done.exit_code == 2
    line = one_line(done.stderr)
    assert f"cannot reach the KFP API at http://127.0.0.1:{port}" in line and "--host" in line
    listed = kubetfx("schedule", "list", "--host", f"http://127.0.0.1:{port}")
    assert listed.exit_code == 2 and "cannot reach" in one_line(listed.stderr)


def test_no_host_and_no_kube_config_is_one_line(
    kubetfx, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setattr("kubernetes.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION", str(tmp_path / "none"))
    done = kubetfx("schedule", "list")
    assert done.exit_code == 2 and "no KFP host: pass --host" in one_line(done.stderr)


def test_a_login_page_instead_of_the_api_is_one_line(kubetfx) -> None:
    class LoginPage(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            page = b"<html>sign in</html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), LoginPage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        done = kubetfx("schedule", "list", "--host", f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
    assert done.exit_code == 2 and "something other than JSON" in one_line(done.stderr)


def test_bad_credentials_are_one_line_and_the_token_never_shows(standin, kubetfx) -> None:
    kfp = standin(token=TOKEN)
    missing = kubetfx("submit", PIPELINE, "--experiment", "e", "--host", kfp.url)
    assert missing.exit_code == 2
    assert "401 Unauthorized" in one_line(missing.stderr) and "KUBETFX_KFP_TOKEN" in missing.stderr
    wrong = kubetfx("schedule", "list", "--host", kfp.url, "--existing-token", "not-" + TOKEN)
    assert wrong.exit_code == 2 and "403 Forbidden" in one_line(wrong.stderr)
    assert TOKEN not in wrong.stdout + wrong.stderr
    good = kubetfx(
        "submit", PIPELINE, "--experiment", "e", "--host", kfp.url, env={"KUBETFX_KFP_TOKEN": TOKEN}
    )
    assert good.exit_code == 0, good.output
    assert TOKEN not in good.stdout + good.stderr
    assert kfp.requests[-1].authorization == f"Bearer {TOKEN}"


def test_the_installed_command_never_prints_the_token(standin, tmp_path: Path) -> None:
    kfp = standin(token="right-" + TOKEN)
    env = {**os.environ, "HOME": str(tmp_path), "KUBETFX_KFP_TOKEN": TOKEN, "KUBETFX_KFP_HOST": kfp.url}
    kubetfx = str(Path(sys.executable).with_name("kubetfx"))
    for args in (["submit", PIPELINE, "--experiment", "e"], ["schedule", "list"]):
        done = subprocess.run([kubetfx, *args], capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 2, done.stderr
        assert "403 Forbidden" in one_line(done.stderr)
        assert TOKEN not in done.stdout + done.stderr


def test_invalid_cron_is_one_line_before_any_request(standin, kubetfx, tmp_path: Path) -> None:
    kfp = standin()
    for cron, field in (
        ("0 25 * * *", "hour field '25'"),
        ("* * * * * * *", "7 fields"),
        ("0 0 * * 7", "Sunday"),
    ):
        done = kubetfx("schedule", "apply", schedule_file(tmp_path, cron), "--host", kfp.url)
        assert done.exit_code == 2, done.output
        line = one_line(done.stderr)
        assert "schedule 'nightly'" in line and field in line
    assert kfp.requests == []


def test_cron_conversion() -> None:
    assert kfp_cron("30 2 * * 1-5") == "0 30 2 * * 1-5"
    assert kfp_cron("0 0 9 ? * MON-FRI") == "0 0 9 ? * MON-FRI"
    assert kfp_cron("*/15 * * * *") == "0 */15 * * * *"
    assert kfp_cron("@every 1h30m") == "@every 1h30m"
    for bad in ("", "0 0 * * 1/0", "0 0 32 * *", "0 5-1 * * *", "0 0 * JANUARY *", "@sometimes"):
        with pytest.raises(ScheduleError):
            kfp_cron(bad, "s")


# ----------------------------------------------------------------------------- schedules


def test_schedule_apply_creates_leaves_and_replaces_without_killing_runs(
    standin, kubetfx, tmp_path: Path
) -> None:
    kfp = standin()
    upload(kubetfx, kfp.url)
    path = schedule_file(tmp_path)

    created = kubetfx("schedule", "apply", path, "--host", kfp.url)
    assert created.exit_code == 0, created.output
    bodies = {c.body["display_name"]: c.body for c in kfp.calls("POST", r"/recurringruns$")}
    assert set(bodies) == {"nightly", "weekly"}
    nightly = bodies["nightly"]
    assert nightly["trigger"]["cron_schedule"]["cron"] == "0 0 2 * * *"  # 5 fields -> KFP's 6
    assert nightly["max_concurrency"] == 2 and nightly["no_catchup"] is True and nightly["mode"] == "ENABLE"
    assert nightly["runtime_config"]["parameters"] == {"epochs": 5, "fail_on_anomalies": False}
    assert "kubetfx schedule spec=" in nightly["description"]
    assert bodies["weekly"]["no_catchup"] is False
    assert len(kfp.calls("POST", r"/experiments$")) == 1

    again = kubetfx("schedule", "apply", path, "--host", kfp.url)
    assert again.exit_code == 0, again.output
    assert "nightly: unchanged" in again.stdout and "weekly: unchanged" in again.stdout
    assert len(kfp.calls("POST", r"/recurringruns")) == 2

    old_id = next(r for r in kfp.recurring_runs.values() if r["display_name"] == "nightly")[
        "recurring_run_id"
    ]
    in_flight = kfp.add_run(old_id, "RUNNING")
    changed = schedule_file(tmp_path, "30 2 * * *")
    before = len(kfp.requests)
    dry = kubetfx("schedule", "apply", changed, "--dry-run", "--host", kfp.url)
    assert dry.exit_code == 0, dry.output
    assert "replace   nightly: cron '0 0 2 * * *' -> '0 30 2 * * *'" in dry.stdout
    assert "dry run: nothing changed" in dry.stdout
    assert [r.method for r in kfp.requests[before:]] == ["GET"] * (len(kfp.requests) - before)

    before = len(kfp.requests)
    applied = kubetfx("schedule", "apply", changed, "--host", kfp.url)
    assert applied.exit_code == 0, applied.output
    writes = [(r.method, r.path) for r in kfp.requests[before:] if r.method != "GET"]
    assert writes == [
        ("POST", "/apis/v2beta1/recurringruns"),
        ("POST", f"/apis/v2beta1/recurringruns/{old_id}:disable"),
    ]  # created first, then the old one disabled; nothing deleted
    assert kfp.recurring_runs[old_id]["mode"] == "DISABLE"
    assert kfp.runs[in_flight["run_id"]]["state"] == "RUNNING"
    new = kfp.calls("POST", r"/recurringruns$")[-1].body
    assert new["display_name"] == "nightly" and new["trigger"]["cron_schedule"]["cron"] == "0 30 2 * * *"
    assert new["service_account"] == "kubetfx-pipeline-runner"
    assert "weekly: unchanged" in applied.stdout

    listed = kubetfx("schedule", "list", "--host", kfp.url)
    assert listed.exit_code == 0, listed.output
    nightly_row = next(line for line in listed.stdout.splitlines() if line.startswith("nightly"))
    assert "enabled" in nightly_row and "0 30 2 * * *" in nightly_row and nightly_row.split()[-1] == "1"

    paused = kubetfx("schedule", "pause", "nightly", "--host", kfp.url)
    assert paused.exit_code == 0 and "nightly: paused" in paused.stdout
    new_id = kfp.calls("POST", r":disable$")[-1].path.split("/")[-1].split(":")[0]
    assert new_id != old_id and kfp.recurring_runs[new_id]["mode"] == "DISABLE"
    assert "paused" in kubetfx("schedule", "list", "--host", kfp.url).stdout
    resumed = kubetfx("schedule", "resume", "nightly", "--host", kfp.url)
    assert resumed.exit_code == 0 and kfp.recurring_runs[new_id]["mode"] == "ENABLE"

    refused = kubetfx("schedule", "delete", "nightly", "--host", kfp.url)
    assert refused.exit_code == 2 and "without --yes" in refused.stderr
    assert in_flight["run_id"] in refused.stderr and "stop runs in flight" in refused.stderr
    assert kfp.calls("DELETE") == []

    busy = kubetfx("schedule", "delete", "nightly", "--superseded-only", "--yes", "--host", kfp.url)
    assert busy.exit_code == 0, busy.output
    assert f"kept superseded recurring run {old_id}" in busy.stdout and kfp.calls("DELETE") == []
    kfp.runs[in_flight["run_id"]]["state"] = "SUCCEEDED"
    old_only = kubetfx("schedule", "delete", "nightly", "--superseded-only", "--yes", "--host", kfp.url)
    assert old_only.exit_code == 0, old_only.output
    assert [r.path for r in kfp.calls("DELETE")] == [f"/apis/v2beta1/recurringruns/{old_id}"]

    current_run = kfp.add_run(new_id, "RUNNING")
    everything = kubetfx("schedule", "delete", "nightly", "--yes", "--host", kfp.url)
    assert everything.exit_code == 0, everything.output
    assert current_run["run_id"] in everything.stderr  # warned, then deleted as asked
    assert {r["display_name"] for r in kfp.recurring_runs.values()} == {"weekly"}
    assert kfp.runs[current_run["run_id"]]["state"] == "CANCELED"  # what deleting does to runs in flight
    gone = kubetfx("schedule", "pause", "nightly", "--host", kfp.url)
    assert gone.exit_code == 2 and "no kubetfx-managed schedule 'nightly'" in one_line(gone.stderr)


def test_replacing_a_paused_schedule_keeps_it_paused_and_finishes_interrupted_changes(
    standin, kubetfx, tmp_path: Path
) -> None:
    kfp = standin()
    upload(kubetfx, kfp.url)
    assert kubetfx("schedule", "apply", schedule_file(tmp_path), "--host", kfp.url).exit_code == 0
    assert kubetfx("schedule", "pause", "nightly", "--host", kfp.url).exit_code == 0
    done = kubetfx("schedule", "apply", schedule_file(tmp_path, "0 4 * * *"), "--host", kfp.url)
    assert done.exit_code == 0, done.output
    assert kfp.calls("POST", r"/recurringruns$")[-1].body["mode"] == "DISABLE"
    assert "(paused)" in done.stdout

    # An old recurring run left enabled (say, apply was interrupted) is disabled on the next apply.
    older_first = sorted(
        (r for r in kfp.recurring_runs.values() if r["display_name"] == "nightly"),
        key=lambda r: r["created_at"],
    )
    older_first[0].update(mode="ENABLE", status="ENABLED")
    again = kubetfx("schedule", "apply", schedule_file(tmp_path, "0 4 * * *"), "--host", kfp.url)
    assert again.exit_code == 0, again.output
    assert f"disabled superseded recurring run {older_first[0]['recurring_run_id']}" in again.stdout


def test_schedule_apply_reports_missing_pipelines_and_unknown_fields(
    standin, kubetfx, tmp_path: Path
) -> None:
    kfp = standin()
    missing = kubetfx("schedule", "apply", schedule_file(tmp_path), "--host", kfp.url)
    assert missing.exit_code == 2 and "kubetfx submit" in one_line(missing.stderr)
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "experiment: e\nschedules:\n  - {name: a, pipeline: p, cron: '@daily', maxConcurrency: 2}\n"
    )
    done = kubetfx("schedule", "apply", str(bad), "--host", kfp.url)
    assert done.exit_code == 2 and "unknown field 'maxConcurrency'" in one_line(done.stderr)
    upload(kubetfx, kfp.url)
    wrong_param = tmp_path / "param.yaml"
    wrong_param.write_text(
        "experiment: e\nschedules:\n"
        "  - {name: a, pipeline: kubetfx-training, cron: '@daily', params: {epochs: x}}\n"
    )
    typed = kubetfx("schedule", "apply", str(wrong_param), "--host", kfp.url)
    assert typed.exit_code == 2 and "'epochs'" in one_line(typed.stderr)


def test_the_example_schedule_file_is_valid() -> None:
    from kubetfx.kfpclient.schedule_file import load_schedules

    specs = load_schedules(REPO / "docs/schedules.example.yaml")
    assert specs and all(s.kfp_cron for s in specs)


def test_help_does_not_import_kfp_client() -> None:
    code = (
        "import sys; from kubetfx.cli import cli; cli(['--help'], standalone_mode=False);"
        "print(sorted(m for m in sys.modules if m.startswith(('kfp.client', 'kfp_server_api'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("[]")
