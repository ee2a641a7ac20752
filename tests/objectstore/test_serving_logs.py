"""Serving logs read from an object store (moto's S3 server, see conftest.py): a file, a
folder and a glob of KServe CloudEvent JSON lines, as serving_drift's ``logs_uri`` takes them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kubetfx.components.serving_drift import logs

from kubetfx import storage


def _events(first: int, count: int) -> str:
    lines = []
    for n in range(first, first + count):
        common = {
            "specversion": "1.0",
            "id": f"r{n}",
            "source": "penguins",
            "time": f"2027-01-15T08:{n:02d}:00Z",
        }
        body = {"instances": [{"island": "Biscoe", "body_mass_g": 4000 + n, "sex": None}]}
        lines.append({**common, "type": logs.REQUEST_EVENT, "data": body})
        lines.append(
            {**common, "type": logs.RESPONSE_EVENT, "data": {"predictions": [{"classes": "Gentoo"}]}}
        )
    return "".join(json.dumps(line) + "\n" for line in lines)


def test_a_file_a_folder_and_a_glob_of_logs_in_the_store(s3_env: str, tmp_path: Path) -> None:
    local = tmp_path / "logs"
    local.mkdir()
    (local / "part-0.jsonl").write_text(_events(0, 3))
    (local / "part-1.jsonl").write_text(_events(3, 2))
    uri = f"s3://{s3_env}/serving/penguins"
    assert storage.upload(str(local), uri) == 2
    for where, ids in (
        (f"{uri}/part-1.jsonl", ["r3", "r4"]),
        (uri, ["r0", "r1", "r2", "r3", "r4"]),
        (f"{uri}/part-*.jsonl", ["r0", "r1", "r2", "r3", "r4"]),
    ):
        requests = logs.read_requests(where)
        assert [r.id for r in requests] == ids, where
        assert all(r.predictions == ["Gentoo"] for r in requests)
    assert requests[4].rows == [{"island": ["Biscoe"], "body_mass_g": [4004], "sex": []}]
    with pytest.raises(Exception, match="no serving log files|no such file"):
        logs.read_requests(f"{uri}/none-*.jsonl")
