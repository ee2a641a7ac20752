"""A Trainer run at a learning rate that makes training diverge: the NaN loss is recorded
by name in the task's output document and in lineage, and the execution completes; the
Evaluator then finds the model's predictions NaN, does not bless it and says why, and the
Pusher publishes nothing.

Real parts: the built-in Keras model trained on the penguins data by the real Trainer,
evaluated by the real Evaluator, through ``kubetfx run``, into a real SQLite ML Metadata
store. Before the Evaluator screened predictions, TFMA failed on the NaN predictions
(``add_input failed on ...CalibrationHistogramCombiner``). Before NaN was recorded by
name, the task's lineage write failed (``no such column: nan``) and left it RUNNING.
"""

# No `from __future__ import annotations`: KFP reads the pipeline's annotations as types.
import json
from pathlib import Path

from kfp import dsl
from kubetfx.components import evaluator, example_gen, pusher, schema_gen, statistics_gen, trainer
from ml_metadata.proto import metadata_store_pb2 as pb

from kubetfx.lineage.record import props
from kubetfx.lineage.store import connect


@dsl.pipeline(name="diverged-training")
def diverged(learning_rate: float = 1e12):
    data = example_gen(input_uri="pkg://palmerpenguins/data/penguins.csv")
    stats = statistics_gen(examples=data.outputs["examples"])
    schema = schema_gen(statistics=stats.outputs["statistics"], label_key="species")
    trained = trainer(
        examples=data.outputs["examples"],
        schema=schema.outputs["schema"],
        statistics=stats.outputs["statistics"],
        label_key="species",
        epochs=2,
        learning_rate=learning_rate,
    )
    evaluated = evaluator(
        examples=data.outputs["examples"],
        model=trained.outputs["model"],
        label_key="species",
        model_name="diverged",
    )
    # Unconditional: the Pusher reads the blessing itself and publishes nothing unblessed.
    pusher(
        model=trained.outputs["model"],
        blessing=evaluated.outputs["blessing"],
        examples=data.outputs["examples"],
        model_name="diverged",
    )


def _refuse_bare_constants(token: str) -> None:
    raise ValueError(f"bare {token} in JSON: the KFP launcher's protojson refuses it")


def test_a_nan_loss_is_recorded_by_name_and_the_evaluator_refuses_the_model(
    workdir: Path, cli, compile_to
) -> None:
    done = cli("run", str(compile_to(diverged)), "--no-warm")
    assert done.returncode == 0, done.stdout + done.stderr
    [log] = workdir.glob("root/diverged-training/*/trainer/.kubetfx/log.txt")
    assert "not a finite number, recorded by name" in log.read_text()
    [output] = workdir.glob("root/diverged-training/*/trainer/.kubetfx/executor_output.json")
    document = json.loads(output.read_text(), parse_constant=_refuse_bare_constants)
    metrics = document["artifacts"]["metrics"]["artifacts"][0]["metadata"]
    assert "NaN" in (metrics.get("loss"), metrics.get("val_loss"))

    store = connect(f"sqlite:///{workdir}/mlmd.sqlite")
    [execution] = [e for e in store.mlmd.get_executions() if props(e).get("task_name") == "trainer"]
    assert execution.last_known_state == pb.Execution.COMPLETE
    assert "metadata.loss" in props(execution)["non_finite"]
    [model] = [a for a in store.mlmd.get_artifacts() if a.uri.endswith("/trainer/metrics")]
    assert "NaN" in (props(model).get("loss"), props(model).get("val_loss"))

    # The Evaluator completes, does not bless the model and says why; nothing is pushed.
    [reasons] = workdir.glob("root/diverged-training/*/evaluator/blessing/reasons.json")
    [reason] = json.loads(reasons.read_text())
    assert "predictions are NaN or infinite on" in reason and "training diverged" in reason, reason
    assert (reasons.parent / "NOT_BLESSED").exists() and not (reasons.parent / "BLESSED").exists()
    [evaluation] = [e for e in store.mlmd.get_executions() if props(e).get("task_name") == "evaluator"]
    assert evaluation.last_known_state == pb.Execution.COMPLETE
    [blessing] = [a for a in store.mlmd.get_artifacts() if a.uri.endswith("/evaluator/blessing")]
    assert props(blessing)["blessed"] == 0 and "training diverged" in json.dumps(props(blessing)["reasons"])
    assert not list((workdir / "serving").glob("diverged/*"))
