"""Evolving a curated schema: see what new data would change, then accept it."""

from __future__ import annotations

import difflib


def propose(schema_file: str, data_uri: str) -> tuple[str, str]:
    """(unified diff, proposed schema text) for ``schema_file`` to accept ``data_uri``.

    The proposal is TFDV's ``update_schema``: the smallest change to the curated schema
    (new domain values, looser presence, new features) that accepts the data's statistics.
    A new string feature whose values are no closed set (an ID, free text, a date; see
    SchemaGen) is proposed without a domain, as SchemaGen would infer it; the curated
    features' domains are left as the curator wrote them.
    """
    import tensorflow_data_validation as tfdv

    from kubetfx.components.example_gen.executor import read_table
    from kubetfx.components.schema_gen.executor import load_schema_file, open_domains, profile_strings
    from kubetfx.components.statistics_gen.executor import statistics_of_table

    curated = load_schema_file(schema_file)
    stats = statistics_of_table(read_table(data_uri), "data")
    proposed = tfdv.update_schema(curated, stats)
    known = {f.name for f in curated.feature}
    new_profiles = {n: p for n, p in profile_strings([stats]).items() if n not in known}
    open_domains(proposed, new_profiles)
    before, after = str(curated), str(proposed)
    diff = "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=f"{schema_file} (curated)",
            tofile=f"proposed for {data_uri}",
        )
    )
    return diff, after
