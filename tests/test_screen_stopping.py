"""The hypergeometric stopping rule (Callaghan & Müller-Hansen 2020) on screening orders
whose true recall is known because we built them."""

from __future__ import annotations

import numpy as np

from cmosynth.screen.stopping import recall_p_value, stopping_estimate


def ranked_order(relevant: int, found_within: int, irrelevant_after: int) -> list[int]:
    """All `relevant` records among the first `found_within` screened, then only
    irrelevant ones: what a good ranking looks like."""
    head = [1] * relevant + [0] * (found_within - relevant)
    return head + [0] * irrelevant_after


def test_all_relevant_found_early_and_long_run_of_irrelevant_says_stop():
    order = ranked_order(relevant=20, found_within=40, irrelevant_after=800)
    estimate = stopping_estimate(order, total=1000, target_recall=0.95, confidence=0.95)
    assert estimate.target_reached
    assert estimate.p_value < 0.05
    assert estimate.recall_lower_bound >= 0.95
    assert estimate.recall_estimate == 1.0
    assert "rejects recall below 95%" in estimate.sentence()


def test_too_short_a_run_of_irrelevant_records_is_not_yet_enough():
    order = ranked_order(relevant=20, found_within=40, irrelevant_after=100)
    estimate = stopping_estimate(order, total=1000)
    assert not estimate.target_reached
    assert "keep screening" in estimate.sentence()


def test_relevant_records_still_being_found_means_no_stop():
    rng = np.random.default_rng(7)
    labels = np.array([1] * 40 + [0] * 960)
    rng.shuffle(labels)  # unranked: relevant records keep turning up
    screened = labels[:600].tolist()
    estimate = stopping_estimate(screened, total=1000)
    assert not estimate.target_reached
    assert estimate.recall_lower_bound < sum(screened) / 40


def test_p_value_falls_as_irrelevant_records_accumulate():
    p = [recall_p_value(ranked_order(20, 40, after), 1000) for after in (100, 300, 500, 800)]
    assert p == sorted(p, reverse=True) and p[0] > p[-1]


def test_screening_everything_shows_full_recall():
    order = ranked_order(relevant=5, found_within=50, irrelevant_after=150)
    estimate = stopping_estimate(order, total=len(order))
    assert estimate.target_reached and estimate.p_value == 0.0


def test_nothing_found_yet_gives_no_stop():
    estimate = stopping_estimate([0] * 50, total=1000)
    assert not estimate.target_reached and estimate.p_value == 1.0
    assert estimate.recall_estimate is None


def test_stops_with_recall_below_target_are_rare_in_unranked_orders():
    """The test's promise: when recall is below the target, it says stop in at most
    1 - confidence of cases (random orders are the null it is built on)."""
    rng = np.random.default_rng(2020)
    labels = np.array([1] * 30 + [0] * 470)
    wrong_stops = below_target = 0
    for _ in range(300):
        rng.shuffle(labels)
        screened = labels[:rng.integers(300, 480)]
        if screened.sum() / 30 < 0.95:
            below_target += 1
            wrong_stops += recall_p_value(screened, total=500, target_recall=0.95) < 0.05
    assert below_target > 100
    assert wrong_stops / below_target <= 0.05
