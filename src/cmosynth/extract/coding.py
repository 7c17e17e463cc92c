"""Reviewer coding: sentence roles a reviewer has checked, in CSV files the reviewer owns.

The pipeline reads them and never writes them. A reviewer copies the rows of
`extract/sentences.csv` they have checked into a file of their own and corrects the
`roles` cell: roles among context, mechanism and outcome, separated by `;` (or `,`),
empty or `none` for none. Columns `record_id`, `sentence` and `roles` are needed;
`text`, when present, is compared with the sentence as it is now, so that a row whose
record has changed since (a corrected abstract, a full text added) is not applied to
another sentence. Other columns are ignored. A later row for the same sentence replaces
an earlier one, and files are read in the order given.

Extraction then gives those sentences exactly the reviewer's roles (method `reviewer`),
and the role model learns from them beside the project's labelled abstracts, so the rest
of the review is coded more like the reviewer codes: `bench/extract.py` measures that
on abstracts nothing was tuned on.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cmosynth.errors import InputError
from cmosynth.extract.codebook import ROLES
from cmosynth.files import read_reviewer_csv

log = logging.getLogger("cmosynth.extract.coding")

REVIEWER_METHOD = "reviewer"
REQUIRED_COLUMNS = ("record_id", "sentence", "roles")


@dataclass(frozen=True)
class CodedByReviewer:
    """A reviewer's roles for one sentence, with where they were read from."""

    record_id: str
    sentence: int           # the sentence's number in sentences.csv (1, 2, ...)
    roles: frozenset[str]
    text: str | None        # the sentence as the reviewer saw it, if the file has `text`
    path: str
    line: int

    def matches(self, text: str) -> bool:
        """Whether the sentence is still the one the reviewer coded."""
        return self.text is None or _normalised(self.text) == _normalised(text)


def parse_roles(value: str, path: Path, line: int) -> frozenset[str]:
    """The roles of a `roles` cell ('context;outcome', 'none', empty)."""
    words = [w for w in re.split(r"[;,\s]+", value.strip().lower()) if w]
    if not words or words == ["none"] or words == ["-"]:
        return frozenset()
    unknown = [w for w in words if w not in ROLES]
    if unknown:
        raise InputError(path, f"role {unknown[0]!r} is not one of {', '.join(ROLES)} "
                               "(separate roles with ';', leave empty for none)", line=line)
    return frozenset(words)


def read_coding_file(path: str | Path) -> list[CodedByReviewer]:
    """The rows of one reviewer coding file, in file order."""
    path = Path(path)
    rows = []
    for line, row in read_reviewer_csv(
            path, REQUIRED_COLUMNS,
            not_found="reviewer coding file not found; check extract.coding in the topic file",
            header="copy rows with the header of extract/sentences.csv"):
        record_id, number = row["record_id"], row["sentence"]
        if not record_id and not number:
            continue
        if not number.isdigit() or int(number) < 1:
            raise InputError(path, f"sentence {number!r} must be the sentence's number in "
                                   "extract/sentences.csv (1, 2, ...)", line=line)
        rows.append(CodedByReviewer(record_id, int(number), parse_roles(row["roles"], path, line),
                                    row.get("text"), str(path), line))
    return rows


def read_coding(paths: Iterable[str | Path]) -> dict[tuple[str, int], CodedByReviewer]:
    """(record_id, sentence number) -> the reviewer's last coding of that sentence."""
    coding: dict[tuple[str, int], CodedByReviewer] = {}
    for path in paths:
        for row in read_coding_file(path):
            coding[(row.record_id, row.sentence)] = row
    return coding


def match_coding(texts: Iterable[tuple[str, str]],
                 coding: dict[tuple[str, int], CodedByReviewer]) -> list[frozenset[str] | None]:
    """The reviewer's roles of each sentence, given as (record_id, text) in the order of
    sentences.csv (each record's sentences together, numbered from 1), None where the
    reviewer has not coded it. Rows naming a sentence that is not there, or no longer
    the one the reviewer saw, are left out with a warning."""
    numbers: dict[str, int] = {}
    matched: list[frozenset[str] | None] = []
    used: set[tuple[str, int]] = set()
    for record_id, text in texts:
        numbers[record_id] = numbers.get(record_id, 0) + 1
        row = coding.get((record_id, numbers[record_id]))
        if row is not None and not row.matches(text):
            log.warning("%s:%d: sentence %d of %s now reads %r, not what was coded; "
                        "copy its row again from extract/sentences.csv", row.path, row.line,
                        row.sentence, record_id, _shorten(text))
            row = None
        if row is not None:
            used.add((record_id, row.sentence))
        matched.append(row.roles if row is not None else None)
    unused = [row for key, row in coding.items() if key not in used
              and (key[0] not in numbers or key[1] > numbers[key[0]])]
    if unused:
        log.warning("%d coded sentence(s) are not among the records extracted (e.g. %s:%d, "
                    "%s sentence %d); left out", len(unused), unused[0].path, unused[0].line,
                    unused[0].record_id, unused[0].sentence)
    log.info("reviewer coding applied to %d sentence(s) of %d record(s)", len(used),
             len({key[0] for key in used}))
    return matched


def _shorten(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[:width - 3] + "..."


def _normalised(text: str) -> str:
    return " ".join(text.split())
