"""Population stability index (PSI) and the bins it is computed over.

``PSI = sum over bins of (a - e) * ln(a / e)``, with ``e`` the training (expected) and
``a`` the serving (actual) share of a bin. A bin empty on either side would make the sum
infinite, so an empty share counts as :data:`EPSILON` (``1e-4``, one in ten thousand; the
shares are not renormalized after, as is usual). Rules of thumb: under 0.1 stable, 0.1 to
0.2 a moderate shift, over 0.2 a significant one.

Bins come from the training data:

* numeric: deciles of the training values (cut points at the 10th, ..., 90th percentile,
  duplicates merged, so a feature with few distinct values gets fewer bins); a value equal
  to a cut point falls in the bin above it. From the training values themselves when they
  are at hand (the Examples' columnar copy), else from the quantiles histogram TFDV keeps in
  the training statistics (its buckets' upper edges as cut points, its counts as the
  training shares);
* categorical: one bin per training value, and one more for every value training never
  saw (its training share is empty, so a new value weighs heavily, as it should).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

EPSILON = 1e-4
PSI_BINS = 10  # deciles
# The chance of a false alarm the noise floors below allow: one in a thousand.
Z_999 = 3.0902  # one-sided standard normal quantile at 0.999
Z_9995 = 3.2905  # two-sided


def psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    """PSI of two count (or share) vectors over the same bins; shares of zero count as
    :data:`EPSILON`. NaN when either side is empty."""
    e = np.asarray(expected, dtype=float)
    a = np.asarray(actual, dtype=float)
    if e.shape != a.shape:
        raise ValueError(f"bins differ: {e.shape} and {a.shape}")
    if e.sum() <= 0 or a.sum() <= 0:
        return math.nan
    e = np.maximum(e / e.sum(), EPSILON)
    a = np.maximum(a / a.sum(), EPSILON)
    return float(np.sum((a - e) * np.log(a / e)))


def decile_cuts(values: Iterable[float]) -> list[float]:
    """Cut points at the training values' deciles (duplicates merged)."""
    data = np.asarray([v for v in values if v is not None and not _nan(v)], dtype=float)
    if data.size == 0:
        return []
    # Whole percents: np.linspace's 0.30000000000000004 would put a cut a hair above a
    # training value that sits on it, and that value in the bin below.
    return sorted({float(q) for q in np.percentile(data, [10, 20, 30, 40, 50, 60, 70, 80, 90])})


def bin_counts(values: Iterable[float], cuts: Sequence[float]) -> list[float]:
    """Counts of values per bin: ``(-inf, c0), [c0, c1), ..., [c_last, inf)``."""
    data = np.asarray([v for v in values if v is not None and not _nan(v)], dtype=float)
    index = np.searchsorted(np.asarray(cuts, dtype=float), data, side="right")
    return [float(c) for c in np.bincount(index, minlength=len(cuts) + 1)]


def numeric_psi(training: Iterable[float], serving: Iterable[float]) -> float:
    """PSI of serving values over the training values' decile bins."""
    training = list(training)
    cuts = decile_cuts(training)
    return psi(bin_counts(training, cuts), bin_counts(serving, cuts))


def histogram_psi(buckets: Sequence[tuple[float, float, float]], serving: Iterable[float]) -> float:
    """PSI of serving values over a training quantiles histogram of ``(low, high, count)``
    buckets: the upper edges but the last are the cut points (equal ones merged), and a
    bucket's count goes to the bin its middle falls in (a bucket of one repeated value, at a
    cut point, to the bin above it, where serving values equal to it are counted too)."""
    cuts = sorted({float(high) for _low, high, _count in buckets[:-1]})
    expected = [0.0] * (len(cuts) + 1)
    for low, high, count in buckets:
        expected[int(np.searchsorted(cuts, (low + high) / 2, side="right"))] += float(count)
    return psi(expected, bin_counts(serving, cuts))


def categorical_psi(training: Mapping[str, float], serving: Iterable[Any]) -> float:
    """PSI of serving values over the training categories (``{value: count}``), with one
    bin more for values training never saw."""
    counts: dict[str, float] = {}
    for value in serving:
        counts[str(value)] = counts.get(str(value), 0.0) + 1
    return count_psi(training, counts)


def count_psi(expected: Mapping[str, float], actual: Mapping[str, float]) -> float:
    """PSI of two ``{category: count}`` maps over the expected categories, with one bin more
    for the actual categories the expected never had."""
    names = sorted(expected)
    other = sum(n for k, n in actual.items() if k not in expected)
    return psi(
        [float(expected[n]) for n in names] + [0.0], [float(actual.get(n, 0)) for n in names] + [other]
    )


def linf(expected: Mapping[str, float], actual: Mapping[str, float]) -> float:
    """L-infinity distance of two categorical distributions given as counts."""
    e_total = sum(expected.values()) or 1.0
    a_total = sum(actual.values()) or 1.0
    keys = set(expected) | set(actual)
    return max((abs(expected.get(k, 0) / e_total - actual.get(k, 0) / a_total) for k in keys), default=0.0)


def chi2_quantile(dof: int, z: float = Z_999) -> float:
    """The chi-square distribution's quantile at the standard normal's ``z`` (Wilson and
    Hilferty's approximation: within 1% of the exact value from 5 degrees of freedom)."""
    k = float(dof)
    return k * (1 - 2 / (9 * k) + z * math.sqrt(2 / (9 * k))) ** 3


def psi_noise_floor(serving: int, training: int, bins: int = PSI_BINS) -> float:
    """The PSI that samples this size reach by chance alone, one time in a thousand.

    Two samples of one distribution have ``PSI * (1/n + 1/m)^-1`` distributed about as
    chi-square with ``bins - 1`` degrees of freedom (B. Yurdakul, *Statistical properties
    of population stability index*, 2018), so a PSI under this floor is no evidence of a
    shift: 111 requests against 233 training rows reach 0.2 by chance.
    """
    if serving <= 0 or training <= 0:
        return math.inf
    return chi2_quantile(bins - 1) * (1 / serving + 1 / training)


def linf_noise_floor(serving: int, training: int) -> float:
    """The L-infinity distance of one category's share that samples this size reach by
    chance, one time in a thousand (normal approximation, at the widest share, 1/2)."""
    if serving <= 0 or training <= 0:
        return math.inf
    return Z_9995 * 0.5 * math.sqrt(1 / serving + 1 / training)


def _nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)
