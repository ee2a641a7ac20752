"""data_fingerprint's KFP interface: the content hash of the data a run is about to read."""

from typing import NamedTuple

from kubetfx.dsl import component


@component
def data_fingerprint(input_uri: str) -> NamedTuple("Outputs", [("fingerprint", str), ("span", int)]):
    """Hashes the content of the files ``input_uri`` names, as ExampleGen would read them.

    Give its ``fingerprint`` to ExampleGen's ``kubetfx_data_fingerprint`` input: KFP's cache
    key then changes with the data (not only with the URI string), so a run on unchanged
    data reuses ExampleGen and everything downstream from KFP's cache, and a run on new
    data at the same URI does not. Never cache this task itself.

    Args:
        input_uri: A file, a folder of .csv/.parquet files, a glob pattern, or a pattern
            with a ``{SPAN}`` placeholder (the newest span counts), as for ExampleGen.

    Returns:
        fingerprint: A hash of the files' contents (ExampleGen's ``fingerprint``).
        span: The span the files belong to (0 without ``{SPAN}``).
    """
    from kubetfx.components.data_fingerprint import executor

    result = executor.run(input_uri)
    print(f"data_fingerprint: {result.files} file(s), span {result.span}, {result.fingerprint[:12]}")
    outputs = NamedTuple("Outputs", [("fingerprint", str), ("span", int)])
    return outputs(result.fingerprint, result.span)
