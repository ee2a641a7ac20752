"""``kubetfx promote`` and ``kubetfx aliases`` against a real SQLite ML Metadata store."""

from __future__ import annotations

from collections.abc import Callable

from click.testing import CliRunner

from kubetfx.cli import cli
from kubetfx.lineage import aliases
from kubetfx.lineage.store import Store


def _url(store: Store) -> str:
    return f"sqlite:///{store.config.path}"


def test_promote_moves_an_alias_and_aliases_lists_it(store: Store, push: Callable[..., int]) -> None:
    push(1)
    push(2)
    runner = CliRunner()
    done = runner.invoke(
        cli,
        [
            "promote",
            "penguins:1",
            "--alias",
            "production",
            "--reason",
            "first",
            "--actor",
            "alice",
            "--metadata",
            _url(store),
        ],
    )
    assert done.exit_code == 0, done.output
    assert done.output.strip() == "penguins:production -> version 1"
    done = runner.invoke(
        cli,
        ["promote", "penguins:2", "--alias", "production", "--alias", "candidate", "--metadata", _url(store)],
    )
    assert done.exit_code == 0, done.output
    assert done.output.splitlines() == [
        "penguins:production -> version 2 (was version 1)",
        "penguins:candidate -> version 2",
    ]
    # NAME:ALIAS names the version that alias holds now
    done = runner.invoke(
        cli, ["promote", "penguins:production", "--alias", "stable", "--metadata", _url(store)]
    )
    assert done.exit_code == 0 and "penguins:stable -> version 2" in done.output
    assert aliases.aliases(store, "penguins") == {"candidate": 2, "production": 2, "stable": 2}

    listed = runner.invoke(cli, ["aliases", "penguins", "--metadata", _url(store)])
    assert listed.exit_code == 0, listed.output
    rows = {line.split()[0]: line.split()[1] for line in listed.output.splitlines()[2:]}
    assert rows == {"candidate": "2", "production": "2", "stable": "2"}
    moves = runner.invoke(cli, ["aliases", "penguins", "--history", "--metadata", _url(store)])
    assert moves.exit_code == 0, moves.output
    lines = moves.output.splitlines()[2:]
    assert len(lines) == 4 and lines[-1].split()[:2] == ["production", "1"] and "alice" in lines[-1]
    assert lines[-1].rstrip().endswith("first")

    # The push history says which aliases each version holds now.
    pushes = runner.invoke(cli, ["lineage", "pushes", "penguins", "--metadata", _url(store)])
    assert pushes.exit_code == 0, pushes.output
    header, _, *rows = pushes.output.splitlines()
    assert header.rstrip().endswith("aliases now")
    by_model = {row.split()[0]: row for row in rows}
    assert by_model["penguins:2"].rstrip().endswith("candidate, production, stable")
    assert not by_model["penguins:1"].rstrip().endswith(("production", "stable", "candidate"))


def test_promote_refuses_what_it_cannot_do(store: Store, push: Callable[..., int]) -> None:
    push(1)
    runner = CliRunner()
    never = runner.invoke(cli, ["promote", "penguins:9", "--alias", "production", "--metadata", _url(store)])
    assert never.exit_code == 2 and "version 9 of model 'penguins' was never pushed" in never.output
    bad = runner.invoke(cli, ["promote", "penguins:1", "--alias", "Prod", "--metadata", _url(store)])
    assert bad.exit_code == 2 and "alias 'Prod' is not valid" in bad.output
    noref = runner.invoke(cli, ["promote", "penguins", "--alias", "production", "--metadata", _url(store)])
    assert noref.exit_code == 2 and "MODEL_NAME:VERSION" in noref.output
    unknown = runner.invoke(
        cli, ["promote", "penguins:staging", "--alias", "production", "--metadata", _url(store)]
    )
    assert unknown.exit_code == 2 and "'staging' is neither a version number nor an alias" in unknown.output
    none = runner.invoke(cli, ["aliases", "penguins", "--metadata", _url(store)])
    assert none.exit_code == 2 and "no aliases of 'penguins'" in none.output
    assert aliases.history(store, "penguins") == []
