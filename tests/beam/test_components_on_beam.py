"""``beam_pipeline_args`` from a pipeline parameter to a component's Beam path, run as KFP
runs it: kfp's own local runner executes ExampleGen's compiled command in a process of its
own, which submits its Beam pipeline to the worker pool's processes. (The other data
tasks take the parameter the same way; their Beam paths are tested directly.)"""

# No `from __future__ import annotations`: KFP reads the pipeline's annotations as types.
import glob
import os
from collections.abc import Iterator
from typing import Any

import pytest
from kfp import dsl, local
from kfp.local import config as local_config
from kubetfx.components import example_gen

from kubetfx.lineage.query import list_runs, run_tasks
from kubetfx.lineage.store import connect

pytestmark = pytest.mark.filterwarnings("ignore:You may be attemping to run a task:RuntimeWarning")
PIPELINE_NAME = "beam-data-tasks"


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A kfp.local session with its own pipeline root and lineage store (kfp.local's
    configuration is process-global: cleared afterwards)."""
    base = tmp_path_factory.mktemp("kfp-local-beam")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("KUBETFX_METADATA", f"sqlite:///{base}/mlmd.sqlite")
        env.setenv("KUBETFX_PIPELINE_NAME", PIPELINE_NAME)
        env.delenv("KUBETFX_RUN_ID", raising=False)
        env.delenv("KUBETFX_TASK_NAME", raising=False)
        local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(base / "root"))
        try:
            yield {"base": base, "store": connect(f"sqlite:///{base}/mlmd.sqlite")}
        finally:
            local_config.LocalExecutionConfig.instance = None


@dsl.pipeline(name=PIPELINE_NAME)
def data_tasks(input_uri: str, beam_pipeline_args: list) -> dsl.Artifact:
    return example_gen(input_uri=input_uri, beam_pipeline_args=beam_pipeline_args).outputs["examples"]


def test_the_pipeline_parameter_puts_example_gen_on_beam(
    session: dict[str, Any], tables: dict[str, str], worker_pool: list[str]
) -> None:
    data_tasks(input_uri=tables["csv"], beam_pipeline_args=worker_pool)
    (run,) = list_runs(session["store"], pipeline=PIPELINE_NAME)
    tasks = {t.task_name: t for t in run_tasks(session["store"], run.run_id)}
    assert {name: t.state for name, t in tasks.items()} == {"example-gen": "COMPLETE"}
    ((_, _, examples_uri),) = tasks["example-gen"].outputs["examples"]
    # Beam's shards: one per input file (the in-process path writes one file per split)
    for split in ("train", "eval"):
        shards = sorted(os.path.basename(p) for p in glob.glob(f"{examples_uri}/Split-{split}/*.gz"))
        assert shards == ["data_tfrecord-00000-of-00002.gz", "data_tfrecord-00001-of-00002.gz"]
    assert tasks["example-gen"].properties["outputs"]["row_count"] == 3000
