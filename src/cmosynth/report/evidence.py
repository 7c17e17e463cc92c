"""What the report shows of the synthesis: per programme theory, the table of its CMOCs
(context, mechanism and outcome quotes in their own columns, with the concepts they name
by label, the record linked to PubMed and its DOI, the confidence and who coded it), and
the mechanism-by-outcome heatmap.

Read from the files the synthesis and extraction wrote (`synthesis/theory_evidence.csv`,
`synthesis/matrix.csv`, `extract/cmo.csv`), so the report can be rebuilt at any time.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from pathlib import Path

from rapidfuzz import fuzz

from cmosynth.extract.codebook import ROLES, Codebook
from cmosynth.extract.sentences import STRUCTURED_HEADINGS
from cmosynth.files import atomic_write, read_csv_rows

#: Quotes of one record this alike (rapidfuzz ratio) are one piece of evidence, shown once:
#: the same sentence in the abstract and the full text, or a clause and its sentence.
NEAR_DUPLICATE = 92
#: Rows shown per theory in the HTML; every row is in report/cmoc_table.csv and the workbook.
ROWS_SHOWN = 8
TABLE_COLUMNS = ("theory_id", "theory", "status", "counted", "record_id", "citation",
                 "pubmed", "doi", "context", "context_quote", "mechanism", "mechanism_quote",
                 "outcome", "outcome_quote", "confidence", "weight", "coded_by", "signals")

_HEADING_WORDS = "|".join(re.escape(h) for h in STRUCTURED_HEADINGS + ("Approach",))
#: A structured-abstract heading left at either end of a quote ("…academia.Approach.").
_EDGE_LABEL = re.compile(rf"^(?:{_HEADING_WORDS})[:.]\s*|(?<=[.!?])\s*(?:{_HEADING_WORDS})[:.]?$",
                         re.IGNORECASE)


def display_quote(quote: str) -> str:
    """The quote as the report shows it: a section heading glued to either end is left
    out (it names where the sentence stands, not what it says)."""
    previous = None
    while previous != quote:
        previous, quote = quote, _EDGE_LABEL.sub("", quote).strip()
    return quote



def labels(ids: str, codebook: Codebook | None) -> list[str]:
    """Concept labels for a `;`-joined list of ids (an unknown id is shown as it is)."""
    known = codebook.concepts_by_id if codebook else {}
    return [known[i].label if i in known else i for i in ids.split(";") if i]


def record_links(record: dict | None) -> dict:
    """PubMed and DOI addresses of a record, where it has them."""
    record = record or {}
    return {"pubmed": f"https://pubmed.ncbi.nlm.nih.gov/{record['pmid']}/"
                      if record.get("pmid") else "",
            "doi": f"https://doi.org/{record['doi']}" if record.get("doi") else ""}


def coded_by(method: str) -> str:
    parts = method.split("+")
    if parts == ["reviewer"]:
        return "reviewer"
    return "machine, checked in part by a reviewer" if "reviewer" in parts else "machine"


def _merged(rows: list[dict]) -> list[dict]:
    """Rows of one theory less near-duplicates: within a record, a row whose quotes read
    the same as a stronger row's is left out."""
    kept: list[dict] = []
    for row in sorted(rows, key=lambda r: (-float(r["weight"]), r["record_id"], r["cmoc_id"])):
        text = " ".join(row[f"{role}_quote"] for role in ROLES)
        if not any(k["record_id"] == row["record_id"]
                   and fuzz.ratio(text, " ".join(k[f"{r}_quote"] for r in ROLES)) >= NEAR_DUPLICATE
                   for k in kept):
            kept.append(row)
    return kept


def theory_tables(topic_dir: Path, codebook: Codebook | None, records: dict[str, dict],
                  cite) -> dict[str, list[dict]]:
    """Per theory id, its CMOC rows for the report (counted ones first, strongest first;
    off-topic ones after, marked), near-duplicates merged."""
    cmocs = {row["cmoc_id"]: row for row in read_csv_rows(topic_dir / "extract" / "cmo.csv")}
    by_theory: dict[str, list[dict]] = {}
    for link in read_csv_rows(topic_dir / "synthesis" / "theory_evidence.csv"):
        cmoc = cmocs.get(link["cmoc_id"])
        if cmoc is None:
            continue
        record = records.get(link["record_id"])
        row = {"cmoc_id": link["cmoc_id"], "record_id": link["record_id"],
               "citation": cite(record, link["record_id"]), **record_links(record),
               "confidence": cmoc["confidence"], "weight": link["weight"],
               "counted": link["counted"] == "yes", "signals": link["signals"],
               "coded_by": coded_by(cmoc.get("method", ""))}
        for role in ROLES:
            row[role] = labels(cmoc[role], codebook)
            row[f"{role}_quote"] = display_quote(cmoc[f"{role}_quote"])
        by_theory.setdefault(link["theory_id"], []).append(row)
    return {theory: _merged([r for r in rows if r["counted"]])
            + _merged([r for r in rows if not r["counted"]])
            for theory, rows in by_theory.items()}


def write_cmoc_table(path: Path, theories: Iterable[dict], tables: dict[str, list[dict]]) -> int:
    """report/cmoc_table.csv: every theory's rows, as the report shows them."""
    count = 0
    with atomic_write(path, newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(TABLE_COLUMNS)
        for theory in theories:
            for row in tables.get(theory["theory_id"], []):
                writer.writerow([
                    theory["theory_id"], theory["label"], theory["status"],
                    "yes" if row["counted"] else "no (record off the topic)", row["record_id"],
                    row["citation"], row["pubmed"], row["doi"],
                    *(value for role in ROLES
                      for value in ("; ".join(row[role]), row[f"{role}_quote"])),
                    row["confidence"], row["weight"], row["coded_by"], row["signals"]])
                count += 1
    return count


def heatmap(topic_dir: Path, codebook: Codebook | None) -> dict | None:
    """The mechanism-by-outcome matrix (distinct records per cell) by labels, the rows and
    columns with any record only, each cell with a shade from 0 to 1; None when empty."""
    rows = read_csv_rows(topic_dir / "synthesis" / "matrix.csv")
    if not rows:
        return None
    outcomes = [c for c in rows[0] if c not in ("mechanism", "label", "kind")]
    cells = {(r["mechanism"], o): int(r[o] or 0) for r in rows for o in outcomes}
    mechanisms = [r["mechanism"] for r in rows if any(cells[(r["mechanism"], o)] for o in outcomes)]
    outcomes = [o for o in outcomes if any(cells[(m, o)] for m in mechanisms)]
    if not mechanisms:
        return None
    top = max(cells[(m, o)] for m in mechanisms for o in outcomes)
    name = (lambda i: labels(i, codebook)[0])
    return {"outcomes": [name(o) for o in outcomes],
            "rows": [{"mechanism": name(m),
                      "cells": [{"n": cells[(m, o)], "shade": round(cells[(m, o)] / top, 2)}
                                for o in outcomes]} for m in mechanisms]}
