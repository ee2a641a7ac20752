"""The reference pipeline written for TFX 1.16, run by TFX's LocalDagRunner: the baseline.

    $TFX_PYTHON benchmarks/tfx_pipeline.py --data DIR --root DIR [--epochs 30]

Runs in the benchmark-only TFX environment (``scripts/tfx-bench-env.sh``), by path: it
imports nothing of kubetfx, and kubetfx never imports it. ``benchmarks.tfx_cold``
starts it in a fresh process and times it from process start to exit.

The same steps as ``pipelines/training`` on the same data and model:

* CsvExampleGen over the CSV folder (hash split train:2, eval:1, TFX's default and ours);
* StatisticsGen, SchemaGen (inferred; ours imports a curated schema of the same features),
  ExampleValidator;
* Trainer with ``tfx_trainer_module.py`` as its module file: the same Keras model, epochs
  and batch size as our Trainer's defaults in the reference pipeline (30, 32, lr 0.01);
* a Resolver for the latest blessed model (the baseline; none on a fresh store, as ours);
* Evaluator: TFMA with the EvalConfig our Evaluator builds for these defaults
  (``components/evaluator/executor.py::build_eval_config``: slices overall, ``sex``,
  ``island``; example count, sparse categorical accuracy gated at 0.8 overall and at a
  drop of 0.02 against a baseline, the multi-class confusion matrix; per class binarized:
  AUC, precision, recall, calibration, calibration plot and the six Fairness Indicators
  rates at 0.5);
* Pusher to a filesystem folder when blessed.

Metadata: SQLite (``--root``/metadata.sqlite). Beam: DirectRunner named explicitly (Beam
2.72's default runner first tries to download the Prism binary), in-memory by default.

Prints one JSON line per phase on stdout: ``{"phase": "imported", "time": ...}`` after its
imports (TFX, TensorFlow, TFDV, TFMA, Beam and the executors of the components used, which
the run would otherwise import lazily), then ``{"phase": "ran", ...}`` after the run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODULE_FILE = HERE / "tfx_trainer_module.py"
PIPELINE_NAME = "tfx-penguins"
LABEL = "species"
SLICE_FEATURES = ("sex", "island")
N_CLASSES = 3
FAIRNESS_THRESHOLD = 0.5
RATES = ("FNR", "FPR", "TPR", "TNR", "FalseDiscoveryRate", "FalseOmissionRate")
RATE_NAMES = {
    "FNR": "fnr",
    "FPR": "fpr",
    "TPR": "tpr",
    "TNR": "tnr",
    "FalseDiscoveryRate": "false_discovery_rate",
    "FalseOmissionRate": "false_omission_rate",
}


def _stamp(phase: str) -> None:
    print(json.dumps({"phase": phase, "time": time.time()}), flush=True)


def _import_all() -> None:
    """What the run needs, imported up front so the import phase can be timed apart."""
    import apache_beam  # noqa: F401
    import tensorflow  # noqa: F401
    import tensorflow_data_validation  # noqa: F401
    import tensorflow_model_analysis  # noqa: F401
    from tfx import v1  # noqa: F401
    from tfx.components.evaluator import executor as _evaluator  # noqa: F401
    from tfx.components.example_gen.csv_example_gen import executor as _example_gen  # noqa: F401
    from tfx.components.example_validator import executor as _validator  # noqa: F401
    from tfx.components.pusher import executor as _pusher  # noqa: F401
    from tfx.components.schema_gen import executor as _schema_gen  # noqa: F401
    from tfx.components.statistics_gen import executor as _statistics_gen  # noqa: F401
    from tfx.components.trainer import executor as _trainer  # noqa: F401
    from tfx.orchestration.local import local_dag_runner  # noqa: F401


def eval_config(min_accuracy: float = 0.8, max_accuracy_drop: float = 0.02) -> object:
    """The EvalConfig kubetfx's Evaluator builds for the reference pipeline's defaults."""
    import tensorflow_model_analysis as tfma

    accuracy_gate = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": min_accuracy}),
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.HIGHER_IS_BETTER, absolute={"value": -max_accuracy_drop}
        ),
    )
    overall_only = [tfma.PerSliceMetricThreshold(slicing_specs=[tfma.SlicingSpec()], threshold=accuracy_gate)]
    overall_metrics = [
        tfma.MetricConfig(class_name="ExampleCount"),
        tfma.MetricConfig(class_name="SparseCategoricalAccuracy", per_slice_thresholds=overall_only),
        tfma.MetricConfig(class_name="MultiClassConfusionMatrixPlot"),
    ]
    per_class = [
        tfma.MetricConfig(class_name=name)
        for name in ("AUC", "Precision", "Recall", "Calibration", "CalibrationPlot")
    ]
    per_class += [
        tfma.MetricConfig(
            class_name=rate,
            config=json.dumps(
                {"thresholds": [FAIRNESS_THRESHOLD], "name": f"{RATE_NAMES[rate]}@{FAIRNESS_THRESHOLD}"}
            ),
        )
        for rate in RATES
    ]
    return tfma.EvalConfig(
        model_specs=[
            tfma.ModelSpec(signature_name="serving_default", label_key=LABEL, prediction_key="probabilities")
        ],
        slicing_specs=[tfma.SlicingSpec(), *(tfma.SlicingSpec(feature_keys=[f]) for f in SLICE_FEATURES)],
        metrics_specs=[
            tfma.MetricsSpec(metrics=overall_metrics),
            tfma.MetricsSpec(
                metrics=per_class,
                binarize=tfma.BinarizationOptions(class_ids={"values": list(range(N_CLASSES))}),
            ),
        ],
    )


def create_pipeline(
    data: str, root: str, serving: str, hyperparameters: dict, beam_args: list[str]
) -> object:
    """The TFX pipeline object."""
    from tfx import v1 as tfx

    example_gen = tfx.components.CsvExampleGen(input_base=data)
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    schema_gen = tfx.components.SchemaGen(statistics=statistics_gen.outputs["statistics"])
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"]
    )
    # TFX packages the module file's whole folder as a wheel: give it a folder of its own.
    module_dir = Path(root, "module")
    module_dir.mkdir(parents=True, exist_ok=True)
    module_file = module_dir / MODULE_FILE.name
    shutil.copyfile(MODULE_FILE, module_file)
    trainer = tfx.components.Trainer(
        module_file=str(module_file),
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        custom_config={**hyperparameters, "label_key": LABEL},
    )
    trainer.add_upstream_node(example_validator)  # as ours: never train on data that failed validation
    model_resolver = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id("latest_blessed_model_resolver")
    evaluator = tfx.components.Evaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=model_resolver.outputs["model"],
        eval_config=eval_config(),
    )
    pusher = tfx.components.Pusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=serving)
        ),
    )
    return tfx.dsl.Pipeline(
        pipeline_name=PIPELINE_NAME,
        pipeline_root=os.path.join(root, "pipeline-root"),
        components=[
            example_gen,
            statistics_gen,
            schema_gen,
            example_validator,
            trainer,
            model_resolver,
            evaluator,
            pusher,
        ],
        enable_cache=False,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            os.path.join(root, "metadata.sqlite")
        ),
        beam_pipeline_args=beam_args,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", required=True, help="folder holding the CSV file")
    parser.add_argument("--root", required=True, help="fresh folder: pipeline root, metadata, pushed model")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--beam-mode", default="in_memory", choices=("in_memory", "multi_threading", "multi_processing")
    )
    parser.add_argument("--beam-workers", type=int, default=1)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    _import_all()
    _stamp("imported")
    from tfx import v1 as tfx

    beam_args = [
        "--runner=DirectRunner",
        f"--direct_running_mode={args.beam_mode}",
        f"--direct_num_workers={args.beam_workers}",
    ]
    pipeline = create_pipeline(
        args.data,
        args.root,
        os.path.join(args.root, "serving"),
        {"epochs": args.epochs, "batch_size": args.batch_size, "learning_rate": 0.01},
        beam_args,
    )
    tfx.orchestration.LocalDagRunner().run(pipeline)
    _stamp("ran")
    pushed = list(Path(args.root, "serving").glob("*"))
    print(json.dumps({"phase": "pushed", "models": len(pushed)}), flush=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
