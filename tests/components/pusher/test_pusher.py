"""The Pusher on a real model: trained by the Trainer on penguins, checked by loading it in
TensorFlow and calling its serving signature, published only when blessed; broken or slow
models are refused; and the compiled component under the local runner leaves the lineage
the Evaluator's baseline resolver reads.

(No ``from __future__ import annotations`` here: this module defines a KFP pipeline.)
"""

import json
import os
import shutil
from pathlib import Path

import pytest
from kfp import dsl
from kubetfx.components.pusher import executor as pusher_executor
from kubetfx.components.pusher.component import pusher
from kubetfx.components.serving_check.serving import ServingCheckError

from kubetfx.artifacts.examples import split_files
from kubetfx.errors import ParameterError
from kubetfx.pushing import DestinationError
from kubetfx.settings import PUSH_ROOT_ENV
from kubetfx.tfrecord import read_tfrecord_gz


@pytest.fixture(scope="module")
def trained(train_model) -> dict[str, str]:
    """Penguins examples and a model trained on them (2 epochs: the Pusher needs one that serves)."""
    model = train_model(hyperparameters={"epochs": 2})
    return {"examples": model.data.examples, "model": model.path}


def blessing(path: Path, blessed: bool | None, reasons: list[str] = ()) -> str:
    """A ModelBlessing folder as the Evaluator writes it (None: no blessing file at all)."""
    path.mkdir(parents=True)
    if blessed is not None:
        (path / ("BLESSED" if blessed else "NOT_BLESSED")).write_text("")
    (path / "reasons.json").write_text(json.dumps(list(reasons)))
    return str(path)


def push(trained, tmp_path: Path, blessing_dir: str, model_dir: str = "", **kwargs):
    kwargs.setdefault("allowed_roots", [str(tmp_path / "serving")])
    # The check in KServe's model server (a test without the serving environment fails
    # here, saying so), with a small load: the figures, not their size, are under test.
    kwargs.setdefault("serving_server", "kserve")
    kwargs.setdefault("load_requests", 40)
    kwargs.setdefault("load_concurrency", 4)
    if "max_latency_ms" not in kwargs:  # its deprecated name stands alone
        kwargs.setdefault("latency_slo_p95_ms", 0.0)
    return pusher_executor.run(
        model_dir or trained["model"],
        blessing_dir,
        trained["examples"],
        str(tmp_path / "pushed"),
        model_name="penguins",
        sample_size=kwargs.pop("sample_size", 20),
        **kwargs,
    )


def nothing_published(tmp_path: Path) -> bool:
    folder = tmp_path / "serving" / "penguins"
    return not folder.exists() or not [n for n in os.listdir(folder) if n.isdigit()]


def test_a_blessed_model_is_checked_then_published_and_serves(trained, tmp_path: Path) -> None:
    import tensorflow as tf

    result = push(trained, tmp_path, blessing(tmp_path / "b", True), model_uri="/uri/of/model")
    version_dir = tmp_path / "serving" / "penguins" / "1"
    assert (result.pushed, result.version, result.destination) == (True, 1, str(version_dir))
    assert 0 < result.latency_p50_ms <= result.latency_p95_ms
    meta = result.metadata()
    assert meta["serving_server"] == "kserve 0.15.2" and meta["serving_protocol"] == "v1"
    assert (meta["load_requests"], meta["load_concurrency"], meta["load_errors"]) == (40, 4, 0)
    assert 0 < meta["latency_p50_ms"] <= meta["latency_p95_ms"] <= meta["latency_p99_ms"]
    assert (meta["predictions_checked"], meta["predictions_match"]) == (20, 1)
    assert meta["predictions_max_difference"] <= meta["predictions_tolerance"]
    assert meta["kubetfx_type"] == "kubetfx.PushedModel" and meta["pushed"] == 1 and meta["version"] == 1
    assert meta["model_name"] == "penguins" and meta["model_uri"] == "/uri/of/model"
    assert (
        meta["destination"] == str(version_dir) and meta["pushed_at"].endswith("Z") and "reason" not in meta
    )
    recorded = json.loads((tmp_path / "pushed" / "pushed.json").read_text())
    assert recorded == meta
    # What was published is what a server loads: the Trainer's Format-Serving SavedModel.
    assert sorted(p.name for p in version_dir.iterdir()) == sorted(
        p.name for p in Path(trained["model"], "Format-Serving").iterdir()
    )
    served = tf.saved_model.load(str(version_dir))
    records = [r for f in split_files(trained["examples"], "eval") for r in read_tfrecord_gz(f)][:5]
    assert served.signatures["serving_default"](examples=tf.constant(records))["probabilities"].shape == (
        5,
        3,
    )
    again = push(trained, tmp_path, blessing(tmp_path / "b2", True))
    assert again.version == 2


def test_an_unblessed_model_is_not_pushed_and_the_task_succeeds(trained, tmp_path: Path) -> None:
    refused = push(trained, tmp_path, blessing(tmp_path / "no", False, ["accuracy 0.61 < 0.9 on sex=female"]))
    assert (refused.pushed, refused.version) == (False, 0)
    assert refused.reason == "not blessed: accuracy 0.61 < 0.9 on sex=female"
    meta = refused.metadata()
    assert meta["pushed"] == 0 and "version" not in meta and meta["reason"] == refused.reason
    assert json.loads((tmp_path / "pushed" / "pushed.json").read_text()) == meta
    missing = push(trained, tmp_path, blessing(tmp_path / "none", None))
    assert not missing.pushed and "has no BLESSED file" in missing.reason
    both = tmp_path / "both"
    blessing(both, True)
    (both / "NOT_BLESSED").write_text("")
    assert not push(trained, tmp_path, str(both)).pushed
    assert nothing_published(tmp_path)


def test_a_destination_outside_the_roots_fails_even_unblessed(trained, tmp_path: Path) -> None:
    with pytest.raises(DestinationError, match=f"outside the allowed roots.*{PUSH_ROOT_ENV}"):
        push(
            trained, tmp_path, blessing(tmp_path / "no", False), push_destination=str(tmp_path / "elsewhere")
        )
    assert not (tmp_path / "elsewhere").exists()


def _broken(tmp_path: Path, name: str, build) -> str:
    model_dir = tmp_path / name
    (model_dir / "Format-Serving").mkdir(parents=True)
    build(str(model_dir / "Format-Serving"))
    return str(model_dir)


def test_models_that_do_not_load_or_answer_are_not_pushed(trained, tmp_path: Path) -> None:
    import tensorflow as tf

    class Plain(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def double(self, x):
            return {"y": x * 2}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def parse_numbers(self, examples):
            return {"y": tf.strings.to_number(examples)}

    plain = Plain()
    cases = {
        "empty": (lambda d: None, "no saved_model.pb, so no server can load it"),
        "corrupt": (lambda d: Path(d, "saved_model.pb").write_bytes(b"not a graph"), "does not load"),
        "no-signature": (
            lambda d: tf.saved_model.save(plain, d, signatures={"other": plain.double}),
            "has no 'serving_default' signature (it has: other)",
        ),
        "wrong-input": (
            lambda d: tf.saved_model.save(plain, d, signatures={"serving_default": plain.double}),
            "takes x; the Pusher checks signatures that take one string tensor",
        ),
        "fails": (
            lambda d: tf.saved_model.save(plain, d, signatures={"serving_default": plain.parse_numbers}),
            "signature 'serving_default' failed on the examples",
        ),
    }
    for name, (build, message) in cases.items():
        model_dir = _broken(tmp_path, name, build)
        with pytest.raises(ServingCheckError) as info:
            push(trained, tmp_path, blessing(tmp_path / f"b-{name}", True), model_dir=model_dir)
        assert message in str(info.value) and "Format-Serving" in str(info.value), name
        assert "not pushed" in str(info.value) or name == "wrong-input"
        assert "\n" not in str(info.value)
    assert nothing_published(tmp_path)


def test_a_latency_slo_blocks_a_slow_push_and_the_old_name_still_works(trained, tmp_path: Path) -> None:
    with pytest.raises(
        ServingCheckError, match=r"p95 latency [0-9.]+ ms is over latency_slo_p95_ms 0\.0001 \(40 requests"
    ):
        push(trained, tmp_path, blessing(tmp_path / "b", True), latency_slo_p95_ms=0.0001)
    with pytest.raises(ServingCheckError, match=r"over latency_slo_p95_ms 0\.0001"):
        push(trained, tmp_path, blessing(tmp_path / "b1", True), max_latency_ms=0.0001)
    with pytest.raises(ParameterError, match="deprecated name of latency_slo_p95_ms"):
        push(trained, tmp_path, blessing(tmp_path / "b3", True), max_latency_ms=5, latency_slo_p95_ms=7)
    assert nothing_published(tmp_path)
    done = push(trained, tmp_path, blessing(tmp_path / "b2", True), max_latency_ms=60_000)
    assert done.pushed and done.metadata()["latency_slo_p95_ms"] == 60_000


def test_the_component_body_reads_the_roots_from_the_environment(
    trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PUSH_ROOT_ENV, f"{tmp_path / 'first'},{tmp_path / 'second'}")
    model = dsl.Model(uri=trained["model"], metadata={"kubetfx_type": "kubetfx.Model"})
    examples = dsl.Dataset(uri=trained["examples"], metadata={"kubetfx_type": "kubetfx.Examples"})
    out = dsl.Artifact(uri=str(tmp_path / "pushed"))
    report = dsl.HTML(uri=str(tmp_path / "report"))
    outputs = pusher.python_func(
        model=model,
        blessing=dsl.Artifact(uri=blessing(tmp_path / "b", True)),
        examples=examples,
        pushed_model=out,
        report=report,
        model_name="penguins",
        push_destination=str(tmp_path / "second" / "team"),
        sample_size=5,
        load_requests=20,
        load_concurrency=2,
    )
    assert (outputs.pushed, outputs.version) == (True, 1)
    assert outputs.latency_p95_ms == out.metadata["latency_p95_ms"] > 0
    page = Path(report.uri).read_text()
    assert report.uri.endswith(".html") and "Pushed as version 1" in page
    assert "kserve 0.15.2, v1 REST on loopback" in page and "5 eval examples" in page and "FAIL" not in page
    assert out.metadata["destination"] == str(tmp_path / "second" / "team" / "penguins" / "1")
    assert out.metadata["model_uri"] == trained["model"]
    # A refused check still leaves its report, with the figures and what failed.
    refused = dsl.HTML(uri=str(tmp_path / "refused"))
    with pytest.raises(ServingCheckError, match="over latency_slo_p95_ms 0.0001"):
        pusher.python_func(
            model=model,
            blessing=dsl.Artifact(uri=blessing(tmp_path / "b3", True)),
            examples=examples,
            pushed_model=dsl.Artifact(uri=str(tmp_path / "pushed3")),
            report=refused,
            model_name="penguins",
            sample_size=5,
            load_requests=20,
            load_concurrency=2,
            latency_slo_p95_ms=0.0001,
        )
    page = Path(refused.uri).read_text()
    assert "Not pushed" in page and "against 0.0001 ms" in page and "FAIL" in page
    wrong = dsl.Artifact(uri=blessing(tmp_path / "b2", True), metadata={"kubetfx_type": "kubetfx.Schema"})
    with pytest.raises(Exception, match="input 'blessing'.*is a kubetfx.Schema"):
        pusher.python_func(
            model=model,
            blessing=wrong,
            examples=examples,
            pushed_model=out,
            report=dsl.HTML(uri=str(tmp_path / "r2")),
            model_name="penguins",
        )


def test_the_compiled_component_records_what_the_baseline_resolver_reads(
    trained, tmp_path: Path, workdir: Path, compile_to, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ml_metadata.proto import metadata_store_pb2 as pb

    from kubetfx.lineage.record import props
    from kubetfx.lineage.store import connect
    from kubetfx.local import run_pipeline

    monkeypatch.setenv(PUSH_ROOT_ENV, str(tmp_path / "serving"))
    model_copy = tmp_path / "model"
    shutil.copytree(trained["model"], model_copy)

    @dsl.pipeline(name="push-only")
    def push_only(model_uri: str, blessing_uri: str, examples_uri: str):
        model = dsl.importer(
            artifact_uri=model_uri, artifact_class=dsl.Model, metadata={"kubetfx_type": "kubetfx.Model"}
        )
        bless = dsl.importer(
            artifact_uri=blessing_uri,
            artifact_class=dsl.Artifact,
            metadata={"kubetfx_type": "kubetfx.ModelBlessing"},
        )
        examples = dsl.importer(
            artifact_uri=examples_uri,
            artifact_class=dsl.Dataset,
            metadata={"kubetfx_type": "kubetfx.Examples"},
        )
        pusher(
            model=model.output,
            blessing=bless.output,
            examples=examples.output,
            model_name="penguins",
            sample_size=5,
            load_requests=30,
            load_concurrency=2,
            serving_server="kserve",
        )

    result = run_pipeline(
        compile_to(push_only),
        params={
            "model_uri": str(model_copy),
            "blessing_uri": blessing(tmp_path / "b", True),
            "examples_uri": trained["examples"],
        },
    )
    assert result.state == "SUCCEEDED", result
    assert (tmp_path / "serving" / "penguins" / "1" / "saved_model.pb").is_file()
    store = connect(os.environ["KUBETFX_METADATA"])
    [pushed] = store.call(store.mlmd.get_artifacts_by_type, "kubetfx.PushedModel")
    assert pushed.state == pb.Artifact.LIVE
    meta = props(pushed)
    assert (meta["pushed"], meta["model_name"], meta["version"]) == (1, "penguins", 1)
    # The serving check's figures are in lineage, as the audit and the metrics read them.
    assert meta["serving_server"] == "kserve 0.15.2" and meta["load_requests"] == 30
    assert meta["predictions_match"] == 1 and meta["latency_p99_ms"] >= meta["latency_p95_ms"] > 0
    from kubetfx.lineage import audit
    from kubetfx.lineage.graph import MLMDLineage

    shown = audit.to_markdown(audit.build(MLMDLineage(store), "penguins:1"))
    section = shown.split("## Serving check")[1].split("## ")[0]
    assert "| server | kserve 0.15.2 (v1 REST) |" in section
    assert "| predictions | equal on 5 eval examples" in section
    assert "| load | 30 requests at concurrency 2, 0 errors," in section
    assert f"| latency p50 / p95 / p99 ms | {meta['latency_p50_ms']:.4g} / " in section
    [made] = [
        e for e in store.call(store.mlmd.get_events_by_artifact_ids, [pushed.id]) if e.type == pb.Event.OUTPUT
    ]
    inputs = store.call(store.mlmd.get_events_by_execution_ids, [made.execution_id])
    [model_event] = [e for e in inputs if e.type == pb.Event.INPUT and e.path.steps[0].key == "model"]
    [model] = store.call(store.mlmd.get_artifacts_by_id, [model_event.artifact_id])
    assert model.uri == str(model_copy)
