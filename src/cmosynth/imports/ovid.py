"""Ovid's own tagged export (Ovid MEDLINE, Embase, PsycINFO on Ovid; the files Ovid
names `.cgi` or `.ovd` when "EndNote" or "Citavi" export is chosen).

Unlike RIS, a record starts with a `<12. >` line and has no end tag; values run on over
untagged lines. Ovid's `UI` is the PMID in Ovid MEDLINE but Embase's own accession
number in Embase, so it is read as a PMID only where the database is MEDLINE.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from cmosynth.errors import InputError
from cmosynth.imports.registry import Format, register
from cmosynth.imports.ris import RisEntry
from cmosynth.imports.text import (clean, clean_list, each_keyword, find_doi, parse_year,
                                   pmid_from_accession, read_text)
from cmosynth.records import new_record

_RECORD_START = re.compile(r"^<(\d+)\.\s*>\s*$")
_TAG_LINE = re.compile(r"^([A-Z][A-Z0-9]{1,3}) +- ?(.*)$")


def parse_ovid_entries(text: str, path: Path) -> Iterator[RisEntry]:
    """Yield each `<n. >` record with its tags; a tag before any record is an InputError."""
    entry: RisEntry | None = None
    last_tag: str | None = None
    for number, line in enumerate(text.split("\n"), start=1):
        if _RECORD_START.match(line):
            if entry is not None:
                yield entry
            entry, last_tag = RisEntry(number), None
            continue
        match = _TAG_LINE.match(line)
        if match and entry is None:
            raise InputError(path, "Ovid field outside a record; every record starts with a "
                                   "line such as '<1. >'", line=number)
        if match:
            last_tag = match.group(1)
            entry.add(last_tag, match.group(2).strip())
        elif entry is not None and last_tag and line.strip():
            entry.extend_last(last_tag, line.strip())
    if entry is None and text.strip():
        raise InputError(path, "holds no records: no line such as '<1. >' starts a record; "
                               "check the export (is it the right file and format?)", line=1)
    if entry is not None:
        yield entry


def record_from_ovid(entry: RisEntry, number: int, source: str) -> dict:
    """One Ovid record as a contract record; Ovid's unique identifier `UI` is its source_id."""
    database = entry.first("DB") or ""
    is_medline = re.search(r"medline|pubmed", database, re.IGNORECASE) is not None
    subject_terms = clean_list(term.replace("*", "") for term in entry.all("MH"))
    return new_record(
        source,
        source_id=entry.first("UI", "AN") or str(number),
        pmid=pmid_from_accession(entry.first("UI"), database) if is_medline else None,
        doi=find_doi(*entry.all("DO"), *entry.all("UR")),
        title=entry.first("TI"),
        abstract=clean(" ".join(entry.all("AB"))),
        authors=clean_list(entry.all("FA")) or clean_list(entry.all("AU")),
        journal=entry.first("JT", "JN", "JA", "TA") or _journal_from_source(entry.first("SO")),
        year=parse_year(entry.first("YR", "DP", "PY")),
        pub_date=entry.first("DP", "YR", "PY"),
        volume=entry.first("VI", "VO"),
        issue=entry.first("IP"),
        pages=entry.first("PG"),
        mesh=subject_terms if is_medline else [],
        keywords=each_keyword(entry.all("KW")) + ([] if is_medline else subject_terms),
        publication_types=clean_list(entry.all("PT")),
        language=entry.first("LG", "LA"),
    )


def _journal_from_source(source: str | None) -> str | None:
    """Embase puts the journal first in SO: `BMC Proceedings. Conference: ... 2018.`"""
    return clean(source.split(". ", 1)[0]) if source else None


def read_ovid(path: Path, source: str) -> Iterator[dict]:
    for number, entry in enumerate(parse_ovid_entries(read_text(path), path), start=1):
        yield record_from_ovid(entry, number, source)


def _looks_like_ovid(head: str) -> bool:
    return (re.search(r"^<\d+\.\s*>\s*$", head, re.MULTILINE) is not None
            and re.search(r"^(VN|DB|UI) +- ", head, re.MULTILINE) is not None)


register(Format("ovid", (".ovd", ".cgi", ".txt"), _looks_like_ovid, read=read_ovid))
