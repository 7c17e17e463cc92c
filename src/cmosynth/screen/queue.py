"""A reviewer's screening session: which record comes next, and what a decision changes.

The workspace (`cmosynth lab`) shows one record at a time, in priority order, as ASReview
LAB does: the record the ranking model scores highest among those this reviewer has not
decided. Records the criteria rules exclude come last. The model is the topic's own
(`screen.model`), trained on every reviewer's decisions as `screen_topic` trains it, so
the order the reviewer sees is the order the pipeline would give.

Features are computed once; a decision only updates the labels and asks for a retrain,
which runs in a background thread (`retrain_in_background`). The next record is picked
from the scores as they stand, so it appears at once however large the review; the
ranking catches up a moment later. The progress panel uses the stopping rule of the
topic (`screen.stopping`) on this reviewer's decisions in the order they were made.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from cmosynth.screen.decisions import (ReviewerDecision, latest_by_reviewer, reviewer_verdicts,
                                       agreement)
from cmosynth.screen.model import (get_model, inclusion_scores, record_text, similarity_scores,
                                   text_features)
from cmosynth.screen.profile import topic_profile
from cmosynth.screen.rules import criteria_rules, rule_exclusion
from cmosynth.screen.stopping import StoppingEstimate, stopping_estimate


@dataclass(frozen=True)
class Progress:
    """What the progress panel shows."""

    decided: int
    included: int
    excluded: int
    maybe: int
    open_to_screening: int
    excluded_by_rules: int
    estimate: StoppingEstimate | None
    ranking: str               # "cold start" or "active learning (n decisions)"
    retrained_seconds: float | None


class ScreeningQueue:
    """One reviewer's queue over a topic's records (duplicates left out)."""

    def __init__(self, topic: Mapping, records: list[dict],
                 decisions: Iterable[ReviewerDecision], reviewer: str):
        settings = topic["screen"]
        self.reviewer = reviewer
        self.records = records
        self.index = {r["record_id"]: i for i, r in enumerate(records)}
        self.model = get_model(settings["model"]["name"])
        self.seed = settings["model"]["seed"]
        self.stopping = settings["stopping"]
        rules = criteria_rules(settings["criteria"])
        self.rule_reasons = [rule_exclusion(r, rules) or "" for r in records]
        self._ruled = np.array([bool(reason) for reason in self.rule_reasons], dtype=bool)
        texts = [record_text(r.get("title"), r.get("abstract")) for r in records]
        profile = topic_profile(dict(topic), texts)
        self.features, profile_features = text_features(texts, profile, kind=self.model.features)
        similarity = similarity_scores(self.features, profile_features)
        top = similarity.max() if len(similarity) else 0.0
        self.scores = similarity / top if top > 0 else similarity
        self.ranking = "cold start"
        self.retrained_seconds: float | None = None
        self._lock = threading.Lock()
        self._wanted = threading.Event()
        self._trained_version = -1
        self._version = 0
        self.decisions: list[ReviewerDecision] = []    # every reviewer's, in order
        self.reload(decisions)

    # --- decisions -------------------------------------------------------------------
    def reload(self, decisions: Iterable[ReviewerDecision]) -> None:
        """Take the decisions as read from the files (after a hand edit, say)."""
        with self._lock:
            self.decisions = [d for d in decisions if d.record_id in self.index]
            self._refresh()

    def _refresh(self) -> None:
        table = latest_by_reviewer(self.decisions)
        agreed = agreement(table)
        self.verdicts = reviewer_verdicts(table, agreed.conflicts if agreed else {})
        self.mine: dict[str, ReviewerDecision] = dict(table.get(self.reviewer, {}))
        # this reviewer's records in the order first decided
        self.my_order = list(dict.fromkeys(d.record_id for d in self.decisions
                                           if d.reviewer == self.reviewer
                                           and d.record_id in self.mine))
        self._decided_mask = np.zeros(len(self.records), dtype=bool)
        for record_id in self.mine:
            self._decided_mask[self.index[record_id]] = True
        self._version += 1
        self._wanted.set()

    def record(self, decision: ReviewerDecision) -> None:
        """A decision just written to the reviewer's file."""
        with self._lock:
            self.decisions.append(decision)
            self._refresh()

    def forget_last(self, record_id: str) -> None:
        """Undo: the reviewer's last decision, on `record_id`, was removed from the file."""
        with self._lock:
            for k in range(len(self.decisions) - 1, -1, -1):
                d = self.decisions[k]
                if d.reviewer == self.reviewer and d.record_id == record_id:
                    del self.decisions[k]
                    break
            self._refresh()

    def last_decision(self) -> ReviewerDecision | None:
        """This reviewer's most recent decision (what undo removes)."""
        mine = [d for d in self.decisions if d.reviewer == self.reviewer]
        return mine[-1] if mine else None

    # --- what comes next -------------------------------------------------------------
    def next_record(self) -> dict | None:
        """The undecided record ranked highest (rule-excluded records last); None when
        this reviewer has decided every record."""
        with self._lock:
            scores, decided = self.scores, self._decided_mask
        if decided.all():
            return None
        # open records first (scores lie in 0..1), then by score; ties by position
        key = np.where(decided, -np.inf, scores - 2.0 * self._ruled)
        return self.records[int(np.argmax(key))]

    def score_of(self, record_id: str) -> float:
        return float(self.scores[self.index[record_id]])

    def rule_reason(self, record_id: str) -> str:
        return self.rule_reasons[self.index[record_id]]

    # --- the ranking -----------------------------------------------------------------
    def retrain(self) -> bool:
        """Train the topic's model on every reviewer's decisions (as screen_topic does)
        once both includes and excludes exist; swap the scores in. False: nothing new."""
        with self._lock:
            version, verdicts = self._version, dict(self.verdicts)
            order = list(dict.fromkeys([d.record_id for d in self.decisions], ))
        if version == self._trained_version:
            return False
        labelled = [(self.index[rid], 1 if verdicts[rid][0] == "include" else 0)
                    for rid in order if rid in verdicts]
        labels = np.array([label for _, label in labelled], dtype=int)
        started = time.perf_counter()
        if len(labels) and 0 < labels.sum() < len(labels):
            train = np.array([i for i, _ in labelled])
            scores = inclusion_scores(self.model, self.features, train, labels, seed=self.seed)
            ranking = f"active learning ({len(labels):,} decisions)"
            with self._lock:
                self.scores, self.ranking = scores, ranking
                self.retrained_seconds = time.perf_counter() - started
        self._trained_version = version
        return True

    def retrain_in_background(self, stop: threading.Event) -> threading.Thread:
        """A daemon thread that retrains whenever decisions have changed."""
        def loop() -> None:
            while not stop.is_set():
                if self._wanted.wait(timeout=0.5):
                    self._wanted.clear()
                    self.retrain()

        thread = threading.Thread(target=loop, name="screening-retrain", daemon=True)
        thread.start()
        return thread

    # --- progress --------------------------------------------------------------------
    def progress(self) -> Progress:
        with self._lock:
            mine = dict(self.mine)
            order = list(self.my_order)
            ranking, seconds = self.ranking, self.retrained_seconds
        counts = {"include": 0, "exclude": 0, "maybe": 0}
        for d in mine.values():
            counts[d.decision] += 1
        ruled = sum(1 for reason in self.rule_reasons if reason)
        open_records = sum(1 for rid, reason in zip(self.index, self.rule_reasons)
                           if not reason or rid in mine)
        labels = [0 if mine[rid].decision == "exclude" else 1 for rid in order]
        estimate = stopping_estimate(labels, total=open_records,
                                     target_recall=self.stopping["target_recall"],
                                     confidence=self.stopping["confidence"]) if labels else None
        return Progress(len(mine), counts["include"], counts["exclude"], counts["maybe"],
                        open_records, ruled, estimate, ranking, seconds)
