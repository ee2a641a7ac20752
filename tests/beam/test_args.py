"""``beam_pipeline_args``: one parse for every component, the DirectRunner's download-free
defaults, and errors that name the argument (Beam itself would drop an unknown option)."""

from __future__ import annotations

import pytest

from kubetfx import beam
from kubetfx.errors import ConfigError

PORTABLE = [
    "--runner=PortableRunner",
    "--job_endpoint=embed",
    "--environment_type=EXTERNAL",
    "--environment_config=localhost:50000",
]


def test_no_runner_gets_the_direct_runner_defaults() -> None:
    assert beam.beam_args([]) == list(beam.DEFAULT_ARGS)
    assert beam.beam_args(None) == list(beam.DEFAULT_ARGS)
    with_workers = beam.beam_args(["--direct_num_workers=2"])
    assert with_workers[: len(beam.DEFAULT_ARGS)] == list(beam.DEFAULT_ARGS)
    assert with_workers[-1] == "--direct_num_workers=2"  # the last one wins in Beam
    options = beam.pipeline_options(["--direct_num_workers=2"]).get_all_options()
    assert (options["runner"], options["direct_num_workers"]) == ("DirectRunner", 2)


@pytest.mark.parametrize(
    "given",
    [
        PORTABLE,
        " ".join(PORTABLE),
        '["' + '", "'.join(PORTABLE) + '"]',
    ],
    ids=["list", "space-separated", "json"],
)
def test_a_list_a_string_or_json_give_the_same_options(given: object) -> None:
    assert beam.beam_args(given) == PORTABLE  # type: ignore[arg-type]
    assert beam.runner_name(beam.beam_args(given)) == "PortableRunner"  # type: ignore[arg-type]


def test_runner_options_of_flink_spark_and_dataflow_are_known() -> None:
    for args in (
        ["--runner=FlinkRunner", "--flink_master=flink:8081", "--environment_type=DOCKER"],
        ["--runner=SparkRunner", "--spark_master_url=spark://spark:7077"],
        ["--runner=DataflowRunner", "--project=p", "--region=europe-west1", "--temp_location=gs://b/tmp"],
        ["--runner", "PortableRunner", "--job_endpoint", "localhost:8099"],
    ):
        assert beam.beam_args(args) == args


@pytest.mark.parametrize(
    ("given", "named"),
    [
        (["--runer=FlinkRunner"], "'--runer=FlinkRunner' is not an option"),
        (["runner=DirectRunner"], "'runner=DirectRunner' is not a Beam option"),
        (["--direct_num_workers=two"], "'--direct_num_workers=two': Beam cannot parse this value"),
        (["--runner=DirectRunner", 4], "4 is not a string"),
        ("[--runner", "not a JSON list"),
        ("--job_endpoint='unclosed", "cannot split into options"),
    ],
)
def test_bad_arguments_are_named(given: object, named: str) -> None:
    with pytest.raises(ConfigError, match="beam_pipeline_args") as caught:
        beam.beam_args(given)  # type: ignore[arg-type]
    assert named in str(caught.value)
