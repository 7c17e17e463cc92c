"""When to stop screening: the hypergeometric test of Callaghan and Müller-Hansen (2020).

Callaghan MW, Müller-Hansen F. Statistical stopping criteria for automated screening in
systematic reviews. Syst Rev 2020;9:254. doi:10.1186/s13643-020-01521-4.

After screening in priority order, treat the last n screened records as if they were a
random sample of the records not screened before them. Under H0 "recall is below the
target", the records left in that urn (the window plus everything unscreened) must hold at
least K = floor(found / target) + 1 - (found before the window) relevant records. The
probability of seeing as few relevant records as the window holds is a hypergeometric
tail; the smallest over every window length n is the p-value. If it is below
1 - confidence, H0 is rejected: the target recall is reached and screening may stop.
Ranking makes the window richer in relevant records than a random sample would be, so
the test errs on the side of screening on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import hypergeom

#: Share of the screened records used as the sample for the point estimate of recall.
POINT_ESTIMATE_WINDOW = 0.10
POINT_ESTIMATE_MIN_WINDOW = 20


def recall_p_value(screened_labels: Sequence[int], total: int, target_recall: float = 0.95
                   ) -> float:
    """p-value of H0 "recall < target" after screening `screened_labels` (1 = relevant, in
    screening order) out of `total` records."""
    labels = np.asarray(screened_labels, dtype=int)
    n_seen = len(labels)
    found = int(labels.sum())
    if n_seen == 0 or found == 0:
        return 1.0
    if n_seen > total:
        raise ValueError(f"{n_seen} records screened out of only {total}")
    window_found = np.cumsum(labels[::-1])          # relevant among the last n screened
    window_size = np.arange(1, n_seen + 1)
    urn = total - (n_seen - window_size)             # the window plus every unscreened record
    found_before = found - window_found
    k_h0 = math.floor(found / target_recall) + 1 - found_before
    with np.errstate(invalid="ignore"):
        p = hypergeom.cdf(window_found, urn, np.minimum(k_h0, urn), window_size)
    # An urn too small to hold k_h0 relevant records makes H0 impossible.
    p = np.where(k_h0 > urn, 0.0, p)
    return float(np.nanmin(p))


def recall_lower_bound(screened_labels: Sequence[int], total: int, confidence: float = 0.95
                       ) -> float:
    """The highest recall the test still supports at `confidence` (0 if none).

    The p-value grows with the target, so bisection finds the boundary to 0.001.
    """
    alpha = 1.0 - confidence
    low, high = 0.0, 1.0
    if recall_p_value(screened_labels, total, 0.001) >= alpha:
        return 0.0
    while high - low > 0.0005:
        middle = (low + high) / 2
        if recall_p_value(screened_labels, total, middle) < alpha:
            low = middle
        else:
            high = middle
    return round(low, 3)


def recall_point_estimate(screened_labels: Sequence[int], total: int) -> float | None:
    """found / (found + expected still unscreened), the last 10 % screened (at least 20
    records) taken as a sample of what is left. Conservative: ranking enriches it."""
    labels = np.asarray(screened_labels, dtype=int)
    found = int(labels.sum())
    if found == 0:
        return None
    window = min(len(labels), max(POINT_ESTIMATE_MIN_WINDOW,
                                  math.ceil(POINT_ESTIMATE_WINDOW * len(labels))))
    rate = labels[-window:].mean() if window else 0.0
    expected_left = rate * (total - len(labels))
    return round(found / (found + expected_left), 3)


@dataclass(frozen=True)
class StoppingEstimate:
    """What the stopping rule says after the records screened so far."""

    method: str
    screened: int
    total: int
    relevant_found: int
    target_recall: float
    confidence: float
    p_value: float
    target_reached: bool
    recall_estimate: float | None
    recall_lower_bound: float

    def sentence(self) -> str:
        """One plain sentence for the report."""
        if self.target_reached:
            return (f"After {self.screened:,} of {self.total:,} records, the hypergeometric "
                    f"stopping test rejects recall below {self.target_recall:.0%} "
                    f"(p = {self.p_value:.3g}); recall is at least "
                    f"{self.recall_lower_bound:.1%} with {self.confidence:.0%} confidence.")
        return (f"After {self.screened:,} of {self.total:,} records, recall of "
                f"{self.target_recall:.0%} is not yet shown (p = {self.p_value:.3g}); "
                f"keep screening.")

    def as_dict(self) -> dict:
        return {**asdict(self), "sentence": self.sentence()}


def stopping_estimate(screened_labels: Sequence[int], total: int, target_recall: float = 0.95,
                      confidence: float = 0.95) -> StoppingEstimate:
    """Run the test on the screened labels (in screening order) out of `total` records."""
    p_value = recall_p_value(screened_labels, total, target_recall)
    return StoppingEstimate(
        method="hypergeometric test (Callaghan & Müller-Hansen 2020)",
        screened=len(screened_labels), total=total,
        relevant_found=int(np.sum(screened_labels)) if len(screened_labels) else 0,
        target_recall=target_recall, confidence=confidence, p_value=round(p_value, 6),
        target_reached=p_value < 1.0 - confidence,
        recall_estimate=recall_point_estimate(screened_labels, total),
        recall_lower_bound=recall_lower_bound(screened_labels, total, confidence),
    )


def first_stop(screened_labels: Sequence[int], total: int, target_recall: float = 0.95,
               confidence: float = 0.95, start: int = 1) -> int | None:
    """How many records had been screened when the test first said stop (None: never)."""
    labels = np.asarray(screened_labels, dtype=int)
    for n in range(start, len(labels) + 1):
        if recall_p_value(labels[:n], total, target_recall) < 1.0 - confidence:
            return n
    return None
