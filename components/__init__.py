"""kubetfx components. Importing them is cheap: no TensorFlow, TFDV, TFMA or Beam.

Inside a running task, KFP sets ``_KFP_RUNTIME=true`` and loads only its executor
side; component definitions need kfp's authoring side, so they are not imported
there: a task only imports executors (``kubetfx.components.<name>.executor``).
"""

import os

if os.environ.get("_KFP_RUNTIME") != "true":
    from kubetfx.components.data_change_check.component import data_change_check
    from kubetfx.components.data_fingerprint.component import data_fingerprint
    from kubetfx.components.evaluator.component import evaluator
    from kubetfx.components.example_gen.component import example_gen
    from kubetfx.components.example_validator.component import example_validator
    from kubetfx.components.kserve_deployer.component import kserve_deployer
    from kubetfx.components.model_card.component import model_card
    from kubetfx.components.model_resolver.component import model_resolver
    from kubetfx.components.pusher.component import pusher
    from kubetfx.components.schema_gen.component import schema_gen
    from kubetfx.components.serving_check.component import serving_check
    from kubetfx.components.serving_drift.component import serving_drift
    from kubetfx.components.statistics_gen.component import statistics_gen
    from kubetfx.components.trainer.component import trainer

__all__ = [
    "data_change_check",
    "data_fingerprint",
    "evaluator",
    "example_gen",
    "example_validator",
    "kserve_deployer",
    "model_card",
    "model_resolver",
    "pusher",
    "schema_gen",
    "serving_check",
    "serving_drift",
    "statistics_gen",
    "trainer",
]
