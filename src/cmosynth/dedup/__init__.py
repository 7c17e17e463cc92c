"""Deduplication: link records of one publication found in several sources.

Link, never delete: every input record is written out with `duplicate_of` (the
record_id of its cluster's kept record, or null), `dup_rule` (the named rule that
linked it), `dup_score`, `dup_group` and, on kept records, `merged_from` (which
duplicate filled which empty field). Uncertain pairs go to a CSV for a reviewer, whose
decisions come back through an overrides CSV.
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from cmosynth.dedup.engine import (DEDUP_FIELDS, REVIEW_COLUMNS, DedupResult, Override,
                                   dedup_records)
from cmosynth.errors import InputError
from cmosynth.files import atomic_write, read_reviewer_csv, write_jsonl
from cmosynth.imports import read_records_file
from cmosynth.records import read_records, write_records

__all__ = ["dedup_files", "dedup_records", "read_override_files", "read_overrides",
           "read_previous", "settle_overrides",
           "write_review_pairs", "DedupResult", "Override", "DEDUP_FIELDS", "REVIEW_COLUMNS"]

log = logging.getLogger("cmosynth.dedup")

_DECISIONS = {"duplicates": True, "duplicate": True, "not_duplicates": False,
              "not_duplicate": False}


def read_overrides(path: str | os.PathLike) -> list[Override]:
    """Reviewer decisions on pairs: record_id_a, record_id_b, decision[, reviewer, reason],
    in file order (a reviewer's later row for a pair replaces their earlier one when
    settled). An unknown decision is an InputError naming the line; ids not in this run
    are only warned about when deduplicating, since they may be of records not yet found."""
    overrides = []
    for line, row in read_reviewer_csv(
            path, ("decision", "record_id_a", "record_id_b"),
            not_found="overrides file not found; check dedup.overrides in the topic",
            header="the header must be record_id_a,record_id_b,decision[,reviewer,reason]"):
        decision = row["decision"].lower()
        if decision not in _DECISIONS:
            raise InputError(path, f"decision {row['decision']!r} is neither 'duplicates' nor "
                                   "'not_duplicates'", line=line)
        a, b = row["record_id_a"], row["record_id_b"]
        if not a or not b:
            raise InputError(path, "record_id_a and record_id_b are both needed", line=line)
        if a == b:
            raise InputError(path, f"record_id_a and record_id_b are the same record ({a!r}); "
                                   "a pair needs two records", line=line)
        overrides.append(Override(a, b, _DECISIONS[decision],
                                  row.get("reviewer", "") or Path(path).stem,
                                  row.get("reason", "")))
    return overrides


def settle_overrides(overrides: Iterable[Override]) -> list[Override]:
    """One decision per pair from every reviewer's rows (a reviewer's later row for a
    pair replaces their earlier one): the reviewer `consensus` settles a pair; reviewers
    who disagree keep the two records apart until then, since a wrong merge hides a
    study from screening while a missed one is only counted twice."""
    latest: dict[tuple[str, str], dict[str, Override]] = {}
    for o in overrides:
        pair = tuple(sorted((o.record_id_a, o.record_id_b)))
        latest.setdefault(pair, {})[o.reviewer.lower()] = o
    settled = []
    for pair, by_reviewer in latest.items():
        if "consensus" in by_reviewer:
            settled.append(by_reviewer["consensus"])
        elif len({o.duplicates for o in by_reviewer.values()}) == 1:
            settled.append(next(iter(by_reviewer.values())))
        else:
            log.info("reviewers disagree on %s and %s; kept apart until a consensus row "
                     "settles them", *pair)
            settled.append(Override(*pair, False, "disagreement", "reviewers disagree"))
    return settled


def read_override_files(paths: Iterable[str | os.PathLike]) -> list[Override]:
    """Every reviewer's pair decisions, settled to one per pair."""
    return settle_overrides(o for path in paths for o in read_overrides(path))


def read_previous(path: str | os.PathLike) -> dict[str, dict]:
    """An earlier run's decisions by record_id, from its output or its decision ledger."""
    decisions = {}
    for number, record in enumerate(read_records(path), start=1):
        if "record_id" not in record:
            raise InputError(path, "record without record_id; is this a deduplicated JSONL?",
                             line=number)
        decisions[record["record_id"]] = {k: record.get(k) for k in
                                          ("duplicate_of", "dup_rule", "dup_score")}
    return decisions


def write_review_pairs(path: str | os.PathLike, rows: Iterable[dict]) -> None:
    """The uncertain pairs as CSV (written atomically, header always present)."""
    with atomic_write(path, newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=REVIEW_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def write_ledger(path: str | os.PathLike, records: Iterable[dict]) -> None:
    """The decisions alone (record_id, duplicate_of, dup_rule, dup_score), for the next run."""
    write_jsonl(path, ({"record_id": r["record_id"], "duplicate_of": r["duplicate_of"],
                        "dup_rule": r["dup_rule"], "dup_score": r["dup_score"]}
                       for r in sorted(records, key=lambda r: r["record_id"])))


def dedup_files(inputs: Sequence[str | os.PathLike], output: str | os.PathLike, *,
                review_pairs: str | os.PathLike | None = None,
                overrides: Sequence[str | os.PathLike] = (),
                previous: str | os.PathLike | None = None,
                history: str | os.PathLike | None = None) -> DedupResult:
    """Read, deduplicate and write every input record (sorted by record_id) to `output`.

    `previous` is an earlier deduplicated JSONL whose decisions are kept. `history` is a
    decision ledger that is read when present and rewritten after the run: the workflow
    keeps it outside the rule's declared outputs, which Snakemake deletes before a rerun.
    """
    records = []
    for path in inputs:
        before = len(records)
        records.extend(read_records_file(path))
        if len(records) == before:
            log.warning("%s holds no records: it adds nothing to the review; check the "
                        "export", path)
        else:
            log.info("read %d records from %s", len(records) - before, path)
    earlier = {}
    if previous:
        if not Path(previous).exists():
            raise InputError(previous, "earlier deduplicated file not found; check --previous")
        earlier = read_previous(previous)
    elif history and Path(history).exists():
        earlier = read_previous(history)
    if isinstance(overrides, (str, os.PathLike)):
        overrides = [overrides]
    result = dedup_records(records, read_override_files(overrides), earlier)
    write_records(output, sorted(result.records, key=lambda r: r["record_id"]))
    if review_pairs:
        write_review_pairs(review_pairs, result.review_pairs)
    if history:
        write_ledger(history, result.records)
    _log_counts(result)
    return result


def _log_counts(result: DedupResult) -> None:
    kept = sum(1 for r in result.records if r["duplicate_of"] is None)
    log.info("records in: %d; kept: %d; duplicates linked: %d; clusters: %d; pairs to "
             "review: %d", len(result.records), kept, len(result.records) - kept,
             result.counts["clusters of duplicates"], len(result.review_pairs))
    for name, count in sorted(result.counts.items()):
        if name.startswith("linked by "):
            log.info("%s: %d", name, count)
