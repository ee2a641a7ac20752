"""Trainer: a built-in Keras tabular model derived from the schema, or a user's ``run_fn``.

Layout written under ``model_dir``::

    Format-Serving/          TensorFlow SavedModel, signature serving_default(examples)
    keras/model.keras        the Keras model (built-in model only; any Keras 3 backend loads it)
    feature_spec.json        the preprocessing the signature replays (built-in model only)

Devices: one GPU -> the default strategy on it; several -> MirroredStrategy; ``TF_CONFIG``
set -> MultiWorkerMirroredStrategy; mixed precision (bfloat16) on GPUs that support it,
unless turned off. Seeds are fixed and TensorFlow's ops are made deterministic, so the
same inputs and parameters give the same metrics.
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubetfx.components.trainer.model import (
    Feature,
    FeatureSpec,
    HyperParameters,
    build_model,
    encode_features,
    encode_labels,
    label_text,
    train,
)

from kubetfx.errors import InputDataError, KubetfxError
from kubetfx.types import MODEL, TYPE_KEY

MODEL_KIND = MODEL
SERVING_DIR = "Format-Serving"


@dataclass
class FnArgs:
    """What a user's ``run_fn(fn_args)`` gets (the names TFX's Trainer uses)."""

    train_files: list[str]
    eval_files: list[str]
    schema_file: str
    serving_model_dir: str
    model_run_dir: str
    label_key: str
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    custom_config: dict[str, Any] = field(default_factory=dict)
    train_data: Any = None  # pyarrow.Table of the train split, already read
    eval_data: Any = None


@dataclass
class TrainResult:
    """What training did: recorded in lineage and the Model's metadata."""

    device: str
    strategy: str
    mixed_precision: bool
    epochs: int
    steps: int
    metrics: dict[str, float]
    hyperparameters: dict[str, Any]
    wall_seconds: float
    model_source: str  # "built-in" or the module file's content hash
    train_examples: int
    eval_examples: int

    def metadata(self) -> dict[str, Any]:
        """Model artifact metadata."""
        return {
            TYPE_KEY: MODEL_KIND,
            "framework": "tensorflow",
            "layout": f"{SERVING_DIR}/ SavedModel, serving_default(examples: tf.string[batch])",
            "device": self.device,
            "strategy": self.strategy,
            "mixed_precision": self.mixed_precision,
            "epochs": self.epochs,
            "steps": self.steps,
            "metrics": self.metrics,
            "hyperparameters": self.hyperparameters,
            "wall_seconds": round(self.wall_seconds, 3),
            "model_source": self.model_source,
            "train_examples": self.train_examples,
            "eval_examples": self.eval_examples,
        }


# ---------------------------------------------------------------------- data


def read_split(examples_dir: str, split: str) -> Any:
    """One split as a pyarrow Table: ExampleGen's columnar copy, else the decoded TFRecords."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from kubetfx.tfrecord import read_tfrecord_gz, split_files

    columnar = Path(examples_dir, f"Split-{split}", "data.parquet")
    if columnar.exists():
        return pq.read_table(columnar)
    from tfx_bsl.coders import example_coder

    records = [r for f in split_files(examples_dir, split) for r in read_tfrecord_gz(f)]
    if not records:
        raise InputDataError(f"{examples_dir}: split {split!r} has no examples")
    return pa.Table.from_batches([example_coder.ExamplesToRecordBatchDecoder().DecodeBatch(records)])


def _columns(table: Any) -> dict[str, list[Any]]:
    return {name: table.column(name).to_pylist() for name in table.column_names}


def feature_spec(schema: Any, statistics: Any, label_key: str, train_table: Any) -> FeatureSpec:
    """Inputs and preprocessing constants from the schema and the train split's statistics."""
    from tensorflow_metadata.proto.v0 import schema_pb2

    names = [f.name for f in schema.feature]
    if label_key not in names:
        raise InputDataError(f"label_key {label_key!r} is not in the schema; features: {', '.join(names)}")
    domains = {d.name: list(d.value) for d in schema.string_domain}
    stats = {(f.path.step[0] if f.path.step else f.name): f for f in statistics.datasets[0].features}
    features = []
    for feature in schema.feature:
        if feature.name == label_key or "TRAINING" in feature.not_in_environment:
            continue
        if feature.name not in train_table.column_names:
            raise InputDataError(f"feature {feature.name!r} is in the schema but not in the training data")
        if feature.type == schema_pb2.BYTES:
            vocabulary = domains.get(feature.domain) or list(feature.string_domain.value)
            if not vocabulary and feature.name in stats:
                top = stats[feature.name].string_stats.top_values
                vocabulary = [v.value for v in top]
            features.append(
                Feature(name=feature.name, kind="categorical", dtype="bytes", vocabulary=vocabulary)
            )
        else:
            num = stats[feature.name].num_stats if feature.name in stats else None
            features.append(
                Feature(
                    name=feature.name,
                    kind="numeric",
                    dtype="int" if feature.type == schema_pb2.INT else "float",
                    mean=float(num.mean) if num else 0.0,
                    std=float(num.std_dev) if num and num.std_dev else 1.0,
                )
            )
    label = next(f for f in schema.feature if f.name == label_key)
    classes = domains.get(label.domain) or list(label.string_domain.value)
    if not classes:
        # Class names as encode_labels spells them (1.0 -> "1"); missing and infinite labels
        # are no class (encode_labels names the rows).
        seen = {label_text(v) for v in train_table.column(label_key).to_pylist()}
        classes = sorted(c for c in seen if c)
    if len(classes) < 2:
        raise InputDataError(
            f"label {label_key!r} has {len(classes)} class{'es' if len(classes) != 1 else ''} "
            f"({classes}); a classifier needs at least two"
        )
    return FeatureSpec(features=features, label=label_key, classes=[str(c) for c in classes])


# ---------------------------------------------------------------------- devices


def choose_strategy(tf: Any) -> tuple[Any, str, str, bool]:
    """(strategy, its name, device description, whether the GPU has bfloat16)."""
    gpus = tf.config.list_physical_devices("GPU")
    bf16 = False
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        bf16 = tuple(details.get("compute_capability", (0, 0))) >= (8, 0)
    if os.environ.get("TF_CONFIG"):
        return (
            tf.distribute.MultiWorkerMirroredStrategy(),
            "MultiWorkerMirroredStrategy",
            f"{len(gpus)} GPU(s) per worker",
            bf16,
        )
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy(), "MirroredStrategy", f"{len(gpus)} GPUs", bf16
    if len(gpus) == 1:
        return tf.distribute.get_strategy(), "default", "GPU:0", bf16
    return tf.distribute.get_strategy(), "default", "CPU", False


# ---------------------------------------------------------------------- user module


def load_run_fn(module_file: str) -> Any:
    """Import a user module and return its ``run_fn``; errors name the file."""
    from kubetfx.fingerprint import local_path

    path = local_path(module_file)
    if path is None or not path.is_file():
        raise InputDataError(f"{module_file}: module file not found; check module_file")
    spec = importlib.util.spec_from_file_location(f"kubetfx_user_module_{abs(hash(str(path)))}", path)
    if spec is None or spec.loader is None:
        raise InputDataError(
            f"{module_file}: not a Python file; module_file names a .py file that defines run_fn(fn_args)"
            " (from a notebook: export its code to a .py file)"
        )
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as err:
        raise KubetfxError(
            f"{module_file}: importing the module failed: {type(err).__name__}: {err}"
        ) from err
    run_fn = getattr(module, "run_fn", None)
    if not callable(run_fn):
        raise KubetfxError(
            f"{module_file}: defines no run_fn(fn_args); add one (see components/trainer/README.md)"
        )
    return run_fn


def _code_version(module_file: str) -> str:
    """The user module's code version: a hash of its content."""
    from kubetfx.fingerprint import fingerprint_path, local_path

    return fingerprint_path(str(local_path(module_file))) or "unknown"


# ---------------------------------------------------------------------- entry


def run(
    examples_dir: str,
    schema_dir: str,
    statistics_dir: str,
    model_dir: str,
    *,
    label_key: str,
    hyperparameters: dict[str, Any] | None = None,
    module_file: str = "",
    mixed_precision: bool = True,
    custom_config: dict[str, Any] | None = None,
) -> TrainResult:
    """Train and export under ``model_dir``."""
    import tensorflow as tf
    from kubetfx.components.schema_gen.executor import load as load_schema
    from kubetfx.components.statistics_gen.executor import load as load_statistics

    started = time.perf_counter()
    strategy, strategy_name, device, bf16 = choose_strategy(tf)
    use_mixed = bool(mixed_precision and bf16)
    train_table = read_split(examples_dir, "train")
    eval_table = read_split(examples_dir, "eval")
    serving_dir = str(Path(model_dir, SERVING_DIR))
    Path(model_dir).mkdir(parents=True, exist_ok=True)
    hparams_raw = dict(hyperparameters or {})

    if module_file:
        run_fn = load_run_fn(module_file)
        from kubetfx.tfrecord import split_files

        args = FnArgs(
            train_files=split_files(examples_dir, "train"),
            eval_files=split_files(examples_dir, "eval"),
            schema_file=str(Path(schema_dir, "schema.pbtxt")),
            serving_model_dir=serving_dir,
            model_run_dir=str(Path(model_dir, "run")),
            label_key=label_key,
            hyperparameters=hparams_raw,
            custom_config=dict(custom_config or {}),
            train_data=train_table,
            eval_data=eval_table,
        )
        try:
            returned = run_fn(args)
        except KubetfxError:
            raise
        except Exception as err:
            raise KubetfxError(f"{module_file}: run_fn raised {type(err).__name__}: {err}") from err
        if not Path(serving_dir, "saved_model.pb").exists():
            raise KubetfxError(f"{module_file}: run_fn wrote no SavedModel to fn_args.serving_model_dir")
        metrics = {k: float(v) for k, v in (returned or {}).items()} if isinstance(returned, dict) else {}
        return TrainResult(
            device=device,
            strategy=strategy_name,
            mixed_precision=False,
            epochs=int(hparams_raw.get("epochs", 0)),
            steps=0,
            metrics=metrics,
            hyperparameters=hparams_raw,
            wall_seconds=time.perf_counter() - started,
            model_source=f"module {Path(module_file).name} sha {_code_version(module_file)}",
            train_examples=train_table.num_rows,
            eval_examples=eval_table.num_rows,
        )

    params = HyperParameters.parse(hparams_raw)
    tf.config.experimental.enable_op_determinism()
    spec = feature_spec(
        load_schema(schema_dir), load_statistics(statistics_dir, "train"), label_key, train_table
    )
    train_cols, eval_cols = _columns(train_table), _columns(eval_table)
    x_train, x_eval = encode_features(spec, train_cols), encode_features(spec, eval_cols)
    y_train = encode_labels(spec, train_cols[label_key], "train split")
    y_eval = encode_labels(spec, eval_cols[label_key], "eval split")
    import keras

    keras.utils.set_random_seed(params.seed)  # before the weights are created
    with strategy.scope():
        model = build_model(spec, params, mixed_precision=use_mixed)
    metrics = train(model, x_train, y_train, x_eval, y_eval, params)
    from kubetfx.components.trainer.export import export_serving

    export_serving(model, spec, serving_dir)
    Path(model_dir, "keras").mkdir(exist_ok=True)
    model.save(str(Path(model_dir, "keras", "model.keras")))
    Path(model_dir, "feature_spec.json").write_text(spec.to_json())
    steps = params.epochs * -(-len(y_train) // params.batch_size)
    return TrainResult(
        device=device,
        strategy=strategy_name,
        mixed_precision=use_mixed,
        epochs=params.epochs,
        steps=steps,
        metrics=metrics,
        hyperparameters=json.loads(json.dumps(params.__dict__)),
        wall_seconds=time.perf_counter() - started,
        model_source="built-in",
        train_examples=len(y_train),
        eval_examples=len(y_eval),
    )
