"""Confidence intervals for the fairness gate: deterministic, from exact counts.

* A rate (FNR, FPR, accuracy, precision, ...) is a binomial proportion ``k / n``: its
  interval is the **Clopper-Pearson** ("exact") interval, from the beta quantiles
  ``Beta(a/2; k, n-k+1)`` and ``Beta(1-a/2; k+1, n-k)``. Its coverage is at least the
  nominal level for every true rate and every ``n``; the Wilson score interval is shorter
  but its coverage dips below nominal for some rates, and a gate whose alarms must be
  true should not block more often than it says. Like Wilson's, it never collapses to a
  point at ``k = 0`` or ``k = n``: one missed positive out of one is FNR 1.0 with a 95%
  interval of 0.025 to 1. It depends on the counts only, so the same evaluation always
  gives the same verdict (TFMA's jackknife and bootstrap intervals resample; TFMA does not
  compute this one).
* AUC has no binomial count: its interval is Hoeffding's distribution-free bound for a
  U-statistic, from the AUC and the fewer of positives and negatives (wide, but valid
  even at AUC 1.0, where a normal approximation collapses to a point).
* The gap between two slices gets the interval of a difference built from the two
  intervals ("square-and-add", Newcombe 1998; Zou and Donner 2008):
  ``d - sqrt((p1 - l1)^2 + (u2 - p2)^2)`` to ``d + sqrt((u1 - p1)^2 + (p2 - l2)^2)``
  for ``d = p1 - p2``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

CONFIDENCE = 0.95


def z_value(confidence: float) -> float:
    """The two-sided normal quantile for a confidence level (1.96 for 0.95)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie strictly between 0 and 1: {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def clopper_pearson(k: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Clopper-Pearson interval of the proportion ``k / n`` (``n`` > 0)."""
    from scipy.stats import beta

    if n <= 0 or not 0 <= k <= n:
        raise ValueError(f"clopper_pearson: need 0 <= k <= n and n > 0, got k={k}, n={n}")
    tail = (1 - confidence) / 2
    low = 0.0 if k == 0 else float(beta.ppf(tail, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1 - tail, k + 1, n - k))
    return low, high


def hoeffding_auc(
    auc: float, positives: int, negatives: int, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """A distribution-free interval of an AUC, clipped to [0, 1].

    The AUC is a two-sample U-statistic with a kernel in [0, 1] (a positive ranked above a
    negative: 1, a tie: 1/2), so Hoeffding's inequality (1963, section 5) bounds its
    deviation: ``P(|AUC - E AUC| >= t) <= 2 exp(-2 k t^2)`` with ``k = min(positives,
    negatives)``. The interval is wider than a normal approximation's (Hanley and McNeil's
    collapses to a point at AUC 1.0, whatever the counts), but it holds its level always.
    """
    if positives <= 0 or negatives <= 0:
        raise ValueError("an AUC interval needs positives and negatives")
    half = math.sqrt(math.log(2 / (1 - confidence)) / (2 * min(positives, negatives)))
    return max(0.0, auc - half), min(1.0, auc + half)


@dataclass
class Estimate:
    """A slice's value of one metric with the counts it comes from and its interval.

    ``numerator / denominator`` is the value for a rate; for AUC ``numerator`` is None and
    ``denominator`` is the smaller of ``positives`` and ``negatives``.
    """

    value: float
    numerator: int | None
    denominator: int
    of: str  # what the denominator counts: "positives", "negatives", "examples", ...
    low: float
    high: float
    method: str  # "clopper-pearson" or "hoeffding"
    positives: int = 0
    negatives: int = 0

    def interval(self, confidence: float = CONFIDENCE) -> tuple[float, float]:
        """The interval at another confidence level."""
        if self.method == "clopper-pearson":
            assert self.numerator is not None
            return clopper_pearson(self.numerator, self.denominator, confidence)
        return hoeffding_auc(self.value, self.positives, self.negatives, confidence)

    def counts(self) -> str:
        """``"12/250 positives"``, or ``"40 positives, 90 negatives"`` for AUC."""
        if self.numerator is None:
            return f"{self.positives} positives, {self.negatives} negatives"
        return f"{self.numerator}/{self.denominator} {self.of}"


def proportion(k: int, n: int, of: str, confidence: float = CONFIDENCE) -> Estimate | None:
    """``k / n`` with its Clopper-Pearson interval; None when ``n`` is 0 (nothing to count)."""
    if n <= 0:
        return None
    low, high = clopper_pearson(k, n, confidence)
    return Estimate(k / n, k, n, of, low, high, "clopper-pearson")


def auc_estimate(
    auc: float, positives: int, negatives: int, confidence: float = CONFIDENCE
) -> Estimate | None:
    """An AUC with its Hoeffding interval; None without positives or negatives."""
    if positives <= 0 or negatives <= 0 or math.isnan(auc):
        return None
    low, high = hoeffding_auc(auc, positives, negatives, confidence)
    smaller = min(positives, negatives)
    return Estimate(
        auc, None, smaller, "positives or negatives", low, high, "hoeffding", positives, negatives
    )


def difference(a: Estimate, b: Estimate, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """``a - b`` and its square-and-add interval at ``confidence``."""
    la, ua = a.interval(confidence)
    lb, ub = b.interval(confidence)
    d = a.value - b.value
    low = d - math.sqrt((a.value - la) ** 2 + (ub - b.value) ** 2)
    high = d + math.sqrt((ua - a.value) ** 2 + (b.value - lb) ** 2)
    return d, low, high
