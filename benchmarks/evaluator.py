"""Evaluator throughput: TFMA (as the Evaluator runs it) against plain batch prediction.

    python -m benchmarks.evaluator [--rows 100000] [--batch-size 4096] [--tfma]

Trains the built-in model on the penguins data (a few epochs), then builds an eval split
of ``--rows`` examples by resampling the penguins rows with a seeded generator (numeric
features jittered), and times on the same files and model:

* ``evaluator``: the Evaluator's executor as a pipeline runs it (the in-process metrics
  path, which a test holds equal to TFMA), slicing by ``sex`` and ``island`` plus
  overall, with the full metric set, the fairness gate and TFMA-readable output;
* ``evaluator, TFMA`` (only with ``--tfma``; slow: about 100 examples/s here): the same
  with ``engine="tfma"``, TFMA's ``run_model_analysis`` on Beam's DirectRunner;
* ``baseline``: the SavedModel's signature called in-process in batches, then accuracy
  overall and per slice with numpy: the least any evaluation must do.

Both include reading the TFRecords and loading the model; neither includes importing
TensorFlow or TFMA (a pipeline's warm worker has them imported already).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from benchmarks import verdict

PENGUINS = "pkg://palmerpenguins/data/penguins.csv"
SCHEMA = "pkg://kubetfx.schemas/penguins/schema.pbtxt"


def _prepare(root: Path, rows: int) -> tuple[str, str]:
    import numpy as np
    import tensorflow as tf

    from kubetfx.artifacts.examples import split_files
    from kubetfx.components.example_gen import executor as example_gen
    from kubetfx.components.schema_gen import executor as schema_gen
    from kubetfx.components.statistics_gen import executor as statistics_gen
    from kubetfx.components.trainer import executor as trainer
    from kubetfx.tfrecord import read_tfrecord_gz, write_tfrecord_gz

    example_gen.run(PENGUINS, str(root / "examples"))
    statistics_gen.run(str(root / "examples"), str(root / "statistics"))
    schema_gen.run(str(root / "statistics"), str(root / "schema"), schema_file=SCHEMA, label_key="species")
    hp = {
        "epochs": 5,
        "batch_size": 32,
        "learning_rate": 0.01,
        "hidden_units": [32, 16],
        "dropout": 0.0,
        "seed": 1,
    }
    trainer.run(
        str(root / "examples"),
        str(root / "schema"),
        str(root / "statistics"),
        str(root / "model"),
        label_key="species",
        hyperparameters=hp,
    )
    source = [
        tf.train.Example.FromString(r)
        for split in ("train", "eval")
        for path in split_files(str(root / "examples"), split)
        for r in read_tfrecord_gz(path)
    ]
    rng = np.random.default_rng(0)
    out = []
    for index in rng.integers(0, len(source), size=rows):
        example = tf.train.Example()
        example.CopyFrom(source[index])
        for name in ("bill_length_mm", "bill_depth_mm"):
            values = example.features.feature[name].float_list.value
            if values:
                values[0] = values[0] * float(rng.normal(1.0, 0.02))
        out.append(example.SerializeToString())
    big = root / "big" / "Split-eval"
    big.mkdir(parents=True)
    write_tfrecord_gz(str(big / "data_tfrecord-00000-of-00001.gz"), out)
    return str(root / "big"), str(root / "model")


def _baseline(examples_dir: str, model_dir: str, batch_size: int) -> tuple[float, float]:
    import numpy as np
    import tensorflow as tf

    from kubetfx.artifacts.examples import split_files
    from kubetfx.tfrecord import read_tfrecord_gz

    started = time.perf_counter()
    serve = tf.saved_model.load(os.path.join(model_dir, "Format-Serving")).signatures["serving_default"]
    records = [r for path in split_files(examples_dir, "eval") for r in read_tfrecord_gz(path)]
    # VarLen: a missing value is an empty list in these examples.
    sparse = tf.io.parse_example(
        tf.constant(records), {k: tf.io.VarLenFeature(tf.string) for k in ("species", "sex", "island")}
    )
    parsed = {
        k: tf.concat([tf.sparse.to_dense(v, default_value=""), tf.fill([len(records), 1], "")], axis=1)[:, 0]
        for k, v in sparse.items()
    }
    predicted = []
    for start in range(0, len(records), batch_size):
        out = serve(examples=tf.constant(records[start : start + batch_size]))
        predicted.append(out["classes"].numpy())
    correct = np.concatenate(predicted) == parsed["species"].numpy()
    accuracy = {"Overall": correct.mean()}
    for feature in ("sex", "island"):
        values = parsed[feature].numpy()
        for value in np.unique(values):
            if value:
                accuracy[f"{feature}={value.decode()}"] = correct[values == value].mean()
    return time.perf_counter() - started, float(accuracy["Overall"])


def main() -> None:
    """Prepare the data, time both, print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--tfma", action="store_true", help="also time TFMA itself (slow)")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # Library imports stay outside both timings, as in a pipeline (the warm worker holds them).
    import apache_beam  # noqa: F401
    import tensorflow_model_analysis  # noqa: F401

    from kubetfx.components.evaluator import executor as evaluator

    timed: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="kubetfx-bench-eval-") as tmp:
        root = Path(tmp)
        examples_dir, model_dir = _prepare(root, args.rows)
        baseline_seconds, baseline_accuracy = _baseline(examples_dir, model_dir, args.batch_size)
        settings = evaluator.EvalSettings(label_key="species", slice_features=["sex", "island"])
        for engine in ("auto", "tfma") if args.tfma else ("auto",):
            started = time.perf_counter()
            result = evaluator.run(
                examples_dir,
                model_dir,
                str(root / engine / "evaluation"),
                str(root / engine / "blessing"),
                settings,
                engine=engine,
            )
            seconds = time.perf_counter() - started
            name = f"evaluator ({result.engine}, full metric set)"
            timed.append((name, seconds, result.overall.metrics["accuracy"]))
    rows = args.rows
    print(f"Evaluator throughput on {rows:,} examples, slices: overall, sex, island ({os.cpu_count()} CPUs)")
    print(f"{'path':<46}{'seconds':>9}{'examples/s':>12}{'accuracy':>10}{'ratio':>8}")
    for name, seconds, accuracy in timed:
        print(
            f"{name:<46}{seconds:>9.1f}{rows / seconds:>12,.0f}{accuracy:>10.4f}"
            f"{baseline_seconds / seconds:>8.3f}"
        )
    base_line = "baseline (batch predict + numpy accuracy)"
    print(
        f"{base_line:<46}{baseline_seconds:>9.1f}{rows / baseline_seconds:>12,.0f}{baseline_accuracy:>10.4f}"
        f"{1.0:>8.3f}"
    )
    ratio = baseline_seconds / timed[0][1]
    verdict(
        f"evaluator throughput, {rows:,} examples ({timed[0][0]})",
        rows / timed[0][1],
        rows / baseline_seconds,
        ratio,
        ">= 0.3x",
        ratio >= 0.3,
        "examples/s",
    )
    print(
        f"ratio evaluator/baseline throughput: {ratio:.3f}"
        f" (target >= 0.3: {'pass' if ratio >= 0.3 else 'falls short'})"
    )


if __name__ == "__main__":
    main()
