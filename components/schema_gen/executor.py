"""SchemaGen: infer a schema from the statistics of every split, or import a curated one.

Inference follows TFX's SchemaGen: TFDV's ``infer_schema`` on the first split (train first),
then ``update_schema`` with each further split not in ``exclude_splits``, so a value, a
missing cell or a second value that only the eval split holds is part of the schema and is
no anomaly on the first run.

TFDV gives every string feature with at most ``max_string_domain_size`` distinct values a
closed domain. Real tables also hold strings whose set of values is never complete: IDs,
free text, dates and timestamps. A closed domain on those turns every new value into an
"Unexpected string values" anomaly. So each string feature is profiled over all the splits
used (``profile_strings``) and its domain kept only where the data shows a closed set:

* **dates and times** (nearly every value reads as a date, a time or a timestamp): no domain;
* otherwise no domain where the values are not well sampled: more distinct values than
  ``max_string_domain_size``, or a Good-Turing estimate of the chance that the next value
  is one never seen (values seen exactly once / all values) above ``OPEN_UNSEEN_MASS``.
  Such a feature is named an **ID** (mostly distinct values, most of them one token with
  digits or capitals only), **free text** (values of two words or more on average) or a
  **high-cardinality** category.

Those features keep their type and presence checks. Everything is computed from the
statistics in a fixed order: the same statistics give the same schema, byte for byte.

Layout written: :mod:`kubetfx.artifacts.schema` (``schema.pbtxt``). The string-profiling
rules live in :mod:`kubetfx.schema_tools`, shared with ``kubetfx schema diff``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kubetfx.artifacts import schema as schema_artifact
from kubetfx.artifacts import statistics
from kubetfx.artifacts.kinds import SCHEMA, TYPE_KEY
from kubetfx.artifacts.schema import load_schema_file
from kubetfx.errors import ConfigError, InputDataError
from kubetfx.schema_tools import (
    DATE,
    DEFAULT_MAX_STRING_DOMAIN_SIZE,
    FREE_TEXT,
    ID,
    StringProfile,
    open_domains,
    profile_strings,
    require_values,
)

TRAINING, SERVING = "TRAINING", "SERVING"


@dataclass
class SchemaResult:
    """Where the schema came from and what it holds."""

    source: str  # "inferred from splits ..." or the imported file
    features: list[str]
    label_key: str
    splits: list[str] = field(default_factory=list)  # the splits inferred from
    excluded_splits: list[str] = field(default_factory=list)
    strings: dict[str, StringProfile] = field(default_factory=dict)
    drift_threshold: float = 0.0
    drift_features: list[str] = field(default_factory=list)

    @property
    def open_features(self) -> dict[str, str]:
        """String features inferred without a closed domain, and what they look like."""
        return {n: p.kind for n, p in sorted(self.strings.items()) if not p.closed}

    def metadata(self) -> dict[str, Any]:
        """Artifact metadata (recorded in lineage with the schema)."""
        return {
            TYPE_KEY: SCHEMA,
            "source": self.source,
            "features": self.features,
            "label_key": self.label_key,
            "inferred_from_splits": self.splits,
            "excluded_splits": self.excluded_splits,
            "open_features": self.open_features,
            "string_features": {n: p.as_dict() for n, p in sorted(self.strings.items())},
            "drift_threshold": self.drift_threshold,
            "drift_features": self.drift_features,
        }

    def summary(self) -> list[str]:
        """One line per decision worth reading: splits used, features left open."""
        lines = [f"schema {self.source}"]
        for name, profile in sorted(self.strings.items()):
            if not profile.closed:
                distinct = f"{profile.distinct}{'' if profile.exact else '+'}"
                lines.append(
                    f"feature {name!r} looks like {_article(profile.kind)} "
                    f"({distinct} distinct of {profile.values} values): {profile.action()}"
                )
        return lines


def _article(kind: str) -> str:
    return {ID: "an ID", DATE: "a date or time", FREE_TEXT: "free text"}.get(kind, f"a {kind} category")


# ---------------------------------------------------------------------- schema


def with_environments(schema: Any) -> Any:
    """Give the schema the TRAINING and SERVING environments ExampleValidator checks in."""
    for env in (TRAINING, SERVING):
        if env not in schema.default_environment:
            schema.default_environment.append(env)
    return schema


def with_label_environments(schema: Any, label_key: str) -> Any:
    """Make ``label_key`` required in TRAINING and absent in SERVING."""
    names = [f.name for f in schema.feature]
    if label_key not in names:
        raise InputDataError(
            f"label_key {label_key!r} is not a feature of the schema; features: {', '.join(names)}"
        )
    with_environments(schema)
    label = next(f for f in schema.feature if f.name == label_key)
    if SERVING not in label.not_in_environment:
        label.not_in_environment.append(SERVING)
    return schema


def with_drift_threshold(schema: Any, threshold: float, skip: set[str]) -> list[str]:
    """A drift comparator on every feature that has none (not those in ``skip``).

    Jensen-Shannon divergence for numeric features, L-infinity distance for features with
    a closed domain; free strings (IDs, text, dates) get none, since new values are their
    normal state. Returns the features given one.
    """
    from tensorflow_metadata.proto.v0 import schema_pb2

    given = []
    for feature in schema.feature:
        comparator = feature.drift_comparator
        if feature.name in skip or comparator.HasField("infinity_norm"):
            continue
        if comparator.HasField("jensen_shannon_divergence"):
            continue
        if feature.type in (schema_pb2.INT, schema_pb2.FLOAT) and not feature.HasField("domain"):
            comparator.jensen_shannon_divergence.threshold = threshold
        elif any(feature.HasField(d) for d in ("domain", "string_domain", "bool_domain")):
            comparator.infinity_norm.threshold = threshold
        else:
            continue
        given.append(feature.name)
    return given


def infer(
    statistics_dir: str,
    *,
    exclude_splits: Sequence[str] = (),
    max_string_domain_size: int = DEFAULT_MAX_STRING_DOMAIN_SIZE,
) -> tuple[Any, list[str], dict[str, StringProfile]]:
    """(schema, splits used, string profiles) inferred from every split not excluded."""
    import tensorflow_data_validation as tfdv

    splits = statistics.splits_of(statistics_dir)
    if not splits:
        raise InputDataError(f"{statistics_dir}: no statistics to infer a schema from")
    unknown = sorted(set(exclude_splits) - set(splits))
    if unknown:
        raise ConfigError(
            f"exclude_splits names {', '.join(map(repr, unknown))}, not a split of {statistics_dir}; "
            f"splits: {', '.join(splits)}"
        )
    used = [s for s in splits if s not in set(exclude_splits)]
    if not used:
        raise ConfigError(
            f"exclude_splits leaves no split to infer a schema from; splits: {', '.join(splits)}"
        )
    if max_string_domain_size < 1:
        raise ConfigError(f"max_string_domain_size {max_string_domain_size}: use 1 or more")
    loaded = [statistics.load(statistics_dir, split) for split in used]
    schema = tfdv.infer_schema(loaded[0], max_string_domain_size=max_string_domain_size)
    for more in loaded[1:]:
        schema = tfdv.update_schema(schema, more, max_string_domain_size=max_string_domain_size)
    profiles = profile_strings(loaded, max_string_domain_size)
    open_domains(schema, profiles)
    require_values(schema, profiles)
    return schema, used, profiles


def run(
    statistics_dir: str,
    output_dir: str,
    *,
    schema_file: str = "",
    label_key: str = "",
    exclude_splits: Sequence[str] = (),
    max_string_domain_size: int = DEFAULT_MAX_STRING_DOMAIN_SIZE,
    drift_threshold: float = 0.0,
) -> SchemaResult:
    """Write ``schema.pbtxt`` under ``output_dir``."""
    if not 0.0 <= drift_threshold <= 1.0:
        raise ConfigError(f"drift_threshold {drift_threshold}: use a distance in [0, 1] (0: no drift check)")
    splits: list[str] = []
    profiles: dict[str, StringProfile] = {}
    if schema_file:
        schema = load_schema_file(schema_file)
        source = schema_file
    else:
        schema, splits, profiles = infer(
            statistics_dir, exclude_splits=exclude_splits, max_string_domain_size=max_string_domain_size
        )
        source = f"inferred from split{'s' if len(splits) > 1 else ''} {', '.join(splits)}"
    with_environments(schema)
    if label_key:
        schema = with_label_environments(schema, label_key)
    drift_features: list[str] = []
    if drift_threshold:
        skip = {n for n, p in profiles.items() if not p.closed}
        drift_features = with_drift_threshold(schema, drift_threshold, skip)
    schema_artifact.write(output_dir, schema)
    return SchemaResult(
        source=source,
        features=[f.name for f in schema.feature],
        label_key=label_key,
        splits=splits,
        excluded_splits=sorted(exclude_splits) if not schema_file else [],
        strings=profiles,
        drift_threshold=drift_threshold,
        drift_features=drift_features,
    )


def report_html(result: SchemaResult, schema: Any, title: str) -> str:
    """A self-contained page: where the schema came from and what each feature is."""
    from tensorflow_metadata.proto.v0 import schema_pb2

    from kubetfx.reports import page, table

    type_names = {schema_pb2.INT: "INT", schema_pb2.FLOAT: "FLOAT", schema_pb2.BYTES: "BYTES"}
    domains = {d.name: len(d.value) for d in schema.string_domain}
    rows = []
    for feature in schema.feature:
        profile = result.strings.get(feature.name)
        if feature.HasField("domain"):
            domain = f"{domains.get(feature.domain, 0)} values"
        elif feature.HasField("string_domain"):
            domain = f"{len(feature.string_domain.value)} values"
        else:
            domain = "open" if profile is not None else ""
        looks = profile.kind if profile is not None else ""
        distinct = f"{profile.distinct}{'' if profile.exact else '+'}" if profile is not None else ""
        drift = ""
        for kind in ("jensen_shannon_divergence", "infinity_norm"):
            if feature.drift_comparator.HasField(kind):
                drift = f"{kind.replace('_', ' ')} > {getattr(feature.drift_comparator, kind).threshold:g}"
        required = "yes" if feature.unique_constraints.min > 0 else ""
        kind_name = type_names.get(feature.type, "?")
        rows.append([feature.name, kind_name, looks, distinct, domain, required, drift])
    intro = (
        f"<p>Source: {_escape(result.source)}"
        + (f" (excluded: {_escape(', '.join(result.excluded_splits))})" if result.excluded_splits else "")
        + ".</p>"
    )
    notes = [f"<li>{_escape(line)}</li>" for line in result.summary()[1:]]
    if not result.splits:
        decided = "<p>Imported: types, presence and domains as the file states them.</p>"
    elif notes:
        decided = "<h2>Features without a closed domain</h2><ul>" + "".join(notes) + "</ul>"
    else:
        decided = "<p>Every string feature has a closed domain.</p>"
    sections = [
        intro,
        decided,
        "<h2>Features</h2>",
        table(
            ["feature", "type", "looks like", "distinct values", "domain", "values required", "drift"],
            rows,
            numeric=[3],
        ),
    ]
    return page(title, sections)


def _escape(text: str) -> str:
    import html

    return html.escape(text)
