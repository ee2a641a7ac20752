"""The Evaluator on Beam: TFMA's own ``run_model_analysis`` (``ExtractEvaluateAndWriteResults``
in a Beam pipeline) with the component's ``beam_pipeline_args``.

It is the reference the in-process engine (:mod:`.engine`) is compared with, what that
engine falls back to for configurations it does not support, and the path taken whenever
``beam_pipeline_args`` are given: the eval split is then read and evaluated by Beam
workers (TFMA loads the SavedModel in each worker), so no process holds the split.

Workers read the model and the examples, and write the evaluation, at the paths given:
with a runner on other machines these must be locations the workers reach (see
docs/beam.md).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

from kubetfx.artifacts.examples import split_pattern
from kubetfx.artifacts.model import serving_dir

CANDIDATE = "candidate"
BASELINE = "baseline"


def options_for(beam_pipeline_args: Sequence[str] | str) -> Any:
    """Beam options for TFMA: the given ones (checked, see :mod:`kubetfx.beam`); none given:
    Beam's DirectRunner in this process, as TFMA runs by default (a multi-process runner
    would load TensorFlow and the model once more per worker, for one small split)."""
    from apache_beam.options.pipeline_options import PipelineOptions

    from kubetfx.beam import pipeline_options, split_args

    if not split_args(beam_pipeline_args):
        return PipelineOptions(["--runner=DirectRunner"])
    return pipeline_options(beam_pipeline_args)


def run_model_analysis(
    config: Any,
    model_dir: str,
    baseline_model_dir: str,
    examples_dir: str,
    evaluation_dir: str,
    beam_pipeline_args: Sequence[str] | str = (),
) -> None:
    """Evaluate the candidate (and the baseline, in the same pass) on the eval split and
    write TFMA's metrics, plots and validations under ``evaluation_dir``."""
    import tensorflow_model_analysis as tfma

    from kubetfx.beam import input_error

    models = [
        tfma.default_eval_shared_model(
            eval_saved_model_path=serving_dir(model_dir),
            eval_config=config,
            model_name=CANDIDATE,
        )
    ]
    if baseline_model_dir:
        models.append(
            tfma.default_eval_shared_model(
                eval_saved_model_path=serving_dir(baseline_model_dir),
                eval_config=config,
                model_name=BASELINE,
            )
        )
    options = options_for(beam_pipeline_args)
    with warnings.catch_warnings():
        # A rate with an empty denominator (no positives in a slice) is NaN, by design;
        # numpy warns once per slice and class, thousands of lines.
        warnings.filterwarnings("ignore", "invalid value encountered", RuntimeWarning)
        try:
            tfma.run_model_analysis(
                eval_shared_model=models if len(models) > 1 else models[0],
                eval_config=config,
                data_location=split_pattern(examples_dir, "eval"),
                file_format="tfrecords",
                output_path=evaluation_dir,
                pipeline_options=options,
            )
        except Exception as err:  # a worker's error comes back as the runner's
            raised = input_error(err)
            if raised is err:
                raise
            raise raised from None
