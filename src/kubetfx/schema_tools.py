"""Schema rules SchemaGen and the operator's schema commands share: which string features
get a closed domain, and evolving a curated schema to accept new data.

TFDV gives every string feature with at most ``max_string_domain_size`` distinct values a
closed domain. Real tables also hold strings whose set of values is never complete: IDs,
free text, dates and timestamps. A closed domain on those turns every new value into an
"Unexpected string values" anomaly. So each string feature is profiled over the statistics
of every split used (:func:`profile_strings`) and its domain kept only where the data
shows a closed set (see SchemaGen's executor for the rules in words).
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

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


# ---------------------------------------------------------------------- evolving a curated schema


def propose(schema_file: str, data_uri: str) -> tuple[str, str]:
    """(unified diff, proposed schema text) for ``schema_file`` to accept ``data_uri``.

    The proposal is TFDV's ``update_schema``: the smallest change to the curated schema
    (new domain values, looser presence, new features) that accepts the data's statistics.
    A new string feature whose values are no closed set (an ID, free text, a date; see
    SchemaGen) is proposed without a domain, as SchemaGen would infer it; the curated
    features' domains are left as the curator wrote them.
    """
    import tensorflow_data_validation as tfdv
    from tensorflow_data_validation.statistics import stats_impl

    from kubetfx.artifacts.schema import load_schema_file
    from kubetfx.artifacts.tabular import read_table, to_record_batch

    curated = load_schema_file(schema_file)
    # TFDV's in-memory statistics with StatisticsGen's options (the same proto it computes).
    batch = to_record_batch(read_table(data_uri))
    stats = stats_impl.generate_statistics_in_memory(batch, tfdv.StatsOptions())
    stats.datasets[0].name = "data"
    proposed = tfdv.update_schema(curated, stats)
    known = {f.name for f in curated.feature}
    new_profiles = {n: p for n, p in profile_strings([stats]).items() if n not in known}
    open_domains(proposed, new_profiles)
    before, after = str(curated), str(proposed)
    diff = "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=f"{schema_file} (curated)",
            tofile=f"proposed for {data_uri}",
        )
    )
    return diff, after
