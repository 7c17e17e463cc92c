"""screen_topic: screen a topic's deduplicated records and write screen/.

Order of precedence for each record: a reviewer's decision, then the criteria rules, then
the model. With no reviewer decisions at all, screening is machine-made: records whose
title or abstract satisfies the topic's own query are included, records that satisfy it
only partly or only through index terms are left for a reviewer, and the rest are
excluded (see `topicality`); summary.json says so in a plain sentence. With reviewer
decisions, undecided records stay undecided until the stopping rule shows the target
recall is reached; the rest are then excluded by the model. to_screen.csv lists, in priority order, every record still awaiting a reviewer:
the undecided ones and those the model decided only provisionally (machine-made).
"""

from __future__ import annotations

import csv
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cmosynth.console import track
from cmosynth.errors import InputError
from cmosynth.files import atomic_write, write_json
from cmosynth.records import read_records, write_records
from cmosynth.reviewers import reviewer_files
from cmosynth.screen.decisions import (Agreement, ReviewerDecision, agreement,
                                       latest_by_reviewer, read_decisions, reviewer_verdicts,
                                       screening_sequence)
from cmosynth.screen.model import (RankingModel, get_model, inclusion_scores, record_text,
                                   similarity_scores, text_features)
from cmosynth.screen.profile import topic_profile
from cmosynth.screen.rules import criteria_rules, rule_exclusion
from cmosynth.screen.stopping import StoppingEstimate, stopping_estimate
from cmosynth.screen.topicality import (CANNOT_TELL, OFF_TOPIC, ON_TOPIC, QuerySyntaxError,
                                        parse_query, topicality)

log = logging.getLogger("cmosynth.screen")

SCREENING_COLUMNS = ["record_id", "rank", "score", "rule_decision", "rule_reason",
                     "reviewer_decision", "decision", "exclusion_reason", "decided_by"]
TO_SCREEN_COLUMNS = ["record_id", "rank", "score", "title", "abstract", "year", "journal",
                     "doi", "pmid", "decision", "reason", "reviewer"]
CONFLICT_COLUMNS = ["record_id", "title", "reviewer", "decision", "reason", "file", "line"]
ABSTRACT_SNIPPET = 400
STOPPED_REASON = "not screened: stopping rule showed the target recall reached"


@dataclass
class Screening:
    """Everything screening decided about one record."""

    record: dict
    score: float = 0.0
    rank: int = 0
    rule_reason: str = ""
    reviewer_decision: str = ""
    reviewer_reason: str = ""
    decision: str = ""
    exclusion_reason: str = ""
    decided_by: str = ""
    topicality: str = ""
    topicality_reason: str = ""

    @property
    def record_id(self) -> str:
        return self.record["record_id"]


@dataclass
class ScoringResult:
    """Scores of all records, and how they were made (active learning or cold start)."""

    scores: np.ndarray
    mode: str
    details: dict = field(default_factory=dict)


def decision_paths(topic: dict) -> list[Path]:
    """The topic's reviewer decision files (`screen.decisions`: paths or patterns)."""
    return reviewer_files(topic, "decisions")


def load_screening_records(path: Path) -> tuple[list[dict], dict[str, str]]:
    """Records to screen (not duplicates), and every id a reviewer may use -> kept id."""
    if not path.exists():
        raise InputError(path, "deduplicated records not found; run `cmosynth dedup` first")
    kept, aliases = [], {}
    for record in read_records(path):
        target = record.get("duplicate_of") or record["record_id"]
        aliases[record["record_id"]] = target
        if not record.get("duplicate_of"):
            kept.append(record)
    return kept, aliases


def score_records(topic: dict, records: list[dict], verdicts: dict[str, tuple[str, str]],
                  model: RankingModel, seed: int, sequence: list[str] = ()) -> ScoringResult:
    """Score every record: the classifier trained on reviewer decisions when they hold
    both includes and excludes, else the cold start (similarity to the topic profile,
    relative to the most similar record). `sequence` is the order the reviewers decided
    in: models that weigh recent decisions more read the training records in that order."""
    texts = [record_text(r.get("title"), r.get("abstract")) for r in records]
    profile = topic_profile(topic, texts)
    features, profile_features = text_features(texts, profile, kind=model.features)
    index = {r["record_id"]: i for i, r in enumerate(records)}
    in_order = list(dict.fromkeys([*sequence, *verdicts]))
    labelled = [(index[rid], 1 if verdicts[rid][0] == "include" else 0) for rid in in_order
                if rid in index and rid in verdicts]
    labels = np.array([label for _, label in labelled], dtype=int)
    if len(labels) and 0 < labels.sum() < len(labels):
        train = np.array([i for i, _ in labelled])
        scores = inclusion_scores(model, features, train, labels, seed=seed)
        return ScoringResult(scores, "active learning",
                             {"trained_on": len(labels), "included_in_training": int(labels.sum())})
    similarity = similarity_scores(features, profile_features)
    top = similarity.max() if len(similarity) else 0.0
    scores = similarity / top if top > 0 else similarity
    return ScoringResult(scores, "cold start",
                         {"profile_documents": len(profile),
                          "note": "similarity to the query terms and codebook cues, divided by "
                                  "the highest similarity of any record"})


def assign_ranks(items: list[Screening], sequence: list[str]) -> None:
    """Rank = screening order: records the reviewers decided (in the order they decided
    them), then the rest by score, records excluded by rules last; ties by record_id."""
    position = {rid: i for i, rid in enumerate(sequence)}

    def key(item: Screening):
        if item.record_id in position:
            return (0, position[item.record_id], 0, 0.0, "")
        return (1 if not item.rule_reason else 2, 0, _TOPIC_ORDER.get(item.topicality, 0),
                -item.score, item.record_id)

    for rank, item in enumerate(sorted(items, key=key), start=1):
        item.rank = rank


_TOPIC_ORDER = {ON_TOPIC: 0, CANNOT_TELL: 1, OFF_TOPIC: 2}


def judge_topicality(topic: dict, items: list[Screening]) -> None:
    """Machine-made screening only: whether each record's own text satisfies the topic's
    query (an absolute test, the same on every corpus)."""
    query = topic.get("search", {}).get("pubmed", {}).get("query", "")
    try:
        tree = parse_query(query)
    except QuerySyntaxError as error:
        raise InputError(topic.get("_path", "topic"), f"search.pubmed.query: {error}") from None
    for item in items:
        verdict = topicality(tree, item.record)
        item.topicality, item.topicality_reason = verdict.verdict, verdict.reason


def decide(item: Screening, machine_made: bool, stop_reached: bool) -> None:
    """Apply the precedence: reviewer, then rule, then model."""
    if item.reviewer_decision:
        item.decision, item.decided_by = item.reviewer_decision, "reviewer"
        item.exclusion_reason = item.reviewer_reason if item.decision == "exclude" else ""
    elif item.rule_reason:
        item.decision, item.decided_by, item.exclusion_reason = "exclude", "rule", item.rule_reason
    elif machine_made:
        # A record the query cannot settle waits for a reviewer rather than being included.
        if item.topicality == ON_TOPIC:
            item.decision, item.decided_by = "include", "model"
        elif item.topicality == OFF_TOPIC:
            item.decision, item.decided_by = "exclude", "model"
            item.exclusion_reason = f"off topic: {item.topicality_reason}"
    elif stop_reached:
        item.decision, item.decided_by = "exclude", "model"
        item.exclusion_reason = STOPPED_REASON


def awaits_reviewer(item: Screening) -> bool:
    """Undecided, or decided only provisionally by the model in machine-made screening
    (not once the stopping rule has let the reviewer stop)."""
    return not item.decision or (item.decided_by == "model" and not item.exclusion_reason
                                 .startswith(STOPPED_REASON))


def machine_made_sentence(included: int, undecided: int, total: int) -> str:
    were = "was" if included == 1 else "were"
    wait = "waits" if undecided == 1 else "wait"
    return (f"Screening was machine-made: no reviewer screened these records. Of {total:,} "
            f"records, the {included:,} whose title or abstract satisfies the topic's search "
            f"query {were} included; {undecided:,} that the query cannot settle (satisfied "
            f"only in part or only through index terms, or without an abstract) {wait} for a "
            f"reviewer; the rest were excluded. A reviewer should check the inclusions.")


def screen_topic(topic: dict, outputs: str | Path = "outputs") -> dict:
    """Screen `<outputs>/<topic>/dedup/records.jsonl`; write screen/ and return the summary.

    `topic` comes from cmosynth.config.load_topic, which fills in every default."""
    settings = topic["screen"]
    folder = Path(outputs) / topic["name"]
    records, aliases = load_screening_records(folder / "dedup" / "records.jsonl")
    decisions = read_decisions(decision_paths(topic), aliases)  # bad files fail first
    model = get_model(settings["model"]["name"])
    seed = settings["model"]["seed"]
    log.info("screening %d records of topic %s", len(records), topic["name"])

    items = apply_rules(records, settings["criteria"])
    table = latest_by_reviewer(decisions)
    agreed = agreement(table)
    verdicts = reviewer_verdicts(table, agreed.conflicts if agreed else {})
    for item in items:
        if item.record_id in verdicts:
            item.reviewer_decision, item.reviewer_reason = verdicts[item.record_id]

    sequence = [rid for rid in screening_sequence(decisions) if rid in verdicts]
    scoring = score_records(topic, records, verdicts, model, seed, sequence)
    for item, score in zip(items, scoring.scores):
        item.score = round(float(score), 6)
    machine_made = not verdicts
    if machine_made:
        judge_topicality(topic, items)
    assign_ranks(items, sequence)

    estimate = None if machine_made else run_stopping_rule(items, sequence, verdicts,
                                                             settings["stopping"])
    for item in items:
        decide(item, machine_made, bool(estimate and estimate.target_reached))

    summary = screening_summary(items, model, scoring, machine_made, estimate,
                                agreed, decisions, seed)
    write_outputs(folder / "screen", sorted(items, key=lambda i: i.rank), agreed, summary)
    log.info("screened %d records: %d included, %d excluded, %d undecided",
             len(items), summary["included"], summary["excluded"], summary["undecided"])
    return summary


def apply_rules(records: list[dict], criteria: dict) -> list[Screening]:
    """Every record with the reason of the first criteria rule that excludes it, if any."""
    rules = criteria_rules(criteria)
    return [Screening(r, rule_reason=rule_exclusion(r, rules) or "")
            for r in track(records, "applying criteria rules", total=len(records))]


def run_stopping_rule(items: list[Screening], sequence: list[str],
                      verdicts: dict[str, tuple[str, str]], settings: dict) -> StoppingEstimate:
    """The stopping test on the reviewers' decisions in the order they were made, out of
    the records open to screening (not excluded by rules, or decided by a reviewer)."""
    labels = [1 if verdicts[rid][0] == "include" else 0 for rid in sequence]
    open_to_screening = sum(1 for i in items if not i.rule_reason or i.reviewer_decision)
    return stopping_estimate(labels, total=open_to_screening,
                             target_recall=settings["target_recall"],
                             confidence=settings["confidence"])


def write_outputs(screen_dir: Path, items: list[Screening], agreed: Agreement | None,
                  summary: dict) -> None:
    """screening.csv, to_screen.csv, included.jsonl, conflicts.csv and summary.json."""
    write_screening_table(screen_dir / "screening.csv", items)
    write_to_screen(screen_dir / "to_screen.csv", [i for i in items if awaits_reviewer(i)])
    write_records(screen_dir / "included.jsonl",
                  (i.record for i in items if i.decision == "include"))
    write_conflicts(screen_dir / "conflicts.csv", agreed, {i.record_id: i for i in items})
    write_json(screen_dir / "summary.json", summary)


def screening_summary(items: list[Screening], model: RankingModel, scoring: ScoringResult,
                      machine_made: bool, estimate: StoppingEstimate | None,
                      agreed: Agreement | None, decisions: list[ReviewerDecision],
                      seed: int) -> dict:
    """The PRISMA 2020 counts and how they were reached."""
    by = Counter((i.decided_by, i.decision) for i in items)
    automation = Counter(i.exclusion_reason for i in items if i.decided_by == "rule")
    included = by[("reviewer", "include")] + by[("model", "include")]
    undecided = sum(1 for i in items if not i.decision)
    summary = {
        "records": len(items),
        "excluded_by_automation": {"total": sum(automation.values()),
                                   "reasons": dict(sorted(automation.items()))},
        "records_screened": len(items) - sum(automation.values()),
        "excluded_by_reviewers": by[("reviewer", "exclude")],
        "excluded_by_model": by[("model", "exclude")],
        "excluded": sum(n for (_, d), n in by.items() if d == "exclude"),
        "included_by_reviewers": by[("reviewer", "include")],
        "included_by_model": by[("model", "include")],
        "included": included,
        "undecided": undecided,
        "machine_made": machine_made,
        "machine_made_statement": (machine_made_sentence(included, undecided, len(items))
                                   if machine_made else None),
        "reviewer_decisions": len(decisions),
        "reviewers": sorted({d.reviewer for d in decisions}),
        "agreement": agreed.as_dict() if agreed else None,
        "stopping_rule": (estimate.as_dict() if estimate else
                          {"method": "hypergeometric test (Callaghan & Müller-Hansen 2020)",
                           "applicable": False,
                           "sentence": "No reviewer decisions: the stopping rule needs "
                                       "screened records and was not applied."}),
        "model": {**model.describe(), "seed": seed, "mode": scoring.mode, **scoring.details},
        "topicality": (dict(sorted(Counter(i.topicality for i in items
                                           if not i.rule_reason).items()))
                       if machine_made else None),
    }
    return summary


def _csv_writer(handle):
    return csv.writer(handle, lineterminator="\n")


def write_screening_table(path: Path, items: list[Screening]) -> None:
    with atomic_write(path, newline="") as handle:
        writer = _csv_writer(handle)
        writer.writerow(SCREENING_COLUMNS)
        for i in items:
            writer.writerow([i.record_id, i.rank, f"{i.score:.6f}",
                             "exclude" if i.rule_reason else "", i.rule_reason,
                             i.reviewer_decision, i.decision, i.exclusion_reason, i.decided_by])


def write_to_screen(path: Path, items: list[Screening]) -> None:
    """Records awaiting a reviewer in priority order, with empty columns for their copy."""
    with atomic_write(path, newline="") as handle:
        writer = _csv_writer(handle)
        writer.writerow(TO_SCREEN_COLUMNS)
        for i in items:
            r = i.record
            abstract = " ".join((r.get("abstract") or "").split())
            if len(abstract) > ABSTRACT_SNIPPET:
                abstract = abstract[:ABSTRACT_SNIPPET].rsplit(" ", 1)[0] + " ..."
            writer.writerow([i.record_id, i.rank, f"{i.score:.6f}", r.get("title") or "",
                             abstract, r.get("year") or "", r.get("journal") or "",
                             r.get("doi") or "", r.get("pmid") or "", "", "", ""])


def write_conflicts(path: Path, agreed: Agreement | None, items: dict[str, Screening]) -> None:
    """One row per reviewer per disputed record (header only with fewer than two reviewers)."""
    with atomic_write(path, newline="") as handle:
        writer = _csv_writer(handle)
        writer.writerow(CONFLICT_COLUMNS)
        for record_id, views in (agreed.conflicts.items() if agreed else []):
            title = (items[record_id].record.get("title") or "") if record_id in items else ""
            for reviewer, d in sorted(views.items()):
                writer.writerow([record_id, title, reviewer, d.decision, d.reason, d.path,
                                 d.line])
