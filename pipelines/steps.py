"""The steps both reference pipelines share, from statistics to push: one place to read.

A plain function called inside a ``@dsl.pipeline`` body: it adds the tasks to the pipeline
being defined, exactly as if they were written there (the compiled YAML is the same).
"""

from typing import Any

from kfp import dsl
from kubetfx.components import (
    data_fingerprint,
    evaluator,
    example_gen,
    example_validator,
    model_card,
    model_resolver,
    pusher,
    schema_gen,
    serving_check,
    statistics_gen,
    trainer,
)

from kubetfx.cluster import place_on_accelerator


def read_examples(
    input_uri: Any, *, splits: Any, partition_feature: Any, beam_pipeline_args: Any = None
) -> Any:
    """data_fingerprint -> ExampleGen; returns the ExampleGen task.

    KFP's cache key holds input values, not the data behind a URI: ExampleGen gets the
    data's content fingerprint as an input, so a run on unchanged data reuses ExampleGen
    (and everything downstream) from KFP's cache, and new data at the same URI does not.
    The fingerprint itself is computed on every run. ``beam_pipeline_args`` (a pipeline
    parameter; None: the component's default) puts ExampleGen on Beam.
    """
    fingerprint = data_fingerprint(input_uri=input_uri)
    fingerprint.set_caching_options(False)
    return example_gen(
        input_uri=input_uri,
        splits=splits,
        partition_feature=partition_feature,
        kubetfx_data_fingerprint=fingerprint.outputs["fingerprint"],
        **_beam(beam_pipeline_args),
    )


def _beam(beam_pipeline_args: Any) -> dict[str, Any]:
    """The ``beam_pipeline_args`` argument of a data task, when the pipeline passes one."""
    return {} if beam_pipeline_args is None else {"beam_pipeline_args": beam_pipeline_args}


def validate_train_evaluate_push(
    examples: Any,
    *,
    schema_file: Any,
    label_key: Any,
    fail_on_anomalies: Any,
    serving_data_uri: Any,
    epochs: Any,
    learning_rate: Any,
    module_file: Any,
    exclude_features: Any,
    slice_features: Any,
    feature_crosses: Any,
    min_accuracy: Any,
    max_accuracy_drop: Any,
    max_fairness_gap: Any,
    min_slice_size: Any,
    model_name: Any,
    push_destination: Any,
    latency_slo_p95_ms: Any = 200.0,
    serving_load_requests: Any = 2000,
    serving_server: Any = "auto",
    baseline_alias: Any = "",
    beam_pipeline_args: Any = None,
) -> None:
    """StatisticsGen -> SchemaGen -> ExampleValidator -> Trainer -> model_resolver ->
    Evaluator -> Pusher -> model_card (inside ``dsl.If(blessed)``), on ExampleGen's ``examples``.
    ``beam_pipeline_args`` (None: the components' default) go to every data task."""
    stats = statistics_gen(examples=examples, **_beam(beam_pipeline_args))
    schema = schema_gen(statistics=stats.outputs["statistics"], schema_file=schema_file, label_key=label_key)
    validated = example_validator(
        statistics=stats.outputs["statistics"],
        schema=schema.outputs["schema"],
        fail_on_anomalies=fail_on_anomalies,
        serving_data_uri=serving_data_uri,
        **_beam(beam_pipeline_args),
    )
    # Its drift baseline is read from lineage (the previous run of the same data source):
    # a cached result would compare with whatever was previous when it was first computed.
    validated.set_caching_options(False)
    # Never train on data that failed validation: the trainer waits for the validator.
    trained = trainer(
        examples=examples,
        schema=schema.outputs["schema"],
        statistics=stats.outputs["statistics"],
        label_key=label_key,
        epochs=epochs,
        learning_rate=learning_rate,
        module_file=module_file,
        exclude_features=exclude_features,
    ).after(validated)
    place_on_accelerator(trained)  # GPUs when compiled with --accelerator-profile
    # The baseline is read from lineage when the candidate is ready: never from a cache.
    baseline = model_resolver(
        model_name=model_name, candidate=trained.outputs["model"], baseline_alias=baseline_alias
    )
    baseline.set_caching_options(False)
    evaluated = evaluator(
        examples=examples,
        model=trained.outputs["model"],
        label_key=label_key,
        model_name=model_name,
        slice_features=slice_features,
        feature_crosses=feature_crosses,
        min_accuracy=min_accuracy,
        max_accuracy_drop=max_accuracy_drop,
        max_fairness_gap=max_fairness_gap,
        min_slice_size=min_slice_size,
        baseline_model_uri=baseline.outputs["model_uri"],
        baseline_model_id=baseline.outputs["model_id"],
        **_beam(beam_pipeline_args),
    )
    # The model in a model server under load, beside the Evaluator (it needs only the model
    # and the examples); the Pusher judges its record against the SLO.
    checked = serving_check(
        model=trained.outputs["model"],
        examples=examples,
        model_name=model_name,
        load_requests=serving_load_requests,
        serving_server=serving_server,
    )
    with dsl.If(evaluated.outputs["blessed"] == True, name="blessed"):  # noqa: E712 - a KFP condition
        pushed = pusher(
            model=trained.outputs["model"],
            blessing=evaluated.outputs["blessing"],
            serving_check=checked.outputs["check"],
            model_name=model_name,
            push_destination=push_destination,
            latency_slo_p95_ms=latency_slo_p95_ms,
        )
        # The reviewer's card of what was pushed, from lineage; rollouts and aliases come later.
        model_card(pushed_model=pushed.outputs["pushed_model"]).set_caching_options(False)
