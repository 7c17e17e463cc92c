"""Web of Science plain-text exports ("Other reference software", `.txt`/`.ciw`).

Two-letter tags followed by one space; continuation lines are indented by three spaces
and hold the next item of a list field (AU, AF, C1) or the rest of a text field. A
record runs from `PT` to `ER`; the file is framed by `FN`/`VR` and `EF`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from cmosynth.errors import InputError
from cmosynth.imports.registry import Format, register
from cmosynth.imports.ris import RisEntry
from cmosynth.imports.text import (clean, clean_list, find_doi, join_pages, parse_pmid,
                                   parse_year, read_text, split_keywords)
from cmosynth.records import new_record

_TAG_LINE = re.compile(r"^([A-Z][A-Z0-9])(?: (.*))?$")
#: Fields whose continuation lines are further items rather than more text.
LIST_TAGS = {"AU", "AF", "BA", "BF", "CA", "GP", "ED", "C1", "CR"}
_FILE_TAGS = {"FN", "VR", "EF"}


def parse_wos_entries(text: str, path: Path) -> Iterator[RisEntry]:
    """Yield each PT ... ER record; structural faults raise InputError with the line."""
    entry: RisEntry | None = None
    last_tag: str | None = None
    for number, line in enumerate(text.split("\n"), start=1):
        if line.startswith("   ") and entry is not None and last_tag:
            if last_tag in LIST_TAGS:
                entry.add(last_tag, line.strip())
            else:
                entry.extend_last(last_tag, line.strip())
            continue
        match = _TAG_LINE.match(line.rstrip())
        if not match or match.group(1) in _FILE_TAGS:
            continue
        tag, value = match.group(1), (match.group(2) or "").strip()
        if tag == "PT":
            if entry is not None:
                raise InputError(path, f"a new record starts here but the record from line "
                                       f"{entry.line} has no 'ER' line", line=number)
            entry, last_tag = RisEntry(number), None
        elif entry is None:
            raise InputError(path, f"tag {tag} outside a record; every Web of Science record "
                                   "starts with 'PT' and ends with 'ER'", line=number)
        elif tag == "ER":
            yield entry
            entry, last_tag = None, None
            continue
        entry.add(tag, value)
        last_tag = tag
    if entry is not None:
        raise InputError(path, "this record has no 'ER' line: the file is cut short",
                         line=entry.line)


def record_from_wos(entry: RisEntry, number: int, source: str) -> dict:
    """One Web of Science record; its accession number `UT` (WOS:...) is its source_id."""
    return new_record(
        source,
        source_id=entry.first("UT") or str(number),
        pmid=parse_pmid(entry.first("PM")),
        doi=find_doi(entry.first("DI"), entry.first("DL")),
        title=entry.first("TI"),
        abstract=entry.first("AB"),
        authors=clean_list(entry.all("AF")) or clean_list(entry.all("AU")),
        journal=entry.first("SO"),
        year=parse_year(entry.first("PY", "EA")),
        pub_date=clean(" ".join(filter(None, (entry.first("PY"), entry.first("PD"))))),
        volume=entry.first("VL"),
        issue=entry.first("IS"),
        pages=join_pages(entry.first("BP"), entry.first("EP")) or entry.first("AR"),
        keywords=clean_list([*split_keywords(entry.first("DE")),
                             *split_keywords(entry.first("ID"))]),
        publication_types=split_keywords(entry.first("DT")),
        language=entry.first("LA"),
    )


def read_wos(path: Path, source: str) -> Iterator[dict]:
    for number, entry in enumerate(parse_wos_entries(read_text(path), path), start=1):
        yield record_from_wos(entry, number, source)


def _looks_like_wos(head: str) -> bool:
    return (re.search(r"^FN .*(Web of Science|Clarivate|Thomson)", head, re.MULTILINE)
            is not None or re.search(r"^PT [A-Z]\s*\n(?:AU|TI|AF) ", head, re.MULTILINE)
            is not None)


register(Format("wos", (".ciw", ".txt"), _looks_like_wos, read=read_wos))
