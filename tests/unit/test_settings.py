"""Metadata URLs parse, and passwords never show."""

from __future__ import annotations

import pytest

from kubetfx.errors import ConfigError
from kubetfx.settings import parse_metadata_url, redact


def test_sqlite_mysql_and_grpc_urls() -> None:
    assert parse_metadata_url("sqlite:////abs/m.sqlite").path == "/abs/m.sqlite"
    assert parse_metadata_url("sqlite:///rel/m.sqlite").path == "rel/m.sqlite"
    my = parse_metadata_url("mysql://mlmd:s3cr%40t@db.local:3307/meta")
    assert (my.user, my.password, my.host, my.port, my.database) == (
        "mlmd",
        "s3cr@t",
        "db.local",
        3307,
        "meta",
    )
    assert "s3cr" not in str(my) and "s3cr" not in repr(my) and ":***@" in str(my)
    grpc = parse_metadata_url("grpc://localhost:8080")
    assert (grpc.kind, grpc.host, grpc.port) == ("grpc", "localhost", 8080)


def test_mysql_password_can_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBETFX_METADATA_PASSWORD", "from-secret")
    assert parse_metadata_url("mysql://mlmd@db:3306/meta").password == "from-secret"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgres://x@y/z", "unknown metadata store"),
        ("mysql://db:3306/meta", "incomplete"),
        ("grpc://host", "incomplete"),
        ("sqlite:///", "names no file"),
        ("mysql://u:pw@h:notaport/d", "bad port"),
    ],
)
def test_bad_urls_say_what_to_write(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        parse_metadata_url(url)
    assert ":pw@" not in str(err.value)


def test_redact_hides_passwords_in_any_text() -> None:
    text = "failed: mysql://root:hunter2@127.0.0.1:3306/m and https://u:tok@host/x"
    assert "hunter2" not in redact(text) and "tok@" not in redact(text)
    assert "mysql://root:***@127.0.0.1:3306/m" in redact(text)


def test_a_relative_sqlite_url_resolves_against_the_working_folder(tmp_path, monkeypatch) -> None:
    from kubetfx.settings import resolve_metadata_url

    monkeypatch.chdir(tmp_path)
    assert resolve_metadata_url("sqlite:///rel/m.sqlite") == f"sqlite:///{tmp_path}/rel/m.sqlite"
    assert resolve_metadata_url("sqlite:////abs/m.sqlite") == "sqlite:////abs/m.sqlite"
    monkeypatch.setenv("KUBETFX_METADATA", "sqlite:///env.sqlite")
    assert resolve_metadata_url() == f"sqlite:///{tmp_path}/env.sqlite"
    assert resolve_metadata_url("mysql://u@h:3306/d") == "mysql://u@h:3306/d"
