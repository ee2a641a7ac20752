"""The continuous-training pipeline told to watch serving traffic: on unchanged data it stops
early while the logged requests look like the training data, and retrains when they drift
(body_mass_g shifted by +2500 g), the served model's training statistics found in lineage.
The logs hold the eval split's examples and the answers of the real model the first run
trained and pushed."""

import base64
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from ml_metadata.proto import metadata_store_pb2 as pb

from kubetfx.fingerprint import local_path
from kubetfx.lineage.record import props
from kubetfx.lineage.serving import served_training
from kubetfx.lineage.store import connect
from kubetfx.metrics import Samples, artifact_samples

REPO = Path(__file__).resolve().parents[2]
PIPELINE = str(REPO / "pipelines/continuous_training/pipeline.yaml")
KUBETFX = str(Path(sys.executable).with_name("kubetfx"))


def _penguins() -> pd.DataFrame:
    return pd.read_csv(local_path("pkg://palmerpenguins/data/penguins.csv"), keep_default_na=False)


def _eval_examples(examples_dir: str, shift: int = 0) -> list[bytes]:
    """The served model's eval split as serialized tf.Examples, without the label; body_mass_g
    plus ``shift`` grams (kept inside the schema's range)."""
    from tensorflow.core.example import example_pb2

    from kubetfx.artifacts.examples import split_files
    from kubetfx.tfrecord import read_tfrecord_gz

    found = []
    for path in split_files(examples_dir, "eval"):
        for record in read_tfrecord_gz(path):
            example = example_pb2.Example.FromString(record)
            del example.features.feature["species"]
            mass = example.features.feature["body_mass_g"].int64_list.value
            for i, value in enumerate(mass):
                mass[i] = min(value + shift, 6999)
            found.append(example.SerializeToString())
    return found


def _logs(path: Path, model_dir: str, examples: list[bytes]) -> str:
    """A KServe logger sink's JSON lines: each request (a b64 tf.Example) and the response the
    real served model gives to it (its serving signature, called here)."""
    import tensorflow as tf

    serve = tf.saved_model.load(model_dir).signatures["serving_default"]
    classes = [c.decode() for c in serve(examples=tf.constant(examples))["classes"].numpy().ravel()]
    lines = []
    for n, (example, predicted) in enumerate(zip(examples, classes, strict=True)):
        common = {"specversion": "1.0", "id": f"r{n}", "source": "penguins"}
        common["time"] = f"2027-01-15T08:{n // 60:02d}:{n % 60:02d}Z"
        request = {"instances": [{"b64": base64.b64encode(example).decode()}]}
        lines.append({**common, "type": "org.kubeflow.serving.inference.request", "data": request})
        response = {"predictions": [{"classes": predicted}]}
        lines.append({**common, "type": "org.kubeflow.serving.inference.response", "data": response})
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return str(path)


def _run(data: Path, *params: str) -> subprocess.CompletedProcess:
    args = ["--param", f"input_uri={data}/span-{{SPAN}}/penguins.csv", "--param", "epochs=5"]
    for param in params:
        args += ["--param", param]
    return subprocess.run(
        [KUBETFX, "run", PIPELINE, *args],
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )


def _state(stdout: str, task: str) -> str:
    match = re.search(rf"^(?:\S+/)?{re.escape(task)}\s+([A-Z_]+)", stdout, re.MULTILINE)
    return match.group(1) if match else "SKIPPED"


def _drift(store, stdout: str) -> dict:
    run_id = next(line for line in stdout.splitlines() if line.startswith("Run ")).split()[1]
    ctx = store.mlmd.get_context_by_type_and_name("system.PipelineRun", run_id)
    [execution] = [
        e
        for e in store.mlmd.get_executions_by_context(ctx.id)
        if props(e)["task_name"].endswith("serving-drift")
    ]
    events = store.mlmd.get_events_by_execution_ids([execution.id])
    [artifact] = store.mlmd.get_artifacts_by_id(
        [e.artifact_id for e in events if e.type == pb.Event.OUTPUT and e.path.steps[0].key == "drift"]
    )
    return {"outputs": props(execution)["outputs"], "metadata": props(artifact)}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    work = tmp_path_factory.mktemp("serving-drift")
    data = work / "data" / "span-1"
    data.mkdir(parents=True)
    penguins = _penguins()
    penguins.to_csv(data / "penguins.csv", index=False)
    with pytest.MonkeyPatch.context() as env:
        env.chdir(work)
        env.setenv("KUBETFX_METADATA", f"sqlite:///{work}/mlmd.sqlite")
        env.setenv("KUBETFX_PIPELINE_ROOT", str(work / "root"))
        env.setenv("KUBETFX_PUSH_ROOT", str(work / "serving"))
        found = {"first": _run(work / "data")}
        served = served_training(connect(f"sqlite:///{work}/mlmd.sqlite"), "penguins")
        assert served is not None, found["first"].stdout + found["first"].stderr
        model_dir = str(work / "serving" / "penguins" / "1")
        calm = _logs(work / "calm.jsonl", model_dir, _eval_examples(served.examples_uri))
        found["calm"] = _run(work / "data", f"serving_logs_uri={calm}")
        moved = _logs(work / "moved.jsonl", model_dir, _eval_examples(served.examples_uri, shift=2500))
        found["moved"] = _run(work / "data", f"serving_logs_uri={moved}")
        yield {"runs": found, "store": connect(f"sqlite:///{work}/mlmd.sqlite"), "serving": work / "serving"}


def test_unchanged_data_and_calm_traffic_stop_early(runs: dict) -> None:
    first, calm = runs["runs"]["first"], runs["runs"]["calm"]
    assert first.returncode == 0, first.stdout + first.stderr
    assert "off: no serving logs given" in first.stdout
    assert (runs["serving"] / "penguins" / "1").exists(), "the first run must push a model to be served"
    assert calm.returncode == 0, calm.stdout + calm.stderr
    drift = _drift(runs["store"], calm.stdout)
    assert drift["outputs"]["drifted"] is False and drift["outputs"]["retrain"] is False
    assert drift["outputs"]["reason"].startswith("no drift: 7 features"), drift["outputs"]["reason"]
    assert drift["metadata"]["requests"] == 111 and drift["metadata"]["anomaly_count"] == 0
    # The real model on its own eval split predicts as the Evaluator's confusion matrix says.
    served = drift["metadata"]["serving_predictions"]  # a dict: lineage keeps it as a struct
    evaluated = drift["metadata"]["evaluation_predictions"]
    assert sum(served.values()) == 111 and evaluated, drift["metadata"]
    assert drift["metadata"]["prediction_distances"]["prediction_l_infinity"] < 0.02, (served, evaluated)
    assert "changed=False, unchanged" in calm.stdout
    assert _state(calm.stdout, "trainer") == "SKIPPED"


def test_drifted_traffic_retrains_on_unchanged_data(runs: dict) -> None:
    moved = runs["runs"]["moved"]
    assert moved.returncode == 0, moved.stdout + moved.stderr
    drift = _drift(runs["store"], moved.stdout)
    assert drift["outputs"]["drifted"] is True and drift["outputs"]["retrain"] is True
    assert json.loads(drift["metadata"]["drifted_features"]) == ["body_mass_g"]  # lists are JSON in lineage
    assert drift["metadata"]["drift_distances"]["body_mass_g"]["psi"] > 0.2
    # Prometheus reads the same metadata as lineage keeps it.
    samples = Samples()
    artifact_samples(samples, drift["metadata"])
    assert samples.values["kubetfx_serving_drifted_features"] == {(): 1.0}
    assert (
        samples.values["kubetfx_serving_drift_distance"][(("feature", "body_mass_g"), ("measure", "psi"))]
        > 0.2
    )
    assert "forced: training on span 1" in moved.stdout
    # The gate opened: everything behind it ran (the very same data and parameters as the
    # first run, so the cache may give the first run's model back, as KFP's would).
    for task in ("statistics-gen", "example-validator", "trainer", "evaluator"):
        assert _state(moved.stdout, task) in ("SUCCEEDED", "CACHED"), (task, moved.stdout)
