"""ExampleGen's KFP interface: the typed signature is the spec; the body calls the executor."""

from typing import NamedTuple

from kfp.dsl import Dataset, Output

from kubetfx.dsl import component


@component
def example_gen(
    input_uri: str,
    examples: Output[Dataset],
    input_format: str = "auto",
    splits: str = "train:2,eval:1",
    partition_feature: str = "",
    version: int = 0,
    beam_pipeline_args: list = [],  # noqa: B006 - KFP reads the default from the signature
) -> NamedTuple("Outputs", [("span", int), ("fingerprint", str), ("row_count", int)]):
    """Reads CSV or Parquet data into split TFRecords of tf.Example.

    Args:
        input_uri: A file, a folder of .csv/.parquet files, a glob pattern, or a pattern
            with a ``{SPAN}`` placeholder (the newest span is taken). ``pkg://PKG/PATH``
            names data shipped in an installed package.
        examples: Output Examples (``system.Dataset``): ``Split-<name>/data_tfrecord-*.gz``,
            with split names, span, version, content fingerprint and row counts in metadata.
        input_format: ``auto`` (from file names), ``csv`` or ``parquet``.
        splits: Split names and hash buckets, e.g. ``train:2,eval:1``.
        partition_feature: Column whose value decides the split (rows with equal values
            land together); empty hashes the whole row.
        version: The data version recorded with the span.
        beam_pipeline_args: Beam options (e.g. ``["--runner=PortableRunner",
            "--job_endpoint=..."]``): given, the input is read, split and written by Beam
            workers (the same examples); empty: in this process. See docs/beam.md.

    Returns:
        span: The span that was read (0 without ``{SPAN}``).
        fingerprint: A hash of the input files' contents.
        row_count: Rows read, over all splits.
    """
    from kubetfx.components.example_gen import executor

    from kubetfx.beam import split_args

    run = executor.run
    if split_args(beam_pipeline_args):  # Beam options given: read and split on Beam with them
        import functools

        from kubetfx.components.example_gen import beam

        run = functools.partial(beam.run, beam_pipeline_args=beam_pipeline_args)
    result = run(
        input_uri,
        examples.path,
        input_format=input_format,
        splits=splits,
        partition_feature=partition_feature,
        version=version,
    )
    examples.metadata.update(result.metadata())
    outputs = NamedTuple("Outputs", [("span", int), ("fingerprint", str), ("row_count", int)])
    return outputs(result.span, result.fingerprint, sum(result.row_counts.values()))
