"""The MySQL/MariaDB metadata store, on a real MariaDB server."""

import re
from pathlib import Path

import pytest
from ml_metadata.proto import metadata_store_pb2 as pb

from kubetfx.lineage.record import props
from kubetfx.lineage.store import connect

REPO = Path(__file__).resolve().parents[2]
PIPELINE = str(REPO / "pipelines/training/pipeline.yaml")


def test_reference_pipeline_records_lineage_in_mariadb(
    workdir: Path, cli, mysql_url: str, mariadb: dict
) -> None:
    env = {"KUBETFX_METADATA": mysql_url}
    first = cli("run", PIPELINE, env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    second = cli("run", PIPELINE, env=env)
    assert re.search(r"^trainer\s+CACHED", second.stdout, re.MULTILINE), second.stdout
    # The validator reads its drift baseline from lineage: it runs again, against run 1's statistics.
    assert re.search(r"^example-validator\s+SUCCEEDED", second.stdout, re.MULTILINE), second.stdout
    # The password is in nothing a user sees or keeps.
    for text in (first.stdout, first.stderr, second.stdout):
        assert mariadb["password"] not in text
    assert ":***@127.0.0.1" in first.stdout
    for log in workdir.glob("root/**/.kubetfx/*"):
        assert mariadb["password"] not in log.read_text(errors="replace"), log
    listed = cli("runs", env=env)
    assert listed.returncode == 0 and listed.stdout.count("SUCCEEDED") == 2
    # The lineage questions work on MariaDB too, and leak nothing.
    audit = cli("audit", "penguins:1", env=env)
    assert audit.returncode == 0 and "| decision | BLESSED |" in audit.stdout, audit.stderr
    assert "| sex=female |" in audit.stdout and mariadb["password"] not in audit.stdout
    provenance = cli("lineage", "model", "penguins:1", env=env)
    assert provenance.returncode == 0 and "example-gen (execution" in provenance.stdout

    store = connect(mysql_url)
    executions = store.mlmd.get_executions()
    states = [e.last_known_state for e in executions]
    # Run 1: eleven tasks. Run 2: the four data and training tasks and the serving check
    # (the same model) cached; the data fingerprint, the validator, the resolver and the
    # model card never are (they look at the data or read lineage), and the evaluation (now
    # against the served model) and the pusher ran again.
    assert states.count(pb.Execution.CACHED) == 5 and states.count(pb.Execution.COMPLETE) == 11 + 6
    for e in executions:
        assert mariadb["password"] not in str(props(e))
    [artifact] = [a for a in store.mlmd.get_artifacts() if "examples" in a.uri]
    assert props(artifact)["row_count_train"] + props(artifact)["row_count_eval"] == 344


def test_wrong_password_and_unreachable_server_are_one_line_errors(workdir: Path, cli, mariadb: dict) -> None:
    wrong = f"mysql://{mariadb['user']}:not-the-password@127.0.0.1:{mariadb['port']}/mlmd_wrong"
    result = cli("runs", "--metadata", wrong)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "wrong password" in result.stderr and "not-the-password" not in result.stderr

    unreachable = f"mysql://{mariadb['user']}:{mariadb['password']}@127.0.0.1:1/mlmd"
    result = cli("run", PIPELINE, "--metadata", unreachable)
    assert result.returncode == 2
    assert "cannot reach metadata store" in result.stderr and mariadb["password"] not in result.stderr
    assert not (workdir / "root").exists()


def test_a_connection_the_server_would_accept_is_tried_again(mysql_url: str, monkeypatch) -> None:
    """ML Metadata reports any failed MySQL connection the same way ("mysql_real_connect
    failed", no reason). One the server itself accepts a moment later (a handshake lost on
    a starved machine, too many connections) is tried again, not called a wrong password."""
    from kubetfx.lineage import store

    real = store.metadata_store.MetadataStore
    calls = []

    def fails_twice(*args, **kwargs):
        calls.append(1)
        if len(calls) <= 2:
            raise RuntimeError("mysql_real_connect failed: errno: , error: ")
        return real(*args, **kwargs)

    monkeypatch.setattr(store.metadata_store, "MetadataStore", fails_twice)
    opened = store.Store(store.parse_metadata_url(mysql_url))
    assert len(calls) == 3
    assert opened.mlmd.get_artifact_types() == []


def test_a_refusal_is_not_tried_again(mariadb: dict, monkeypatch) -> None:
    from kubetfx.errors import MetadataStoreError
    from kubetfx.lineage import store

    real = store.metadata_store.MetadataStore
    calls = []

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(store.metadata_store, "MetadataStore", counted)
    wrong = f"mysql://{mariadb['user']}:not-the-password@127.0.0.1:{mariadb['port']}/mlmd_refused"
    with pytest.raises(MetadataStoreError) as refused:
        store.Store(store.parse_metadata_url(wrong))
    assert len(calls) == 1
    assert f"refused user '{mariadb['user']}' (wrong password?)" in str(refused.value)
    assert "not-the-password" not in str(refused.value)


def test_a_failure_the_server_does_not_explain_is_reported_as_it_is(mysql_url: str, monkeypatch) -> None:
    from kubetfx.errors import MetadataStoreError
    from kubetfx.lineage import store

    failures = {
        "bare": "mysql_real_connect failed: errno: , error: ",
        "query": "mysql_query failed: errno: 1142",
    }
    calls = []

    def fails(*args, **kwargs):
        calls.append(1)
        raise RuntimeError(failures[kind])

    monkeypatch.setattr(store.metadata_store, "MetadataStore", fails)
    monkeypatch.setattr(store, "MYSQL_CONNECT_RETRY_SECONDS", 1.0)
    kind = "bare"
    with pytest.raises(MetadataStoreError, match="kept failing .* while the server accepted user"):
        store.Store(store.parse_metadata_url(mysql_url))
    assert len(calls) > 1  # tried again for MYSQL_CONNECT_RETRY_SECONDS
    kind, calls[:] = "query", []
    with pytest.raises(MetadataStoreError, match="cannot open metadata store .*: mysql_query failed") as err:
        store.Store(store.parse_metadata_url(mysql_url))
    assert len(calls) == 1 and "wrong password" not in str(err.value)


def test_a_deadlock_while_a_store_is_opened_is_tried_again() -> None:
    """Runs that open one fresh MariaDB store at once register ML Metadata's types together;
    the store's constructor raises InnoDB's deadlock as a RuntimeError (seen with eight
    concurrent runs): contention, tried again, unlike a refused connection."""
    from kubetfx.lineage.store import _is_contention

    seen = (
        "mysql_query  SELECT `id`, `name` FROM `Type`  WHERE name IN ('mlmd.Dataset') LOCK IN SHARE MODE;"
        " returned an unexpected NULL result_set: errno: Deadlock found when trying to get lock; try"
        " restarting transaction, error: Deadlock found when trying to get lock; try restarting transaction"
    )
    assert _is_contention(RuntimeError(seen))
    assert not _is_contention(RuntimeError("mysql_real_connect failed: errno: , error: "))
