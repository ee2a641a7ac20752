"""Trainer's KFP interface: the typed signature is the spec; the body calls the executor."""

from typing import NamedTuple

from kfp.dsl import HTML, Artifact, Dataset, Input, Metrics, Model, Output

from kubetfx.dsl import component


@component
def trainer(
    examples: Input[Dataset],
    schema: Input[Artifact],
    statistics: Input[Artifact],
    model: Output[Model],
    metrics: Output[Metrics],
    report: Output[HTML],
    label_key: str,
    epochs: int = 30,
    batch_size: int = 0,
    learning_rate: float = 0.01,
    hidden_units: list = [32, 16],  # noqa: B006 - KFP reads the default from the signature
    dropout: float = 0.0,
    seed: int = 42,
    module_file: str = "",
    mixed_precision: bool = True,
    custom_config: dict = {},  # noqa: B006
    exclude_features: list = [],  # noqa: B006
    missing_labels: str = "fail",
    patience: int = 5,
    min_delta: float = 0.0,
    validation_fraction: float = 0.1,
    steps_per_execution: int = 0,
) -> NamedTuple(
    "Outputs",
    [("val_accuracy", float), ("device", str), ("warnings", str), ("epochs_run", int), ("stopped", str)],
):
    """Trains a Keras model: a built-in tabular model from the schema, or a user's run_fn.

    Args:
        examples: Examples with train and eval splits.
        schema: Schema from SchemaGen (features, domains, the label's classes).
        statistics: ExampleStatistics (means and deviations for normalization).
        model: Output model: ``Format-Serving/`` SavedModel whose ``serving_default``
            takes serialized tf.Example.
        metrics: Output training and validation metrics for the Kubeflow UI.
        report: Output HTML report: warnings, training, and each feature (its name in the
            data and in the model, preprocessing, what it predicts alone).
        label_key: The label column.
        epochs: Built-in model: the most passes over the training data (a ceiling:
            early stopping usually ends training sooner).
        batch_size: Built-in model: examples per step; 0 chooses it for the data's size
            (the smallest power of two from 32 to 1024 that keeps an epoch to 256 steps).
        learning_rate: Built-in model: Adam's learning rate.
        hidden_units: Built-in model: widths of the hidden layers.
        dropout: Built-in model: dropout after each hidden layer.
        seed: Seed for weights, shuffling and dropout.
        module_file: A Python file with ``run_fn(fn_args)`` (TFX's contract) to train
            your own model instead; it must write a SavedModel to
            ``fn_args.serving_model_dir``. Runs with the pipeline's permissions.
        mixed_precision: Use bfloat16 on GPUs that support it.
        custom_config: Passed to ``run_fn`` as ``fn_args.custom_config``.
        exclude_features: Built-in model: features of the schema to leave out of training
            (an ID, a column that gives the label away), by their names in the data.
        missing_labels: Built-in model: rows whose label is missing ``fail`` the task,
            naming their lines in the input file, or are ``drop``ped (the count and the
            lines go to the metadata and a warning).

    Returns:
        val_accuracy: Accuracy on the eval split (built-in model).
        device: Where training ran (CPU, GPU:0, N GPUs).
        warnings: In a few words: dropped unlabelled rows, probable label leaks, ID-like
            columns (empty when none; the Model's metadata has them in full).
        epochs_run: Epochs trained (built-in model).
        stopped: How training ended, in a few words: ``early 14/30, best 9`` (stopped
            early at epoch 14 of at most 30, epoch 9's weights kept), ``all 30, best 28``,
            ``fixed 30`` (patience 0); the Model's metadata has the reason in full.
    """
    from kubetfx.components.trainer import executor, outputs

    from kubetfx.artifacts.kinds import SCHEMA, STATISTICS, expect

    expect(SCHEMA, schema.metadata, "schema", schema.uri)
    expect(STATISTICS, statistics.metadata, "statistics", statistics.uri)
    result = executor.run(
        examples.path,
        schema.path,
        statistics.path,
        model.path,
        label_key=label_key,
        hyperparameters=outputs.hyperparameters(
            module_file=module_file,
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            hidden_units=hidden_units,
            dropout=dropout,
            seed=seed,
            patience=patience,
            min_delta=min_delta,
            validation_fraction=validation_fraction,
            steps_per_execution=steps_per_execution,
        ),
        module_file=module_file,
        mixed_precision=mixed_precision,
        custom_config=custom_config,
        exclude_features=[str(f) for f in exclude_features],
        missing_labels=missing_labels,
    )
    published = outputs.publish(result, model=model, report=report, metrics=metrics, label_key=label_key)
    return NamedTuple(
        "Outputs",
        [("val_accuracy", float), ("device", str), ("warnings", str), ("epochs_run", int), ("stopped", str)],
    )(*published)
