"""kubetfx's artifact kinds: what each artifact is, and the KFP type it travels under.

The design asked for namespaced ``kubetfx.*`` KFP schema titles. kfp 2.13 refuses them:
``type_utils.validate_schema_title`` accepts only the ``system`` and ``google``
namespaces, both when a component is defined and when a ``component.yaml`` is loaded,
so a component using them could not be loaded by anyone with plain kfp. So:

* in the KFP interface, statistics, schemas and anomalies are ``system.Artifact``
  (``kfp.dsl.Artifact``); examples and models stay ``system.Dataset``/``system.Model``;
* every kubetfx artifact carries its kind in metadata (``kubetfx_type``), and lineage
  types it by that kind in ML Metadata (``kubetfx.ExampleStatistics``, ...), so queries
  and checks can tell them apart;
* executors check the kind of what they are given and refuse a miswired input with a
  message naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubetfx.errors import KubetfxError

TYPE_KEY = "kubetfx_type"
EXAMPLES = "kubetfx.Examples"  # KFP title system.Dataset; Split-<split>/data_tfrecord-*.gz
STATISTICS = "kubetfx.ExampleStatistics"  # Split-<split>/FeatureStats.pb
SCHEMA = "kubetfx.Schema"  # schema.pbtxt
ANOMALIES = "kubetfx.ExampleAnomalies"  # Split-<split>/SchemaDiff.pb and drift.json
MODEL = "kubetfx.Model"  # KFP title system.Model; Format-Serving/ SavedModel
EVALUATION = "kubetfx.ModelEvaluation"  # TFMA output (metrics, plots, validations) + summary.json
BLESSING = "kubetfx.ModelBlessing"  # BLESSED or NOT_BLESSED file + reasons.json
SERVING_CHECK = "kubetfx.ServingCheck"  # serving_check.json: a model checked in a server, under load
PUSHED_MODEL = "kubetfx.PushedModel"  # a record of <destination>/<model_name>/<version>/
SERVING_DRIFT = "kubetfx.ServingDrift"  # serving_drift.json: serving traffic against training data
MODEL_CARD = "kubetfx.ModelCard"  # model_card.json (Model Card Toolkit schema) + the HTML card

KFP_TITLE = {EXAMPLES: "system.Dataset"}  # everything else: system.Artifact


def kfp_title(kind: str) -> str:
    """The KFP schema title an artifact of this kubetfx kind travels under."""
    return KFP_TITLE.get(kind, "system.Artifact")


def expect(kind: str, metadata: Mapping[str, Any], name: str, uri: str) -> None:
    """Refuse an input artifact of another kubetfx kind (KFP cannot check it at compile time)."""
    found = metadata.get(TYPE_KEY)
    if found and found != kind:
        raise KubetfxError(
            f"input {name!r} ({uri}) is a {found}, but a {kind} is needed here; check the wiring"
        )
