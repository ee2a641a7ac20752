"""``kubetfx schema diff`` on real data: new free columns are proposed without a domain."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from kubetfx.fingerprint import local_path
from kubetfx.schema_tools import propose

CURATED = "pkg://kubetfx.schemas/penguins/schema.pbtxt"


def test_new_id_and_date_columns_are_proposed_open_and_a_new_category_closed(tmp_path: Path) -> None:
    tidy = pd.read_csv(local_path("pkg://palmerpenguins/data/penguins.csv"), keep_default_na=False)
    raw = pd.read_csv(local_path("pkg://palmerpenguins/data/penguins-raw.csv"), keep_default_na=False)
    assert len(tidy) == len(raw)  # the same 344 penguins, in the same order
    frame = tidy.assign(**{c: raw[c] for c in ("Date Egg", "Individual ID", "Clutch Completion")})
    data = tmp_path / "with-raw-columns.csv"
    frame.to_csv(data, index=False)

    diff, text = propose(CURATED, str(data))
    proposed = text_format.Parse(text, schema_pb2.Schema())
    by_name = {f.name: f for f in proposed.feature}
    assert not by_name["Date Egg"].HasField("domain")
    assert not by_name["Individual ID"].HasField("domain")
    clutch = by_name["Clutch Completion"]
    domain = next(d for d in proposed.string_domain if d.name == clutch.domain)
    assert sorted(domain.value) == ["No", "Yes"]
    assert "2007-11-11" not in text and "N1A1" not in text
    assert '+  name: "Date Egg"' in diff
    # The curated features are as the curator wrote them.
    curated = text_format.Parse(Path(local_path(CURATED)).read_text(), schema_pb2.Schema())
    for feature in curated.feature:
        assert by_name[feature.name] == feature
