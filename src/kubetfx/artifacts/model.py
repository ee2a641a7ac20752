"""The Model artifact: the SavedModel a server loads, in ``Format-Serving/`` (TFX's layout)."""

from __future__ import annotations

import os

from kubetfx.artifacts.layout import SAVED_MODEL_FILE, SERVING_DIR


def serving_dir(model_dir: str) -> str:
    """Where the Trainer writes the serving SavedModel, and where the Evaluator loads it."""
    return os.path.join(model_dir, SERVING_DIR)


def find_saved_model(model_dir: str) -> str:
    """The SavedModel to publish: ``Format-Serving/``, or the folder itself when it is a bare
    SavedModel (a model from outside the pipeline)."""
    formatted = serving_dir(model_dir)
    if not os.path.isdir(formatted) and os.path.isfile(os.path.join(model_dir, SAVED_MODEL_FILE)):
        return model_dir
    return formatted
