"""Reviewer decisions: the CSV files reviewers own, read and never written.

Columns `record_id,decision,reason,reviewer` (others, e.g. those of to_screen.csv, are
ignored). Decisions accept include/exclude/maybe, yes/no and 1/0 in any case; an empty
decision means "not screened yet". A reviewer's later row for a record replaces their
earlier one. With two or more reviewers, records they disagree on are conflicts; a row
from the reviewer named `consensus` settles one, otherwise it goes forward (included) so
that full-text screening can settle it.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from sklearn.metrics import cohen_kappa_score

from cmosynth.errors import InputError
from cmosynth.files import read_reviewer_csv

log = logging.getLogger("cmosynth.screen.decisions")

DECISION_WORDS = {
    "include": "include", "included": "include", "yes": "include", "y": "include", "1": "include",
    "exclude": "exclude", "excluded": "exclude", "no": "exclude", "n": "exclude", "0": "exclude",
    "maybe": "maybe", "unsure": "maybe",
}
CONSENSUS_REVIEWER = "consensus"


@dataclass(frozen=True)
class ReviewerDecision:
    """One reviewer's decision on one record, with where it was read from."""

    record_id: str
    decision: str  # include, exclude or maybe
    reason: str
    reviewer: str
    path: str
    line: int


def normalise_decision(value: str) -> str | None:
    """include/exclude/maybe for any accepted spelling, None for an unknown one."""
    return DECISION_WORDS.get(value.strip().lower())


def read_decision_file(path: str | Path, known_ids: Mapping[str, str]) -> list[ReviewerDecision]:
    """Decisions of one file, in file order. `known_ids` maps every record id the
    reviewer may use (duplicates included) to the id of the record that is screened."""
    path = Path(path)
    rows = read_reviewer_csv(path, ("record_id", "decision"),
                             not_found="reviewer decisions file not found; check "
                                       "screen.decisions in the topic file",
                             header="the header must be record_id,decision,reason,reviewer")
    return [d for line, row in rows if (d := _read_row(row, path, line, known_ids)) is not None]


def _read_row(row: dict[str, str], path: Path, line: int,
              known_ids: Mapping[str, str]) -> ReviewerDecision | None:
    def cell(name: str) -> str:
        return row.get(name, "")

    record_id, value = cell("record_id"), cell("decision")
    if not record_id and not value:
        return None
    if not value:
        return None  # a row copied from to_screen.csv but not decided yet
    decision = normalise_decision(value)
    if decision is None:
        raise InputError(path, f"decision {value!r} is not one of include, exclude, maybe "
                               f"(or yes/no, 1/0)", line=line)
    if record_id not in known_ids:
        raise InputError(path, f"unknown record_id {record_id!r}; use the ids of "
                               f"screen/to_screen.csv", line=line)
    if known_ids[record_id] != record_id:
        log.info("%s:%d: %s is a duplicate; the decision applies to %s", path, line,
                 record_id, known_ids[record_id])
    return ReviewerDecision(known_ids[record_id], decision, cell("reason"),
                            cell("reviewer") or path.stem, str(path), line)


def read_decisions(paths: Iterable[str | Path], known_ids: Mapping[str, str]
                   ) -> list[ReviewerDecision]:
    """Decisions of every file, in file order then row order (the screening order)."""
    return [d for path in paths for d in read_decision_file(path, known_ids)]


def latest_by_reviewer(decisions: Iterable[ReviewerDecision]
                       ) -> dict[str, dict[str, ReviewerDecision]]:
    """reviewer -> record_id -> that reviewer's last decision on the record."""
    table: dict[str, dict[str, ReviewerDecision]] = {}
    for decision in decisions:
        table.setdefault(decision.reviewer, {})[decision.record_id] = decision
    return table


@dataclass(frozen=True)
class Agreement:
    """Agreement between reviewers: pairwise Cohen's kappa and the records in conflict."""

    reviewers: list[str]
    pairs: list[dict]
    conflicts: dict[str, dict[str, ReviewerDecision]]
    settled: frozenset[str]

    def as_dict(self) -> dict:
        return {"reviewers": self.reviewers, "pairs": self.pairs,
                "conflicts": len(self.conflicts),
                "conflicts_settled_by_consensus": len(self.settled)}


def agreement(table: Mapping[str, Mapping[str, ReviewerDecision]]) -> Agreement | None:
    """Kappa for every pair of reviewers over the records both decided, and the records
    on which any two reviewers disagree (None with fewer than two reviewers)."""
    reviewers = sorted(r for r in table if r.lower() != CONSENSUS_REVIEWER)
    if len(reviewers) < 2:
        return None
    pairs = []
    for first, second in itertools.combinations(reviewers, 2):
        shared = sorted(set(table[first]) & set(table[second]))
        a = [table[first][r].decision for r in shared]
        b = [table[second][r].decision for r in shared]
        kappa = float(cohen_kappa_score(a, b)) if shared and len(set(a) | set(b)) > 1 else None
        pairs.append({"reviewers": [first, second], "records_both_screened": len(shared),
                      "agreed": sum(x == y for x, y in zip(a, b)),
                      "cohen_kappa": None if kappa is None else round(kappa, 4)})
    conflicts = {}
    for record_id in sorted({r for name in reviewers for r in table[name]}):
        views = {name: table[name][record_id] for name in reviewers if record_id in table[name]}
        if len({d.decision for d in views.values()}) > 1:
            conflicts[record_id] = views
    consensus = next((v for k, v in table.items() if k.lower() == CONSENSUS_REVIEWER), {})
    return Agreement(reviewers, pairs, conflicts, frozenset(conflicts) & frozenset(consensus))


def reviewer_verdicts(table: Mapping[str, Mapping[str, ReviewerDecision]],
                      conflicts: Mapping[str, object]) -> dict[str, tuple[str, str]]:
    """record_id -> (decision, reason) after all reviewers: consensus rows win, conflicts
    go forward as include, maybe goes forward as include (full text will tell)."""
    verdicts: dict[str, tuple[str, str]] = {}
    consensus = next((v for k, v in table.items() if k.lower() == CONSENSUS_REVIEWER), {})
    for name, decisions in table.items():
        if name.lower() == CONSENSUS_REVIEWER:
            continue
        for record_id, decision in decisions.items():
            verdicts.setdefault(record_id, (decision.decision, decision.reason))
    for record_id in conflicts:
        verdicts[record_id] = ("include", "reviewers disagree: goes forward to full text")
    for record_id, decision in consensus.items():
        verdicts[record_id] = (decision.decision, decision.reason)
    return {record_id: ("include" if d == "maybe" else d, reason)
            for record_id, (d, reason) in verdicts.items()}


def screening_sequence(decisions: Iterable[ReviewerDecision]) -> list[str]:
    """Record ids in the order they were first decided: the files' order is taken as the
    order in which the reviewer screened (to_screen.csv's priority order)."""
    return list(dict.fromkeys(d.record_id for d in decisions))
