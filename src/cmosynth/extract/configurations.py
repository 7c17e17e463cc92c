"""CMOCs a reviewer linked by hand (topic `extract.configurations`), read, never written.

A row names a record, the reviewer's own label for the configuration (`cmoc`), the
sentence of the record that gives each element (its number in extract/sentences.csv), the
codebook concepts of each element, the programme theory and a one-line summary. A record
with any such row has exactly the reviewers' configurations: they replace the coder's
links for that record, so that a reviewer who has worked through a record is not second-
guessed by the machine. Quotes are the sentences' own text, so they stay verbatim.
A reviewer's later row with the same record and label replaces their earlier one, and a
row whose three sentence cells are all empty withdraws the configuration.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cmosynth.errors import InputError
from cmosynth.extract.codebook import ROLES, Codebook
from cmosynth.files import read_reviewer_csv

REQUIRED_COLUMNS = ("record_id", "cmoc")
REVIEWER_METHOD = "reviewer"


@dataclass(frozen=True)
class ReviewerConfiguration:
    """One CMOC a reviewer linked: per role the sentence number and concept ids."""

    record_id: str
    label: str
    sentences: Mapping[str, int]                # role -> sentence number
    concepts: Mapping[str, tuple[str, ...]]     # role -> concept ids
    theory_id: str
    summary: str
    reviewer: str
    path: str
    line: int


def _ids(value: str) -> tuple[str, ...]:
    return tuple(w for w in re.split(r"[;,\s]+", value.strip()) if w)


def read_configuration_file(path: str | Path, codebook: Codebook) -> list[ReviewerConfiguration]:
    """The rows of one file, in file order; withdrawn ones (no sentence) included
    (`read_configurations` keeps a reviewer's later row for a record and label)."""
    path = Path(path)
    known = set(codebook.concepts_by_id)
    theories = {t.id for t in codebook.theories}
    rows = []
    for line, row in read_reviewer_csv(
            path, REQUIRED_COLUMNS,
            not_found="reviewer configurations file not found; check extract.configurations "
                      "in the topic file",
            header="the header must be record_id,cmoc,theory_id,context_sentence,"
                   "mechanism_sentence,outcome_sentence,context,mechanism,outcome,summary"):
        if not row["record_id"] and not row["cmoc"]:
            continue
        if not row["record_id"]:
            raise InputError(path, f"configuration {row['cmoc']!r} has no record_id; name the "
                                   "record it was linked in", line=line)
        sentences, concepts = {}, {}
        for role in ROLES:
            number = row.get(f"{role}_sentence", "")
            if number:
                if not re.fullmatch(r"[0-9]+", number) or int(number) < 1:
                    raise InputError(path, f"{role}_sentence {number!r} must be a sentence "
                                           "number of extract/sentences.csv", line=line)
                sentences[role] = int(number)
            ids = _ids(row.get(role, ""))
            unknown = [c for c in ids if c not in known]
            if unknown:
                raise InputError(path, f"concept {unknown[0]!r} is not in the codebook",
                                 line=line)
            concepts[role] = ids
        theory = row.get("theory_id", "")
        if theory and theory not in theories:
            raise InputError(path, f"theory_id {theory!r} is not a programme theory of the "
                                   "codebook", line=line)
        if len(sentences) == 1:
            raise InputError(path, "a configuration needs at least two of context, "
                                   "mechanism and outcome", line=line)
        rows.append(ReviewerConfiguration(row["record_id"], row["cmoc"], sentences, concepts,
                                          theory, row.get("summary", ""),
                                          row.get("reviewer") or path.stem, str(path), line))
    return rows


def read_configurations(paths: Iterable[str | Path], codebook: Codebook
                        ) -> dict[str, list[ReviewerConfiguration]]:
    """record_id -> the reviewers' configurations in force (last row per reviewer and
    label; withdrawn ones left out), in the order first written."""
    latest: dict[tuple[str, str, str], ReviewerConfiguration] = {}
    for path in paths:
        for row in read_configuration_file(path, codebook):
            latest[(row.record_id, row.reviewer, row.label)] = row
    by_record: dict[str, list[ReviewerConfiguration]] = {}
    for row in latest.values():
        by_record.setdefault(row.record_id, [])
        if row.sentences:
            by_record[row.record_id].append(row)
    return by_record


def configuration_rows(record: dict, configurations: Sequence[ReviewerConfiguration],
                       sentences: Sequence[Mapping[str, object]]) -> list[dict]:
    """CMO table rows (cmoc_id numbered later) of a record's reviewer configurations;
    `sentences` are the record's rows of the sentence table, numbered from 1. A row
    naming a sentence the record does not have stops the run, naming the row."""
    rows = []
    for configuration in configurations:
        row = {"cmoc_id": "", "record_id": record["record_id"],
               "pmid": record.get("pmid") or "", "doi": record.get("doi") or "",
               "theory_id": configuration.theory_id}
        sections = []
        for role in ROLES:
            number = configuration.sentences.get(role)
            if number is not None and not 1 <= number <= len(sentences):
                raise InputError(configuration.path, f"{role}_sentence {number}: record "
                                 f"{record['record_id']} has {len(sentences)} sentences",
                                 line=configuration.line)
            row[role] = ";".join(configuration.concepts.get(role, ())) if number else ""
            row[f"{role}_quote"] = sentences[number - 1]["text"] if number else ""
            if number:
                sections.append(str(sentences[number - 1]["section"]))
        row.update(section=sections[0] if len(set(sections)) == 1 else ";".join(
                       dict.fromkeys(sections)),
                   confidence="1.000", method=REVIEWER_METHOD, summary=configuration.summary)
        rows.append(row)
    return rows
