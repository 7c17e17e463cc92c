"""The deduplication hard cases (tests/fixtures/dedup/hard_cases.csv), written for the
project from real record shapes, as records with their gold groups. Read by the tests and
by bench/dedup.py."""

from __future__ import annotations

import csv
from pathlib import Path

from cmosynth.records import new_record

HARD_CASES = Path(__file__).resolve().parent / "fixtures" / "dedup" / "hard_cases.csv"


def hard_case_rows() -> list[dict]:
    with open(HARD_CASES, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def hard_cases() -> list[tuple[dict, str]]:
    """(record, gold group) for every hard case; the record's source_id is the case's ID."""
    return [(new_record(row["source"], source_id=row["ID"], title=row["title"] or None,
                        authors=[a.strip() for a in row["authors"].split(";") if a.strip()],
                        journal=row["journal"] or None, year=row["year"] or None,
                        volume=row["volume"] or None, issue=row["issue"] or None,
                        pages=row["pages"] or None, doi=row["doi"] or None,
                        pmid=row["pmid"] or None), row["gold"]) for row in hard_case_rows()]
