"""The Pusher's serving check in KServe's model server, on models built to fail one part of
it each: a slow one (its signature waits 300 ms per call) is refused by the p95 SLO while
the same model without the wait passes the same SLO; one whose answers depend on the process
running it is refused because the server's predictions differ from the in-process ones; one that
fails single-example requests is refused for its load errors. Without a serving
environment the check runs in-process and says so, or fails when the server is required.

The same check runs as its own component (``serving_check``, beside the Evaluator): its
record is judged by the Pusher exactly as a check the Pusher runs itself."""

import json
import logging
from pathlib import Path

import pytest
from kubetfx.components.pusher import executor as pusher_executor
from kubetfx.components.serving_check import executor as check_executor
from kubetfx.components.serving_check.serving import CheckRecord, ServingCheckError

from kubetfx.errors import InputDataError
from kubetfx.serving import modelserver

SLOW_US = 300_000  # the slow model's wait per call
SLO_MS = 150.0  # between the toy's own latency here (a few ms) and the slow one's (>= 300 ms)


def toy_model(
    root: Path, name: str, *, delay_us: int = 0, process_dependent: bool = False, min_batch: int = 0
) -> str:
    """A Model artifact folder whose ``Format-Serving`` SavedModel scores each serialized
    example by its length, optionally after a wait, plus a number that depends on the
    process running it (``process_dependent``), or only in batches."""
    import tensorflow as tf
    from tensorflow.python.data.experimental.ops import testing

    class Toy(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def serve(self, examples):
            score = tf.cast(tf.strings.length(examples), tf.float32)
            waits = []
            if delay_us:
                waits.append(
                    tf.data.Dataset.range(1)
                    .apply(testing.sleep(delay_us))
                    .reduce(tf.constant(0, tf.int64), lambda a, b: a + b)
                )
            if min_batch:
                waits.append(tf.debugging.assert_greater_equal(tf.size(examples), min_batch))
            with tf.control_dependencies(waits):
                score = tf.identity(score)
            if process_dependent:
                # A hash of the calling process's thread ids: different in the server's
                # process than in the Pusher's. (Neither random nor time-based: the Trainer's
                # tests turn on TensorFlow's op determinism for the whole session, which
                # seeds tf.random and forbids tf.timestamp.)
                threads = tf.strings.reduce_join(tf.io.matching_files("/proc/self/task/*"))
                score = score + tf.cast(tf.strings.to_hash_bucket_fast(threads, 1_000_000), tf.float32)
            return {"score": score, "label": tf.strings.as_string(score)}

    toy = Toy()
    folder = root / name
    tf.saved_model.save(toy, str(folder / "Format-Serving"), signatures={"serving_default": toy.serve})
    return str(folder)


@pytest.fixture(scope="module")
def examples(prepare_data) -> str:
    return prepare_data().examples


def push(examples: str, tmp_path: Path, model_dir: str, **kwargs):
    bless = tmp_path / "blessing"
    bless.mkdir(exist_ok=True)
    (bless / "BLESSED").write_text("")
    (bless / "reasons.json").write_text("[]")
    arguments = {
        "model_name": "toy",
        "allowed_roots": [str(tmp_path / "serving")],
        "sample_size": 10,
        "load_requests": 16,
        "load_concurrency": 2,
        "serving_server": "kserve",
        "latency_slo_p95_ms": SLO_MS,
        **kwargs,
    }
    return pusher_executor.run(model_dir, str(bless), examples, str(tmp_path / "pushed"), **arguments)


def published(tmp_path: Path) -> list[str]:
    folder = tmp_path / "serving" / "toy"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_a_slow_model_is_refused_by_the_slo_and_a_fast_one_passes_it(examples, tmp_path: Path) -> None:
    with pytest.raises(ServingCheckError) as refused:
        push(examples, tmp_path, toy_model(tmp_path, "slow", delay_us=SLOW_US))
    message = str(refused.value)
    assert "over latency_slo_p95_ms 150" in message and "on kserve 0.15.2" in message, message
    p95 = float(message.split("p95 latency ")[1].split(" ms")[0])
    assert p95 >= SLOW_US / 1000
    assert published(tmp_path) == []

    fast = push(examples, tmp_path, toy_model(tmp_path, "fast"))
    meta = fast.metadata()
    assert fast.pushed and meta["latency_p95_ms"] <= SLO_MS and meta["latency_slo_p95_ms"] == SLO_MS
    assert (meta["predictions_checked"], meta["predictions_match"], meta["load_errors"]) == (10, 1, 0)
    assert json.loads((tmp_path / "pushed" / "pushed.json").read_text()) == meta
    assert published(tmp_path) == ["1"]


def test_answers_that_differ_in_the_server_are_refused(examples, tmp_path: Path) -> None:
    with pytest.raises(ServingCheckError, match="predictions differ from the in-process.*'score'"):
        model = toy_model(tmp_path, "process-dependent", process_dependent=True)
        push(examples, tmp_path, model, latency_slo_p95_ms=0.0)
    assert published(tmp_path) == []


def test_load_errors_are_refused(examples, tmp_path: Path) -> None:
    # Answers batches (the comparison sends 10 at once), fails single-example requests (the load's).
    with pytest.raises(ServingCheckError, match=r"16 of 16 load requests failed .*HTTP 400"):
        push(examples, tmp_path, toy_model(tmp_path, "batches-only", min_batch=2), latency_slo_p95_ms=0.0)
    assert published(tmp_path) == []


def test_v2_protocol(examples, tmp_path: Path) -> None:
    meta = push(examples, tmp_path, toy_model(tmp_path, "v2"), serving_protocol="v2").metadata()
    assert (meta["serving_protocol"], meta["predictions_match"], meta["load_errors"]) == ("v2", 1, 0)


def test_without_a_serving_environment(
    examples, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(modelserver, "serving_python", lambda: None)
    model = toy_model(tmp_path, "toy")
    with pytest.raises(ServingCheckError, match="is 'kserve' but there is no serving environment"):
        push(examples, tmp_path, model)
    assert published(tmp_path) == []
    with caplog.at_level(logging.WARNING, logger="kubetfx.serving_check"):
        meta = push(examples, tmp_path, model, serving_server="auto").metadata()
    assert "runs IN-PROCESS, not in a model server" in caplog.text
    assert meta["serving_server"] == "in-process" and meta["serving_protocol"] == "none"
    assert "no serving environment" in meta["serving_note"] and "predictions_match" not in meta
    assert (meta["load_requests"], meta["load_errors"], meta["predictions_checked"]) == (16, 0, 0)
    assert 0 < meta["latency_p50_ms"] <= meta["latency_p95_ms"] <= meta["latency_p99_ms"]
    # In-process, the slow model is still refused by the SLO.
    with pytest.raises(ServingCheckError, match="over latency_slo_p95_ms 150.*on in-process"):
        push(examples, tmp_path, toy_model(tmp_path, "slow", delay_us=SLOW_US), serving_server="auto")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            {"serving_server": "tfserving"},
            "serving_server 'tfserving' must be one of auto, kserve, in-process",
        ),
        ({"serving_protocol": "grpc"}, "serving_protocol 'grpc' must be one of v1, v2"),
        ({"load_requests": 0}, "load_requests \\(0\\) and load_concurrency \\(4\\) must be at least 1"),
        ({"load_concurrency": 0}, "load_requests \\(40\\) and load_concurrency \\(0\\) must be at least 1"),
        ({"latency_slo_p95_ms": -1.0}, "latency_slo_p95_ms -1.0 must be 0"),
        (
            {"max_latency_ms": 50.0, "latency_slo_p95_ms": 80.0},
            "max_latency_ms 50 and latency_slo_p95_ms 80 disagree",
        ),
        ({"tolerance": float("nan")}, "tolerance nan must be 0 or more"),
    ],
)
def test_bad_check_parameters_fail_before_anything_is_read(tmp_path: Path, arguments, message) -> None:
    from kubetfx.errors import ParameterError

    settings = {"load_requests": 40, "load_concurrency": 4, **arguments}
    with pytest.raises(ParameterError, match=message):
        pusher_executor.run(
            str(tmp_path / "no-model"),
            str(tmp_path / "no-blessing"),
            str(tmp_path / "no-examples"),
            str(tmp_path / "pushed"),
            model_name="toy",
            allowed_roots=[str(tmp_path / "serving")],
            **settings,
        )
    assert not (tmp_path / "pushed").exists()


def _bless(tmp_path: Path, blessed: bool = True) -> str:
    folder = tmp_path / ("blessing" if blessed else "not-blessed")
    folder.mkdir(exist_ok=True)
    (folder / ("BLESSED" if blessed else "NOT_BLESSED")).write_text("")
    (folder / "reasons.json").write_text("[]" if blessed else '["accuracy 0.5 < 0.8"]')
    return str(folder)


def _push_recorded(tmp_path: Path, model: str, record_dir: str, blessed: bool = True, **kwargs):
    arguments = {"model_name": "toy", "allowed_roots": [str(tmp_path / "serving")], **kwargs}
    pushed = str(tmp_path / "pushed")
    return pusher_executor.run(
        model, _bless(tmp_path, blessed), "", pushed, serving_check_dir=record_dir, **arguments
    )


def test_a_recorded_check_is_judged_by_the_pusher(examples, tmp_path: Path) -> None:
    """serving_check measures and records; the Pusher refuses or pushes on the record alone."""
    slow = toy_model(tmp_path, "slow", delay_us=SLOW_US)
    record = check_executor.run(
        slow,
        examples,
        str(tmp_path / "check"),
        sample_size=10,
        load_requests=8,
        load_concurrency=2,
        serving_server="in-process",
    )
    assert record.check is not None and not record.error and record.model_uri == slow
    meta = record.metadata()
    assert (meta["kubetfx_type"], meta["checked"], meta["load_requests"]) == ("kubetfx.ServingCheck", 1, 8)
    assert meta["latency_p95_ms"] >= SLOW_US / 1000 and "latency_slo_p95_ms" not in meta
    assert CheckRecord.read(str(tmp_path / "check")) == record  # the whole check, read back

    with pytest.raises(ServingCheckError, match="over latency_slo_p95_ms 150.*8 requests at concurrency 2"):
        _push_recorded(tmp_path, slow, str(tmp_path / "check"), latency_slo_p95_ms=SLO_MS)
    assert published(tmp_path) == []
    # The Pusher's own load parameters do not apply to a recorded check: nothing runs again.
    pushed = _push_recorded(tmp_path, slow, str(tmp_path / "check"), latency_slo_p95_ms=0.0, load_requests=1)
    assert pushed.pushed and published(tmp_path) == ["1"]
    figures = pushed.metadata()
    assert figures["latency_p95_ms"] == meta["latency_p95_ms"] and figures["load_requests"] == 8
    assert figures["serving_server"] == "in-process" and figures["latency_slo_p95_ms"] == 0.0


def test_a_model_that_does_not_load_is_recorded_and_refused_only_when_blessed(
    examples, tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    (broken / "Format-Serving").mkdir(parents=True)
    (broken / "Format-Serving" / "saved_model.pb").write_bytes(b"not a SavedModel")
    record = check_executor.run(str(broken), examples, str(tmp_path / "check"), serving_server="in-process")
    assert record.check is None and "the SavedModel does not load" in record.error  # the task succeeds
    assert record.metadata()["checked"] == 0 and "does not load" in record.metadata()["error"]
    # Not blessed: not pushed anyway, and the task succeeds.
    skipped = _push_recorded(tmp_path, str(broken), str(tmp_path / "check"), blessed=False)
    assert not skipped.pushed and skipped.reason.startswith("not blessed: accuracy 0.5 < 0.8")
    # Blessed: refused with the recorded reason.
    with pytest.raises(ServingCheckError, match="the SavedModel does not load.*not pushed"):
        _push_recorded(tmp_path, str(broken), str(tmp_path / "check"))
    assert published(tmp_path) == []


def test_a_record_of_another_model_is_refused(examples, tmp_path: Path) -> None:
    import shutil

    checked = toy_model(tmp_path, "checked")
    record = check_executor.run(
        checked,
        examples,
        str(tmp_path / "check"),
        sample_size=4,
        load_requests=4,
        serving_server="in-process",
    )
    assert len(record.model_fingerprint) == 32
    assert record.metadata()["model_fingerprint"] == record.model_fingerprint
    # The same bytes elsewhere (a check reused from a cache, of a model trained again to the
    # same bytes): the figures are this model's.
    copy = str(tmp_path / "same-bytes")
    shutil.copytree(checked, copy)
    assert _push_recorded(tmp_path, copy, str(tmp_path / "check"), latency_slo_p95_ms=0.0).pushed
    other = toy_model(tmp_path, "other")
    with pytest.raises(ServingCheckError, match=r"the serving check is of .*/checked, not of .*/other"):
        _push_recorded(tmp_path, other, str(tmp_path / "check"), latency_slo_p95_ms=0.0)
    assert published(tmp_path) == ["1"]  # the copy only


def test_a_missing_or_broken_record_names_its_file(tmp_path: Path) -> None:
    with pytest.raises(InputDataError, match=r"serving_check.json: no serving check record"):
        CheckRecord.read(str(tmp_path))
    (tmp_path / "serving_check.json").write_text('{"model_uri": "m", "check": {"requests": 1}}')
    with pytest.raises(InputDataError, match=r"serving_check.json: not a serving check record \(TypeError"):
        CheckRecord.read(str(tmp_path))
    (tmp_path / "serving_check.json").write_text('{"model_uri": "m", "error": ""}')
    with pytest.raises(InputDataError, match="holds neither a check nor an error"):
        CheckRecord.read(str(tmp_path))


def test_the_check_s_own_bad_parameters_fail_the_task(tmp_path: Path) -> None:
    from kubetfx.errors import ParameterError

    with pytest.raises(ParameterError, match="serving_server 'tfserving' must be one of"):
        check_executor.run("m", "e", str(tmp_path / "check"), serving_server="tfserving")
    with pytest.raises(ParameterError, match="sample_size 0 must be at least 1"):
        check_executor.run("m", "e", str(tmp_path / "check"), sample_size=0)
    assert not (tmp_path / "check").exists()
