"""StatisticsGen's KFP interface: the typed signature is the spec; the body calls the executor."""

from typing import NamedTuple

from kfp.dsl import HTML, Artifact, Dataset, Input, Output

from kubetfx.dsl import component


@component
def statistics_gen(
    examples: Input[Dataset],
    statistics: Output[Artifact],
    report: Output[HTML],
    sample_rate: float = 1.0,
    in_memory_max_mb: int = 4096,
    beam_pipeline_args: list = [],  # noqa: B006 - KFP reads the default from the signature
) -> NamedTuple("Outputs", [("num_examples", int)]):
    """Computes TFDV statistics for every split, with a self-contained HTML view.

    Args:
        examples: Examples (``Split-<name>/data_tfrecord-*.gz``) from ExampleGen.
        statistics: Output ExampleStatistics: ``Split-<name>/FeatureStats.pb`` per split
            (TFX layout), kind ``kubetfx.ExampleStatistics``.
        report: Output HTML view of the statistics (renders offline, in the Kubeflow UI).
        sample_rate: Fraction of examples to use, in (0, 1]; for very large inputs.
        in_memory_max_mb: A split whose files total at most this many MB (compressed)
            is computed in this process, batch by batch; larger ones go through Beam.
        beam_pipeline_args: Beam options, e.g. ``["--runner=PortableRunner",
            "--job_endpoint=..."]``: given, every split is computed on Beam with them;
            empty: splits over ``in_memory_max_mb`` go through Beam's DirectRunner in
            multi-process mode on all cores. See docs/beam.md.

    Returns:
        num_examples: Examples over all splits.
    """
    from kubetfx.components.statistics_gen import executor, outputs

    result = executor.run(
        examples.path,
        statistics.path,
        sample_rate=sample_rate,
        in_memory_max_mb=in_memory_max_mb,
        beam_pipeline_args=beam_pipeline_args,
    )
    title = f"Statistics of {examples.uri}"
    published = outputs.publish(
        result, statistics=statistics, report=report, examples_metadata=examples.metadata, title=title
    )
    return NamedTuple("Outputs", [("num_examples", int)])(published)
