"""The reference training pipeline: wiring only; components say what, the pipeline says where.

ExampleGen -> StatisticsGen -> SchemaGen -> ExampleValidator -> Trainer -> Evaluator
(against the baseline model_resolver finds in lineage) -> Pusher (only when blessed).
"""

from kfp import dsl
from kubetfx.pipelines.steps import read_examples, validate_train_evaluate_push

from kubetfx.cluster import use_cluster_settings, use_lineage_scope

PENGUINS = "pkg://palmerpenguins/data/penguins.csv"
PENGUINS_SCHEMA = "pkg://kubetfx.schemas/penguins/schema.pbtxt"


@dsl.pipeline(
    name="kubetfx-training",
    description="Validates tabular CSV/Parquet data with TFDV, trains a Keras model, evaluates it"
    " per slice with TFMA against the served model, and pushes it when blessed.",
)
def training(
    input_uri: str = PENGUINS,
    splits: str = "train:2,eval:1",
    partition_feature: str = "",
    schema_file: str = PENGUINS_SCHEMA,
    label_key: str = "species",
    fail_on_anomalies: bool = True,
    serving_data_uri: str = "",
    epochs: int = 30,
    learning_rate: float = 0.01,
    module_file: str = "",
    exclude_features: list = [],  # noqa: B006 - KFP reads the default from the signature
    slice_features: list = ["sex", "island"],  # noqa: B006 - KFP reads the default from the signature
    feature_crosses: list = [],  # noqa: B006
    min_accuracy: float = 0.8,
    max_accuracy_drop: float = 0.02,
    max_fairness_gap: float = 0.2,
    min_slice_size: int = 10,
    model_name: str = "penguins",
    push_destination: str = "",
    latency_slo_p95_ms: float = 200.0,
    serving_load_requests: int = 2000,
    serving_server: str = "auto",
    baseline_alias: str = "",
    lineage_scope: str = "",
    beam_pipeline_args: list = [],  # noqa: B006 - KFP reads the default from the signature
) -> None:
    """The reference pipeline.

    Args:
        input_uri: CSV or Parquet file, folder, or ``{SPAN}`` pattern (default: the
            penguins data shipped in the ``palmerpenguins`` package).
        splits: Split names and hash buckets.
        partition_feature: Column that decides the split; empty hashes the whole row.
        schema_file: A curated schema to validate against (default: the penguins one
            shipped in ``kubetfx.schemas``); empty infers a schema from the data.
        label_key: The label column (required in training, absent at serving).
        fail_on_anomalies: Stop the pipeline when the data has anomalies, drifted or skewed.
        serving_data_uri: Optional serving-data sample for the skew check.
        epochs: Training epochs of the built-in model.
        learning_rate: Adam's learning rate for the built-in model.
        module_file: A Python file with ``run_fn(fn_args)`` to train your own model.
        exclude_features: Columns the built-in model leaves out (an ID, a column that
            gives the label away), by their names in the data.
        slice_features: Fairness features: the Evaluator slices by each and gates the gap.
        feature_crosses: Extra slices by feature crosses, e.g. ``["sex,island"]``.
        min_accuracy: The model must reach this overall accuracy to be blessed.
        max_accuracy_drop: Largest allowed accuracy drop against the baseline model.
        max_fairness_gap: Largest allowed gap of the fairness metric between slices.
        min_slice_size: Smaller slices are reported, not gated.
        model_name: Name the model is blessed and pushed under.
        push_destination: Where to push (a path or object-store URI inside the allowed
            push root from kubetfx's settings); empty: the allowed root itself.
        latency_slo_p95_ms: The serving check's latency objective: the push is refused when the
            p95 under load is over it (milliseconds).
        serving_load_requests: Requests the serving check's load sends (at concurrency 8).
        serving_server: ``auto`` (KServe's model server when its environment is installed,
            else in-process, recorded as such), ``kserve`` (required) or ``in-process``.
        baseline_alias: Evaluate against the version this alias names (e.g. ``production``,
            see ``kubetfx promote``) instead of the latest push; empty: the latest push.
        lineage_scope: The lineage this run belongs to: the resolver's baseline, drift
            baselines and the data change check look only at runs of the same scope (one
            per dataset, say); empty: the pipeline's name.
        beam_pipeline_args: Beam options for the data tasks (ExampleGen, StatisticsGen,
            ExampleValidator, Evaluator), e.g. ``["--runner=PortableRunner",
            "--job_endpoint=HOST:8099", "--environment_type=EXTERNAL",
            "--environment_config=HOST:50000"]``: given, they run on Beam with them;
            empty: in their own processes. See docs/beam.md.
    """
    use_lineage_scope(lineage_scope)
    gen = read_examples(
        input_uri, splits=splits, partition_feature=partition_feature, beam_pipeline_args=beam_pipeline_args
    )
    validate_train_evaluate_push(
        gen.outputs["examples"],
        schema_file=schema_file,
        label_key=label_key,
        fail_on_anomalies=fail_on_anomalies,
        serving_data_uri=serving_data_uri,
        epochs=epochs,
        learning_rate=learning_rate,
        module_file=module_file,
        exclude_features=exclude_features,
        slice_features=slice_features,
        feature_crosses=feature_crosses,
        min_accuracy=min_accuracy,
        max_accuracy_drop=max_accuracy_drop,
        max_fairness_gap=max_fairness_gap,
        min_slice_size=min_slice_size,
        model_name=model_name,
        push_destination=push_destination,
        latency_slo_p95_ms=latency_slo_p95_ms,
        serving_load_requests=serving_load_requests,
        serving_server=serving_server,
        baseline_alias=baseline_alias,
        beam_pipeline_args=beam_pipeline_args,
    )
    # In a cluster every task reads kubetfx's settings and secret from the namespace.
    use_cluster_settings()
