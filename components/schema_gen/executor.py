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

Layout written: ``schema.pbtxt`` (text Schema proto, TFX's layout).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubetfx.errors import ConfigError, InputDataError
from kubetfx.fingerprint import local_path
from kubetfx.types import SCHEMA, TYPE_KEY

SCHEMA_FILE = "schema.pbtxt"
TRAINING, SERVING = "TRAINING", "SERVING"

DEFAULT_MAX_STRING_DOMAIN_SIZE = 100  # TFDV's infer_schema default
# A closed domain needs a well-sampled feature: at most this estimated chance that the
# next value is one not seen yet (Good-Turing: values seen once / all values).
OPEN_UNSEEN_MASS = 0.05
DATE_SHARE = 0.9  # of the distinct values that must read as dates or times
ID_DISTINCT_SHARE = 0.5  # distinct values / values, for an ID
ID_CODE_SHARE = 0.5  # of the distinct values that must look like codes (one token: digits or capitals)
FREE_TEXT_WORDS = 2.0  # mean words per distinct value, for free text
# A string feature with a value in at least this share of the rows must have one in every
# split validated: a split of 10 rows misses them all by chance with odds under 1 in 1,000.
REQUIRED_FILL = 0.5
NO_UPPER_BOUND = 2**63 - 1

DATE, ID, FREE_TEXT, HIGH_CARDINALITY, CATEGORY = "date", "id", "free text", "high-cardinality", "category"

_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?"
_TIME = r"\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:\s*[ap]\.?m\.?)?"
_ZONE = r"(?:\s*(?:z|utc|gmt|[+-]\d{2}:?\d{2}))?"
_DATE = (
    r"(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}"  # 2007-11-11, 2012/01/01
    r"|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}"  # 11/30/2007, 30.11.2007
    rf"|{_MONTH}\s+\d{{1,2}},?\s+\d{{4}}"  # Jan 1 2000, January 1, 2000
    rf"|\d{{1,2}}[\s-]+{_MONTH}[\s-]+\d{{2,4}}"  # 1 Jan 2000, 01-Jan-2000
    r"|\d{8}T\d{4,6})"  # 20071111T1030
)
CODE = re.compile(r"^(?=\S*[0-9A-Z])[^\sa-z]+$|^(?=\S*\d)\S+$")  # "N1A1", "ORD", "a1b2"; not "Dream"
DATE_OR_TIME = re.compile(rf"^(?:{_DATE}(?:[T\s]+{_TIME})?{_ZONE}|{_TIME}{_ZONE})$", re.IGNORECASE)


@dataclass
class StringProfile:
    """What the statistics of every split used say about one string feature."""

    name: str
    values: int  # non-missing values over the splits
    rows: int  # examples over the splits
    distinct: int  # distinct values (a lower bound when ``exact`` is False)
    seen_once: int  # values that occur exactly once
    exact: bool  # every split's histogram holds all its distinct values
    date_share: float  # share of the distinct values that read as dates or times
    words: float  # mean words per distinct value
    code_share: float  # share of the distinct values that are one token with digits or only capitals
    kind: str = CATEGORY
    closed: bool = True

    @property
    def values_required(self) -> bool:
        """Filled in most rows: a split where it has no value at all is an anomaly."""
        return self.rows > 0 and self.values >= REQUIRED_FILL * self.rows

    @property
    def unseen_mass(self) -> float:
        """Good-Turing estimate of the chance that the next value is a new one."""
        if not self.exact:
            return 1.0
        return self.seen_once / self.values if self.values else 0.0

    def action(self) -> str:
        """What SchemaGen did with the feature, in words."""
        if self.closed:
            return f"closed domain of {self.distinct} values"
        return "no closed domain: type and presence checked, new values accepted"

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "values": self.values,
            "distinct": self.distinct,
            "seen_once": self.seen_once,
            "unseen_mass": round(self.unseen_mass, 4),
            "closed_domain": self.closed,
            "values_required": self.values_required,
        }


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


# ---------------------------------------------------------------------- profiling


def _feature_name(feature: Any) -> str:
    return ".".join(feature.path.step) if feature.HasField("path") else feature.name


def profile_strings(
    statistics: Sequence[Any], max_string_domain_size: int = DEFAULT_MAX_STRING_DOMAIN_SIZE
) -> dict[str, StringProfile]:
    """Profile every string feature over several splits' statistics, and decide its domain.

    ``statistics``: DatasetFeatureStatisticsList protos, one per split. Value counts come
    from each split's rank histogram (TFDV keeps up to 1,000 values a split); a split with
    more distinct values than that makes the feature high-cardinality without counting.
    """
    counts: dict[str, Counter[str]] = {}
    values: Counter[str] = Counter()
    exact: dict[str, bool] = {}
    unique: Counter[str] = Counter()
    rows = 0
    for stats in statistics:
        for dataset in stats.datasets:
            rows += int(dataset.num_examples)
            for feature in dataset.features:
                if not feature.HasField("string_stats"):
                    continue
                name = _feature_name(feature)
                strings = feature.string_stats
                buckets = strings.rank_histogram.buckets
                per_value = counts.setdefault(name, Counter())
                for bucket in buckets:
                    per_value[bucket.label] += int(bucket.sample_count)
                values[name] += int(strings.common_stats.tot_num_values)
                exact[name] = exact.get(name, True) and len(buckets) >= strings.unique
                unique[name] = max(unique[name], int(strings.unique))
    profiles = {}
    for name in sorted(counts):
        per_value = counts[name]
        labels = sorted(per_value)
        share = _share_of(labels)
        profile = StringProfile(
            name=name,
            values=values[name],
            rows=rows,
            distinct=len(labels) if exact[name] else max(len(labels), unique[name]),
            seen_once=sum(1 for c in per_value.values() if c == 1),
            exact=exact[name],
            date_share=share(lambda v: DATE_OR_TIME.match(v.strip()) is not None),
            words=(sum(len(v.split()) for v in labels) / len(labels)) if labels else 0.0,
            code_share=share(lambda v: CODE.match(v) is not None),
        )
        _decide(profile, max_string_domain_size)
        profiles[name] = profile
    return profiles


def _share_of(labels: list[str]) -> Callable[[Callable[[str], bool]], float]:
    def share(test: Callable[[str], bool]) -> float:
        return sum(1 for v in labels if test(v)) / len(labels) if labels else 0.0

    return share


def _decide(profile: StringProfile, max_string_domain_size: int) -> None:
    if profile.values == 0:
        return  # nothing seen: leave TFDV's inference alone
    if profile.date_share >= DATE_SHARE:
        profile.kind, profile.closed = DATE, False
        return
    well_sampled = profile.distinct <= max_string_domain_size and profile.unseen_mass <= OPEN_UNSEEN_MASS
    if well_sampled:
        return
    profile.closed = False
    if profile.distinct >= ID_DISTINCT_SHARE * profile.values and profile.code_share >= ID_CODE_SHARE:
        profile.kind = ID
    elif profile.words >= FREE_TEXT_WORDS:
        profile.kind = FREE_TEXT
    else:
        profile.kind = HIGH_CARDINALITY


def require_values(schema: Any, profiles: dict[str, StringProfile]) -> list[str]:
    """``unique_constraints.min: 1`` on the string features filled in most rows (in place).

    An empty CSV cell reaches tf.Example as a present feature with no value, so TFDV's
    presence check passes on a column whose every cell was emptied; this one does not.
    Returns the features constrained.
    """
    required = {n for n, p in profiles.items() if p.values_required}
    constrained = []
    for feature in schema.feature:
        if feature.name in required and not feature.HasField("unique_constraints"):
            feature.unique_constraints.min = 1
            feature.unique_constraints.max = NO_UPPER_BOUND  # TFDV reads an unset max as 0
            constrained.append(feature.name)
    return constrained


def open_domains(schema: Any, profiles: dict[str, StringProfile]) -> None:
    """Remove the closed domain of every feature ``profiles`` marks open (in place)."""
    open_names = {n for n, p in profiles.items() if not p.closed}
    dropped = set()
    for feature in schema.feature:
        if feature.name not in open_names:
            continue
        if feature.HasField("domain"):
            dropped.add(feature.domain)
            feature.ClearField("domain")
        elif feature.HasField("string_domain"):
            feature.ClearField("string_domain")
    still_used = {f.domain for f in schema.feature if f.HasField("domain")}
    kept = [d for d in schema.string_domain if d.name not in dropped or d.name in still_used]
    del schema.string_domain[:]
    schema.string_domain.extend(kept)


# ---------------------------------------------------------------------- schema


def load_schema_file(path_or_uri: str) -> Any:
    """Read a text schema, with parse errors naming file, line and column."""
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    from kubetfx import storage

    path = local_path(path_or_uri)
    if path is None and storage.scheme_of(path_or_uri) in storage.REMOTE_SCHEMES:
        try:  # a curated schema kept in the object store
            text = storage.read_bytes(path_or_uri).decode()
        except storage.StorageError as err:
            raise InputDataError(f"{path_or_uri}: schema file not found; check schema_file ({err})") from None
    elif path is None or not path.is_file():
        raise InputDataError(f"{path_or_uri}: schema file not found; check schema_file")
    else:
        text = path.read_text()
    try:
        return text_format.Parse(text, schema_pb2.Schema())
    except text_format.ParseError as err:
        raise InputDataError(f"{path_or_uri}:{err}") from None  # ParseError reads "LINE:COL : ..."


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
    from kubetfx.components.statistics_gen import executor as stats

    splits = stats.splits_of(statistics_dir)
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
    loaded = [stats.load(statistics_dir, split) for split in used]
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
    import tensorflow_data_validation as tfdv

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
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    tfdv.write_schema_text(schema, str(Path(output_dir, SCHEMA_FILE)))
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


def load(schema_dir: str) -> Any:
    """Read a schema artifact back."""
    return load_schema_file(str(Path(schema_dir, SCHEMA_FILE)))
