"""PRISMA 2020 flow counts, derived from the files every stage writes.

Counts come from the stage contracts (search runs, deduplicated records, the screening
table), never from a stage's own bookkeeping, so the flow diagram always agrees with the
tables a reviewer can open. PRISMA.csv uses the column layout of the PRISMA2020 R
package (Haddaway et al. 2022) so it can be loaded there unchanged.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from cmosynth.errors import InputError
from cmosynth.files import atomic_write
from cmosynth.records import read_records


@dataclass
class PrismaCounts:
    """The numbers of a PRISMA 2020 flow diagram for new studies via databases."""

    database_results: dict[str, int] = field(default_factory=dict)  # database -> records
    duplicates: int = 0
    excluded_automatic: dict[str, int] = field(default_factory=dict)  # reason -> records
    excluded_other: int = 0
    records_screened: int = 0
    records_excluded: int = 0
    excluded_by: dict[str, int] = field(default_factory=dict)  # reviewer/model -> records
    awaiting_screening: int = 0
    included: int = 0
    #: An update of a living review: included records found by earlier runs (None: a
    #: first review, whose flow has no "previous version" box).
    previous_included: int | None = None
    #: Full texts retrieved from PMC for the included records (None: not sought, the
    #: topic's extract.full_text is off).
    full_texts_retrieved: int | None = None

    @property
    def reports_not_retrieved(self) -> int:
        """Included records whose full text was sought and not retrieved (no PMC id, or
        PMC answered without one); 0 when full texts were not sought."""
        if self.full_texts_retrieved is None:
            return 0
        return max(self.included - self.full_texts_retrieved, 0)

    @property
    def reports_assessed(self) -> int:
        return self.included - self.reports_not_retrieved

    @property
    def identified(self) -> int:
        return sum(self.database_results.values())

    @property
    def excluded_automatic_total(self) -> int:
        return sum(self.excluded_automatic.values())


_SOURCE_NAMES = {
    "pubmed": "PubMed", "nbib": "PubMed (MEDLINE export)", "ris": "RIS export",
    "bibtex": "BibTeX export", "csv": "CSV export", "endnote": "EndNote export",
}


def database_label(source: str) -> str:
    """How a record's `source` is named in the flow diagram."""
    return _SOURCE_NAMES.get(source, source)


def read_search_logs(topic_dir: Path) -> list[tuple[Path, dict]]:
    """(run folder, search log) of every completed search run, in folder-name order."""
    return [(path.parent, json.loads(path.read_text("utf-8")))
            for path in sorted((topic_dir / "search").glob("*/search_log.json"))]


def new_in_latest_run(topic_dir: Path) -> tuple[dict, set[str]] | None:
    """The latest search run of a living review and the PMIDs it found that no earlier run
    of the same query had; None for a first run (or a changed query)."""
    runs = [(entry["window"]["maxdate"], entry.get("query_hash"), folder, entry)
            for folder, entry in read_search_logs(topic_dir)]
    if len(runs) < 2:
        return None
    runs.sort(key=lambda run: (run[0], run[2].name))
    _, query_hash, latest, entry = runs[-1]
    earlier = [folder for _, qhash, folder, _ in runs[:-1] if qhash == query_hash]
    if not earlier:
        return None
    seen = {r["pmid"] for folder in earlier for r in read_records(folder / "records.jsonl")}
    new = {r["pmid"] for r in read_records(latest / "records.jsonl")} - seen
    return {**entry, "run": latest.name}, new


def count_identified(dedup_records: Path) -> tuple[dict[str, int], int]:
    """Records identified per database, and duplicates linked, from dedup/records.jsonl."""
    per_source: Counter[str] = Counter()
    duplicates = 0
    for record in read_records(dedup_records):
        per_source[database_label(record.get("source") or "unknown")] += 1
        if record.get("duplicate_of"):
            duplicates += 1
    return dict(sorted(per_source.items())), duplicates


def count_screening(screening_csv: Path) -> dict:
    """Screening outcomes from screen/screening.csv (DESIGN.md contract)."""
    automatic: Counter[str] = Counter()
    excluded_by: Counter[str] = Counter()
    screened = excluded = included = awaiting = 0
    with open(screening_csv, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"record_id", "rule_decision", "rule_reason", "decision", "decided_by"} - set(
            reader.fieldnames or [])
        if missing:
            raise InputError(screening_csv, f"missing columns {sorted(missing)}; rerun the "
                             "screen stage", line=1)
        for row in reader:
            if row["decided_by"] == "rule" and row["decision"] == "exclude":
                automatic[row["rule_reason"] or "criteria rule"] += 1
                continue
            screened += 1
            if row["decision"] == "exclude":
                excluded += 1
                excluded_by[row["decided_by"] or "unknown"] += 1
            elif row["decision"] == "include":
                included += 1
            else:
                awaiting += 1
    return {"excluded_automatic": dict(sorted(automatic.items())), "records_screened": screened,
            "records_excluded": excluded, "excluded_by": dict(sorted(excluded_by.items())),
            "included": included, "awaiting_screening": awaiting}


def prisma_counts(topic_dir: Path) -> PrismaCounts:
    """Counts for one topic's outputs folder (`outputs/<topic>`)."""
    identified, duplicates = count_identified(topic_dir / "dedup" / "records.jsonl")
    screening = count_screening(topic_dir / "screen" / "screening.csv")
    counts = PrismaCounts(database_results=identified, duplicates=duplicates, **screening)
    manifest = topic_dir / "extract" / "fulltext" / "manifest.json"
    if manifest.exists():
        articles = json.loads(manifest.read_text("utf-8")).get("articles", [])
        # manifests written before retrieval was checked hold no `retrieved`: count their
        # files by the paragraphs read
        counts.full_texts_retrieved = sum(
            bool(a.get("retrieved", a.get("paragraphs", 0) > 0)) for a in articles)
    update = new_in_latest_run(topic_dir)
    included = topic_dir / "screen" / "included.jsonl"
    if update is not None and included.exists():
        new = update[1]
        counts.previous_included = sum(1 for r in read_records(included)
                                       if r.get("pmid") not in new)
    return counts


def _reasons(counts: dict[str, int]) -> str:
    return "; ".join(f"{reason}, {n}" for reason, n in counts.items())


def prisma_csv_rows(counts: PrismaCounts) -> list[dict]:
    """Rows of the PRISMA2020 R package template with our numbers in column `n`.

    cmosynth screens titles and abstracts; reports are not retrieved or assessed by the
    pipeline, so the report boxes carry the title/abstract inclusions and say so.
    """
    n = {
        "previous_studies": counts.previous_included or 0,
        "previous_reports": counts.previous_included or 0,
        "database_results": counts.identified,
        "database_specific_results": _reasons(counts.database_results) or 0,
        "register_results": 0, "website_results": 0, "organisation_results": 0,
        "citations_results": 0, "duplicates": counts.duplicates,
        "excluded_automatic": counts.excluded_automatic_total, "excluded_other": counts.excluded_other,
        "records_screened": counts.records_screened, "records_excluded": counts.records_excluded,
        "dbr_sought_reports": counts.included,
        "dbr_notretrieved_reports": counts.reports_not_retrieved,
        "other_sought_reports": 0, "other_notretrieved_reports": 0,
        "dbr_assessed": counts.reports_assessed, "dbr_excluded": 0,
        "other_assessed": 0, "other_excluded": 0,
        "new_studies": counts.included - (counts.previous_included or 0),
        "new_reports": counts.included - (counts.previous_included or 0),
        "total_studies": counts.included, "total_reports": counts.included,
    }
    rows = []
    for data, node, box, description, boxtext in _TEMPLATE:
        rows.append({"data": data, "node": node, "box": box, "description": description,
                     "boxtext": boxtext, "tooltips": description if node != "NA" else "NA",
                     "url": f"{data}.html" if data != "NA" else f"{box}.html",
                     "n": n.get(data, 0)})
    return rows


def write_prisma_csv(counts: PrismaCounts, path: Path) -> None:
    rows = prisma_csv_rows(counts)
    with atomic_write(path, newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def write_counts_json(counts: PrismaCounts, path: Path) -> None:
    payload = {**counts.__dict__, "identified": counts.identified,
               "excluded_automatic_total": counts.excluded_automatic_total}
    with atomic_write(path) as handle:
        json.dump(payload, handle, indent=2, sort_keys=True)
        handle.write("\n")


# (data, node, box, description, boxtext), as in PRISMA2020's inst/extdata/PRISMA.csv.
_TEMPLATE: list[tuple[str, str, str, str, str]] = [
    ("NA", "node4", "prevstud", "Grey title box; Previous studies", "Previous studies"),
    ("previous_studies", "node5", "box1", "Studies included in previous version of review",
     "Studies included in previous version of review"),
    ("previous_reports", "NA", "box1", "Reports of studies included in previous version of review",
     "Reports of studies included in previous version of review"),
    ("NA", "node6", "newstud", "Yellow title box; Identification of new studies via databases "
     "and registers", "Identification of new studies via databases and registers"),
    ("database_results", "node7", "box2", "Records identified from: Databases", "Databases"),
    ("database_specific_results", "NA", "box2", "Records identified from each database",
     "Databases"),
    ("register_results", "NA", "box2", "Records identified from: Registers", "Registers"),
    ("NA", "node16", "othstud", "Grey title box; Identification of new studies via other methods",
     "Identification of new studies via other methods"),
    ("website_results", "node17", "box11", "Records identified from: Websites", "Websites"),
    ("organisation_results", "NA", "box11", "Records identified from: Organisations",
     "Organisations"),
    ("citations_results", "NA", "box11", "Records identified from: Citation searching",
     "Citation searching"),
    ("duplicates", "node8", "box3", "Duplicate records", "Duplicate records"),
    ("excluded_automatic", "NA", "box3", "Records marked as ineligible by automation tools",
     "Records marked as ineligible by automation tools"),
    ("excluded_other", "NA", "box3", "Records removed for other reasons",
     "Records removed for other reasons"),
    ("records_screened", "node9", "box4", "Records screened (databases and registers)",
     "Records screened"),
    ("records_excluded", "node10", "box5", "Records excluded (databases and registers)",
     "Records excluded"),
    ("dbr_sought_reports", "node11", "box6", "Reports sought for retrieval (databases and "
     "registers)", "Reports sought for retrieval"),
    ("dbr_notretrieved_reports", "node12", "box7", "Reports not retrieved (databases and "
     "registers)", "Reports not retrieved"),
    ("other_sought_reports", "node18", "box12", "Reports sought for retrieval (other)",
     "Reports sought for retrieval"),
    ("other_notretrieved_reports", "node19", "box13", "Reports not retrieved (other)",
     "Reports not retrieved"),
    ("dbr_assessed", "node13", "box8", "Reports assessed for eligibility (databases and "
     "registers)", "Reports assessed for eligibility"),
    ("dbr_excluded", "node14", "box9", "Reports excluded (databases and registers)",
     "Reports excluded"),
    ("other_assessed", "node20", "box14", "Reports assessed for eligibility (other)",
     "Reports assessed for eligibility"),
    ("other_excluded", "node21", "box15", "Reports excluded (other)", "Reports excluded"),
    ("new_studies", "node15", "box10", "New studies included in review",
     "New studies included in review"),
    ("new_reports", "NA", "box10", "Reports of new included studies",
     "Reports of new included studies"),
    ("total_studies", "node22", "box16", "Total studies included in review",
     "Total studies included in review"),
    ("total_reports", "NA", "box16", "Reports of total included studies",
     "Reports of total included studies"),
    ("identification", "node1", "identification", "Blue identification box", "Identification"),
    ("screening", "node2", "screening", "Blue screening box", "Screening"),
    ("included", "node3", "included", "Blue included box", "Included"),
]
