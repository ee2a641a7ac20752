"""Trainer: a built-in Keras tabular model derived from the schema, or a user's ``run_fn``.

Layout written under ``model_dir``::

    Format-Serving/          TensorFlow SavedModel, signature serving_default(examples)
    keras/model.keras        the Keras model (built-in model only; any Keras 3 backend loads it)
    feature_spec.json        the preprocessing the signature replays (built-in model only)

Column names are kept as written in the data (``Delta 15 N (o/oo)``) in the serving
signature's tf.Example keys, the metadata and the messages; inside the Keras model each
feature has a safe name (``Delta_15_N_o_oo``), recorded in ``feature_spec.json``.

Before training, the built-in model refuses (or drops) rows whose label is missing, naming
the input file's lines, and checks each feature for a probable label leak and for an
ID-like column (:mod:`.checks`); the findings are warnings in the Model's metadata.

Devices: one GPU -> the default strategy on it; several -> MirroredStrategy; ``TF_CONFIG``
set -> MultiWorkerMirroredStrategy; mixed precision (bfloat16) on GPUs that support it,
unless turned off. Seeds are fixed and TensorFlow's ops are made deterministic, so the
same inputs and parameters give the same metrics.

The module is the Trainer's one flow (data, feature spec, label and column checks, devices,
training, export) with the pieces that stand alone beside it: the model (:mod:`.model`),
the column checks (:mod:`.checks`), the serving export (:mod:`.export`) and the outputs
(:mod:`.outputs`).
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from kubetfx.components.trainer.model import (
    Feature,
    FeatureSpec,
    HyperParameters,
    build_model,
    encode_features,
    encode_labels,
    fit,
    label_text,
    safe_names,
)

from kubetfx.artifacts import examples
from kubetfx.artifacts import model as model_artifact
from kubetfx.artifacts import schema as schema_artifact
from kubetfx.artifacts import statistics as statistics_artifact
from kubetfx.artifacts.kinds import MODEL, TYPE_KEY
from kubetfx.artifacts.layout import SAVED_MODEL_FILE, SERVING_DIR
from kubetfx.errors import InputDataError, KubetfxError, ParameterError

MODEL_KIND = MODEL
MISSING_LABEL_POLICIES = ("drop", "fail")


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
    exclude_features: list[str] = field(default_factory=list)  # the component's parameter
    # Multi-worker training (TF_CONFIG names a cluster): every worker runs run_fn under the
    # same strategy; only the chief writes serving_model_dir (docs/training.md).
    is_chief: bool = True
    num_workers: int = 1
    # The tf.distribute strategy the Trainer chose (MultiWorkerMirroredStrategy when
    # TF_CONFIG names a cluster): build the model in its scope. A process can have only one.
    strategy: Any = None


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
    feature_keys: list[str] = field(default_factory=list)  # trained on, as named in the data
    excluded_features: list[str] = field(default_factory=list)
    missing_labels: str = "fail"
    missing_labels_dropped: dict[str, int] = field(default_factory=dict)  # per split
    warnings: list[str] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)  # the checks' warnings, as data
    # Each feature's one-feature rule, balanced accuracy on the eval split (the leak check).
    single_feature_scores: dict[str, float] = field(default_factory=dict)
    features: list[dict[str, Any]] = field(default_factory=list)  # the FeatureSpec's, for the report
    # How training ended (built-in model): epochs is the number run, epochs_ceiling the
    # parameter; stopped is "early", "ceiling" or "fixed" (patience 0), stop_reason in words.
    epochs_ceiling: int = 0
    best_epoch: int = 0
    stopped: str = ""
    stop_reason: str = ""
    validation_rows: int = 0  # held out of the train split to decide when to stop
    sized: list[str] = field(default_factory=list)  # hyper-parameters chosen for the data's size
    stop_summary: str = ""  # a few words for the run summary: "early 14/30, best 9"
    chief: bool = True  # False on a multi-worker run's other workers, which write no model
    workers: int = 1
    weights_sha256: str = ""  # of the trained weights (built-in model): equal runs, equal digests

    def short_warnings(self) -> str:
        """The warnings in a few words each, for the run summary (metadata has them in full)."""
        short = []
        if self.missing_labels_dropped:
            short.append(f"dropped {sum(self.missing_labels_dropped.values())} row(s) without a label")
        names = {"label_leak": "probable label leak", "id_like": "ID-like column"}
        short += [f"{names[f['kind']]}: {f['feature']!r}" for f in self.findings]
        return "; ".join(short)

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
            "feature_keys": list(self.feature_keys),
            "excluded_features": list(self.excluded_features),
            "missing_labels": self.missing_labels,
            "missing_labels_dropped": sum(self.missing_labels_dropped.values()),
            "missing_labels_dropped_by_split": dict(self.missing_labels_dropped),
            "warnings": list(self.warnings),
            "column_checks": list(self.findings),
            "epochs_ceiling": self.epochs_ceiling,
            "best_epoch": self.best_epoch,
            "stopped": self.stopped,
            "stop_reason": self.stop_reason,
            "validation_rows": self.validation_rows,
            "sized_for_data": list(self.sized),
            "workers": self.workers,
            "weights_sha256": self.weights_sha256,
        }


# ---------------------------------------------------------------------- data


def _columns(table: Any) -> dict[str, list[Any]]:
    return {name: table.column(name).to_pylist() for name in table.column_names}


def feature_spec(
    schema: Any,
    statistics: Any,
    label_key: str,
    train_table: Any,
    exclude_features: Sequence[str] = (),
    column_names: Sequence[str] | None = None,
) -> FeatureSpec:
    """Inputs and preprocessing constants from the schema and the train split's statistics.

    ``train_table`` needs only the label column when ``column_names`` names the split's
    columns (a streamed split)."""
    columns = list(column_names) if column_names is not None else list(train_table.column_names)
    from tensorflow_metadata.proto.v0 import schema_pb2

    names = [f.name for f in schema.feature]
    if label_key not in names:
        raise InputDataError(f"label_key {label_key!r} is not in the schema; features: {', '.join(names)}")
    check_exclusions(exclude_features, names, label_key)
    domains = {d.name: list(d.value) for d in schema.string_domain}
    stats = {(f.path.step[0] if f.path.step else f.name): f for f in statistics.datasets[0].features}
    features = []
    for feature in schema.feature:
        if (
            feature.name == label_key
            or "TRAINING" in feature.not_in_environment
            or feature.name in exclude_features
        ):
            continue
        if feature.name not in columns:
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
    if not features:
        left_out = f" (exclude_features leaves out {', '.join(exclude_features)})" if exclude_features else ""
        raise InputDataError(f"no feature is left to train on besides the label {label_key!r}{left_out}")
    for feature, safe in zip(features, safe_names([f.name for f in features]).values(), strict=True):
        feature.input_name = safe
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


def check_exclusions(exclude_features: Sequence[str], names: Sequence[str], label_key: str) -> None:
    """``exclude_features`` must name features of the schema, and not the label."""
    unknown = [f for f in exclude_features if f not in names]
    if unknown:
        raise ParameterError(
            f"exclude_features names {', '.join(repr(f) for f in unknown)}, not "
            f"{'a feature' if len(unknown) == 1 else 'features'} of the schema; features: "
            + ", ".join(repr(n) for n in names if n != label_key)
        )
    if label_key in exclude_features:
        raise ParameterError(f"exclude_features names the label {label_key!r}; it cannot be left out")


# ---------------------------------------------------------------------- missing labels


def missing_label_rows(values: Sequence[Any]) -> list[int]:
    """Rows (0-based, in the split) whose label is missing: no value, null, NaN or empty text."""
    from kubetfx.components.trainer.checks import MISSING, first_value

    missing = []
    for row, value in enumerate(values):
        first = first_value(value)
        if first is MISSING or (isinstance(first, str) and not first.strip()):
            missing.append(row)
    return missing


def source_rows(
    examples_dir: str, split: str, rows: Sequence[int], split_size: int
) -> list[tuple[str, str, int]] | None:
    """Where rows of a split came from, as (file, "line" or "row index", number); None when
    ExampleGen recorded no source rows for these examples (written by another tool)."""
    table = examples.read_source_rows(examples_dir, split)
    if table is None:
        return None
    if table.num_rows != split_size:  # not these examples' record: say nothing rather than lie
        return None
    return [
        (r["file"], "line", r["line"]) if r["line"] is not None else (r["file"], "row index", r["row"])
        for r in table.take(list(rows)).to_pylist()
    ]


def describe_rows(examples_dir: str, rows_by_split: dict[str, tuple[list[int], int]], limit: int = 10) -> str:
    """Rows named so the user can find them: ``penguins.csv lines 5, 17`` (the input file's
    lines), else ``rows 3, 9 of the train split``. ``rows_by_split``: split -> (rows, split size)."""
    found: list[tuple[str, str, int]] = []
    unknown: list[str] = []
    for split, (rows, size) in rows_by_split.items():
        if not rows:
            continue
        where = source_rows(examples_dir, split, rows, size)
        if where is None:
            shown = ", ".join(str(r) for r in rows[:limit]) + (" ..." if len(rows) > limit else "")
            unknown.append(f"rows {shown} of the {split} split (0-based)")
            continue
        found += where
    parts = list(unknown)
    by_file: dict[tuple[str, str], list[int]] = {}
    for file, kind, number in sorted(found):
        by_file.setdefault((file, kind), []).append(number)
    for (file, kind), numbers in by_file.items():
        shown = ", ".join(str(n) for n in numbers[:limit])
        more = f" and {len(numbers) - limit} more" if len(numbers) > limit else ""
        plural = {"line": "lines", "row index": "row indices"}[kind] if len(numbers) > 1 else kind
        parts.append(f"{file} {plural} {shown}{more}")
    return "; ".join(parts)


def apply_missing_labels(
    policy: str, label_key: str, examples_dir: str, tables: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, int], str]:
    """Drop the rows without a label (``drop``) or refuse them (``fail``), naming them.

    Returns the tables, the rows dropped per split, and a warning ("" when none)."""

    missing = {split: missing_label_rows(t.column(label_key).to_pylist()) for split, t in tables.items()}
    sizes = {split: t.num_rows for split, t in tables.items()}
    dropped, warning = missing_labels_outcome(policy, label_key, examples_dir, missing, sizes)
    if not dropped:
        return tables, {}, ""
    return {split: _drop_rows(t, missing[split])[0] for split, t in tables.items()}, dropped, warning


def _drop_rows(table: Any, rows: Sequence[int]) -> tuple[Any, int]:
    """``table`` without ``rows`` (0-based), and how many were dropped."""
    import numpy as np
    import pyarrow as pa

    if not len(rows):
        return table, 0
    keep = np.ones(table.num_rows, dtype=bool)
    keep[list(rows)] = False
    return table.filter(pa.array(keep)), len(rows)


def missing_labels_outcome(
    policy: str,
    label_key: str,
    examples_dir: str,
    missing: dict[str, list[int]],
    sizes: dict[str, int],
) -> tuple[dict[str, int], str]:
    """Refuse (``fail``) the rows without a label, naming them, or say they are dropped
    (``drop``): the rows dropped per split and the warning ({}, "" when none)."""
    total = sum(len(rows) for rows in missing.values())
    if not total:
        return {}, ""
    counts = ", ".join(f"{len(rows)} in {split}" for split, rows in missing.items() if rows)
    where = describe_rows(examples_dir, {split: (rows, sizes[split]) for split, rows in missing.items()})
    if policy == "fail":
        raise InputDataError(
            f"label {label_key!r} is missing (empty or NaN) in {total} row(s) ({counts}): {where}; "
            "drop those rows or fill in their label in the input data, or set missing_labels='drop' "
            "to train on the labelled rows only"
        )
    for split, rows in missing.items():
        if len(rows) == sizes[split]:
            raise InputDataError(f"label {label_key!r} is missing in every row of the {split} split: {where}")
    warning = (
        f"dropped {total} row(s) whose label {label_key!r} is missing ({counts}): {where} "
        "(missing_labels='fail' refuses them instead)"
    )
    return {split: len(rows) for split, rows in missing.items() if rows}, warning


# ---------------------------------------------------------------------- checks


def data_checks(
    spec: FeatureSpec,
    train_cols: dict[str, list[Any]],
    eval_cols: dict[str, list[Any]],
    y_train: Any,
    y_eval: Any,
) -> tuple[list[Any], dict[str, float]]:
    """Probable label leaks and ID-like columns among the features trained on, and each
    feature's one-feature-rule balanced accuracy on the eval split (for the report)."""
    from kubetfx.components.trainer.checks import first_values, id_like, label_leak, one_feature_rule_score

    findings, scores = [], {}
    for feature in spec.features:
        train_values = first_values(train_cols[feature.name])
        eval_values = first_values(eval_cols[feature.name])
        score = one_feature_rule_score(feature.kind, train_values, y_train, eval_values, y_eval)
        scores[feature.name] = round(score, 4)
        found = id_like(feature.name, feature.kind, feature.dtype, train_values + eval_values)
        if found is None:  # an ID is not also reported as a leak
            found = label_leak(
                feature.name, feature.kind, train_values, y_train, eval_values, y_eval, spec.label, score
            )
        if found is not None:
            findings.append(found)
    return findings, scores


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
    exclude_features: Sequence[str] = (),
    missing_labels: str = "fail",
) -> TrainResult:
    """Train and export under ``model_dir``.

    ``exclude_features`` leaves features of the schema out of the built-in model;
    ``missing_labels`` is ``fail`` (an error naming the rows' lines in the input file) or
    ``drop`` (train on the labelled rows, with a warning naming the others). A ``run_fn``
    gets the data as it is and decides itself.
    """
    if missing_labels not in MISSING_LABEL_POLICIES:
        raise ParameterError(
            f"missing_labels {missing_labels!r}: use {' or '.join(repr(p) for p in MISSING_LABEL_POLICIES)}"
        )
    exclude_features = [str(f) for f in exclude_features]
    import tensorflow as tf

    started = time.perf_counter()
    strategy, strategy_name, device, bf16 = choose_strategy(tf)
    use_mixed = bool(mixed_precision and bf16)
    serving_dir = model_artifact.serving_dir(model_dir)
    chief, workers = True, 1
    if strategy_name == "MultiWorkerMirroredStrategy":
        from kubetfx.components.trainer.distributed import cluster_role

        _, _, chief, workers = cluster_role()
    if chief:  # a multi-worker run's other workers write nothing under model_dir
        Path(model_dir).mkdir(parents=True, exist_ok=True)
    hparams_raw = dict(hyperparameters or {})

    if module_file:
        if exclude_features:  # a run_fn honours them, but they must name features
            check_exclusions(
                exclude_features, [f.name for f in schema_artifact.load(schema_dir).feature], label_key
            )
        run_fn = load_run_fn(module_file)
        train_table = examples.read_split(examples_dir, "train")
        eval_table = examples.read_split(examples_dir, "eval")
        args = FnArgs(
            train_files=examples.split_files(examples_dir, "train"),
            eval_files=examples.split_files(examples_dir, "eval"),
            schema_file=schema_artifact.path(schema_dir),
            serving_model_dir=serving_dir,
            model_run_dir=str(Path(model_dir, "run")),
            label_key=label_key,
            hyperparameters=hparams_raw,
            custom_config=dict(custom_config or {}),
            train_data=train_table,
            eval_data=eval_table,
            exclude_features=exclude_features,
            is_chief=chief,
            num_workers=workers,
            strategy=strategy,
        )
        try:
            returned = run_fn(args)
        except KubetfxError:
            raise
        except Exception as err:
            raise KubetfxError(f"{module_file}: run_fn raised {type(err).__name__}: {err}") from err
        if chief and not Path(serving_dir, SAVED_MODEL_FILE).exists():
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
            excluded_features=exclude_features,
            chief=chief,
            workers=workers,
        )

    params = HyperParameters.parse(hparams_raw)
    tf.config.experimental.enable_op_determinism()
    from kubetfx.components.trainer import stream

    schema = schema_artifact.load(schema_dir)
    statistics = statistics_artifact.load(statistics_dir, "train")
    streamed = (
        strategy_name != "MultiWorkerMirroredStrategy"
        and all(stream.columnar_file(examples_dir, split) for split in ("train", "eval"))
        and stream.num_rows(examples_dir, "train") > params.stream_rows
    )
    if streamed:  # the splits are never held: labels column by column, checks on a sample
        labels = {split: stream.read_column(examples_dir, split, label_key) for split in ("train", "eval")}
        names = stream.column_names(examples_dir, "train")
        spec = feature_spec(schema, statistics, label_key, labels["train"], exclude_features, names)
        missing = {split: stream.missing_label_rows(examples_dir, split, label_key) for split in labels}
        sizes = {split: table.num_rows for split, table in labels.items()}
        dropped, dropped_warning = missing_labels_outcome(
            missing_labels, label_key, examples_dir, missing, sizes
        )
        samples = {}
        for split in ("train", "eval"):
            sample = stream.head(examples_dir, split)
            unlabelled = [row for row in missing[split] if row < sample.num_rows]
            samples[split], _ = _drop_rows(sample, unlabelled)
        train_cols, eval_cols = _columns(samples["train"]), _columns(samples["eval"])
        findings, scores = data_checks(
            spec,
            train_cols,
            eval_cols,
            encode_labels(spec, train_cols[label_key], "train split"),
            encode_labels(spec, eval_cols[label_key], "eval split"),
        )
        n_train = sizes["train"] - len(missing["train"])
        n_eval = sizes["eval"] - len(missing["eval"])
    else:
        train_table = examples.read_split(examples_dir, "train")
        eval_table = examples.read_split(examples_dir, "eval")
        spec = feature_spec(schema, statistics, label_key, train_table, exclude_features)
        tables, dropped, dropped_warning = apply_missing_labels(
            missing_labels, label_key, examples_dir, {"train": train_table, "eval": eval_table}
        )
        train_cols, eval_cols = _columns(tables["train"]), _columns(tables["eval"])
        x_train, x_eval = encode_features(spec, train_cols), encode_features(spec, eval_cols)
        y_train = encode_labels(spec, train_cols[label_key], "train split")
        y_eval = encode_labels(spec, eval_cols[label_key], "eval split")
        findings, scores = data_checks(spec, train_cols, eval_cols, y_train, y_eval)
        n_train, n_eval = len(y_train), len(y_eval)
    warnings = ([dropped_warning] if dropped_warning else []) + [f.message for f in findings]
    import keras

    sized = [name for name in ("batch_size", "steps_per_execution") if not getattr(params, name)]
    params = params.sized(n_train)
    if strategy_name == "MirroredStrategy" and params.steps_per_execution > 1:
        # Keras 3's loop of several steps per call fails under MirroredStrategy ("You must
        # feed a value for placeholder tensor": its tf.cond around a step whose optimizer
        # merges across replicas, keras-team/keras#19246). One step per call trains.
        if "steps_per_execution" not in sized:
            warnings.append(
                f"steps_per_execution {params.steps_per_execution} is not possible on several GPUs "
                "(MirroredStrategy): 1 is used"
            )
        params = replace(params, steps_per_execution=1)
    keras.utils.set_random_seed(params.seed)  # before the weights are created
    with strategy.scope():
        model = build_model(spec, params, mixed_precision=use_mixed)
    from kubetfx.components.trainer.distributed import fit_multi_worker, weights_digest

    if strategy_name == "MultiWorkerMirroredStrategy":  # Keras 3's fit fails under it: a loop of our own
        fitted = fit_multi_worker(strategy, model, x_train, y_train, x_eval, y_eval, params, spec.binary)
    elif streamed:
        fitted = stream.fit_streamed(model, spec, examples_dir, missing, n_train, params)
    else:
        fitted = fit(model, x_train, y_train, x_eval, y_eval, params)
    from kubetfx.components.trainer.export import export_serving

    if chief:
        export_serving(model, spec, serving_dir)
        Path(model_dir, "keras").mkdir(exist_ok=True)
        model.save(str(Path(model_dir, "keras", "model.keras")))
        Path(model_dir, "feature_spec.json").write_text(spec.to_json())
    else:
        # Every worker takes part in the export (TensorFlow's rule for saving under a
        # multi-worker strategy), into a folder of its own that is then removed: only the
        # chief writes the model.
        import shutil
        import tempfile

        scratch = tempfile.mkdtemp(prefix="kubetfx-worker-export-")
        try:
            export_serving(model, spec, scratch)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return TrainResult(
        device=device,
        strategy=strategy_name,
        mixed_precision=use_mixed,
        epochs=fitted.epochs_run,
        steps=fitted.steps,
        metrics=fitted.metrics,
        hyperparameters=json.loads(json.dumps(params.__dict__)),
        wall_seconds=time.perf_counter() - started,
        model_source="built-in",
        train_examples=n_train,
        eval_examples=n_eval,
        feature_keys=[f.name for f in spec.features],
        excluded_features=exclude_features,
        missing_labels=missing_labels,
        missing_labels_dropped=dropped,
        warnings=warnings,
        findings=[asdict(f) for f in findings],
        single_feature_scores=scores,
        features=[asdict(f) for f in spec.features],
        epochs_ceiling=params.epochs,
        best_epoch=fitted.best_epoch,
        stopped=fitted.stopped,
        stop_reason=fitted.reason,
        validation_rows=fitted.validation_rows,
        sized=sized,
        stop_summary=fitted.summary(),
        chief=chief,
        workers=workers,
        weights_sha256=weights_digest(model),
    )
