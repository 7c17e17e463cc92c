"""RIS (Research Information Systems) exports: PubMed, Ovid MEDLINE/Embase, Scopus, Web of
Science, EBSCO, reference managers; and the RIS we export for them.

The reader is tolerant of what databases actually write: alternative tags (TI/T1/CT/BT,
AU/A1/A2, PY/Y1/DA, JO/JF/T2/JA/J2, AB/N2), values continued on untagged lines, blank
lines, `ER  -` with or without a trailing space, DOIs hidden in UR/M3/L2. It is strict
about structure: a record that never ends, or a tag outside a record, is an InputError
naming the line. (rispy was tried first: it silently merges a record that lacks `ER`
into the next one, drops an unterminated last record and reports no line numbers.)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cmosynth.errors import InputError
from cmosynth.files import atomic_write
from cmosynth.imports.registry import Format, register
from cmosynth.imports.text import (clean, clean_list, each_keyword, find_doi, join_pages,
                                   parse_year, pmid_from_accession, read_text)
from cmosynth.records import new_record

#: `TY  - JOUR`; one or two spaces before the dash, value optional (`ER  -`).
_TAG_LINE = re.compile(r"^([A-Z][A-Z0-9]) {1,2}-(?: (.*)|\s*)$")

TITLE_TAGS = ("TI", "T1", "CT", "BT")
AUTHOR_TAGS = ("AU", "A1")
SECONDARY_AUTHOR_TAGS = ("A2",)
YEAR_TAGS = ("PY", "Y1", "DA")
JOURNAL_TAGS = ("JO", "JF", "T2", "JA", "J2")
ABSTRACT_TAGS = ("AB", "N2")
#: Fields where exports hide a DOI when DO is missing (Ovid's M3 and L2, Scopus's UR).
DOI_FALLBACK_TAGS = ("UR", "M3", "L2", "N1", "LK")
#: Screening decisions as the N1 notes ASReview LAB reads back as labels.
ASREVIEW_LABELS = {"include": "ASReview_relevant", "exclude": "ASReview_irrelevant"}


@dataclass
class RisEntry:
    """The tagged values of one record, with the line it starts on (for errors)."""

    line: int
    tags: dict[str, list[str]] = field(default_factory=dict)

    def add(self, tag: str, value: str) -> None:
        self.tags.setdefault(tag, []).append(value)

    def extend_last(self, tag: str, text: str) -> None:
        """A continuation line belongs to the value above it."""
        values = self.tags[tag]
        values[-1] = f"{values[-1]} {text}".strip()

    def first(self, *tags: str) -> str | None:
        for tag in tags:
            for value in self.tags.get(tag, ()):
                if clean(value):
                    return clean(value)
        return None

    def all(self, *tags: str) -> list[str]:
        return [value for tag in tags for value in self.tags.get(tag, ())]


def parse_ris_entries(text: str, path: Path) -> Iterator[RisEntry]:
    """Yield each TY ... ER record; structural faults raise InputError with the line."""
    entry: RisEntry | None = None
    last_tag: str | None = None
    found = False
    for number, line in enumerate(text.split("\n"), start=1):
        match = _TAG_LINE.match(line)
        if match is None:
            if entry is not None and last_tag and line.strip():
                entry.extend_last(last_tag, line.strip())
            continue
        tag, value = match.group(1), (match.group(2) or "").strip()
        if tag == "TY":
            if entry is not None:
                raise InputError(path, f"a new record starts here but the record from line "
                                       f"{entry.line} has no 'ER  -' line; add it", line=number)
            entry, last_tag = RisEntry(number), None
            entry.add("TY", value)
        elif entry is None:
            raise InputError(path, f"tag {tag} outside a record; every record starts with "
                                   "'TY  - ' and ends with 'ER  -'", line=number)
        elif tag == "ER":
            yield entry
            entry, last_tag, found = None, None, True
        else:
            entry.add(tag, value)
            last_tag = tag
    if entry is not None:
        raise InputError(path, "this record has no 'ER  -' line: the file is cut short or "
                               "the export is incomplete", line=entry.line)
    if not found and text.strip():
        raise InputError(path, "holds no records: no line starts with 'TY  - '; check the "
                               "export (is it the right file and format?)", line=1)


def record_from_ris(entry: RisEntry, number: int, source: str) -> dict:
    """Turn one RIS entry into a record; `number` is its 1-based place in the file."""
    database = entry.first("DB", "DP")
    doi = find_doi(*entry.all("DO")) or find_doi(*entry.all(*DOI_FALLBACK_TAGS))
    pub_type = entry.first("M3")
    return new_record(
        source,
        source_id=entry.first("ID") or str(number),
        pmid=next(filter(None, (pmid_from_accession(v, database) for v in entry.all("AN"))),
                  None),
        doi=doi,
        title=entry.first(*TITLE_TAGS),
        abstract=clean(" ".join(entry.all("AB"))) or entry.first("N2"),
        authors=(clean_list(entry.all(*AUTHOR_TAGS))
                 or clean_list(entry.all(*SECONDARY_AUTHOR_TAGS))),
        journal=entry.first(*JOURNAL_TAGS),
        year=next(filter(None, (parse_year(v) for v in entry.all(*YEAR_TAGS))), None),
        pub_date=_printed_date(entry.first(*YEAR_TAGS)),
        volume=entry.first("VL"),
        issue=entry.first("IS"),
        pages=join_pages(entry.first("SP"), entry.first("EP")),
        keywords=each_keyword(entry.all("KW")),
        publication_types=[pub_type] if pub_type and not find_doi(pub_type) else [],
        language=entry.first("LA"),
    )


def _printed_date(value: str | None) -> str | None:
    """RIS dates are `YYYY/MM/DD/other`; drop the empty parts (`2008//` -> `2008`)."""
    return clean(value.strip("/").replace("//", "/")) if value else None


def read_ris(path: Path, source: str) -> Iterator[dict]:
    for number, entry in enumerate(parse_ris_entries(read_text(path), path), start=1):
        yield record_from_ris(entry, number, source)


# ----------------------------------------------------------------------------- writing

def ris_lines(record: dict) -> Iterator[str]:
    """The RIS lines of one record, tags in the usual order, ending with `ER  - `."""
    def tag(name: str, value: object) -> Iterator[str]:
        text = clean(value)
        if text:
            yield f"{name}  - {text}"

    yield "TY  - JOUR"
    yield from tag("TI", record.get("title"))
    for author in record.get("authors") or ():
        yield from tag("AU", author)
    yield from tag("PY", record.get("year"))
    yield from tag("JO", record.get("journal"))
    yield from tag("VL", record.get("volume"))
    yield from tag("IS", record.get("issue"))
    start, _, end = (record.get("pages") or "").partition("-")
    yield from tag("SP", start)
    yield from tag("EP", end)
    yield from tag("DO", record.get("doi"))
    yield from tag("AB", record.get("abstract"))
    for keyword in record.get("keywords") or ():
        yield from tag("KW", keyword)
    yield from tag("LA", record.get("language"))
    yield from tag("AN", record.get("pmid"))
    yield from tag("ID", record.get("record_id"))
    yield from tag("N1", ASREVIEW_LABELS.get(str(record.get("decision") or "").lower()))
    yield "ER  - "


def write_ris(path: Path, records: Iterable[dict]) -> int:
    """Write records as RIS (UTF-8, one blank line between records); returns the count."""
    count = 0
    with atomic_write(path, newline="\n") as handle:
        for record in records:
            handle.write("\n".join(ris_lines(record)) + "\n\n")
            count += 1
    return count


def _looks_like_ris(head: str) -> bool:
    return re.search(r"^TY {1,2}- ", head, re.MULTILINE) is not None


register(Format("ris", (".ris", ".txt"), _looks_like_ris, read=read_ris, write=write_ris))
