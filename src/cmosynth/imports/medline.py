"""PubMed's MEDLINE text format (`.nbib`, "PubMed" format `.txt`), read with Bio.Medline.

Bio.Medline accepts any text without complaint, so the file's structure is checked
first: every line is a tag (`TI  - `), a continuation (six spaces) or blank, and every
record has a PMID. Faults are InputErrors naming the line.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

from Bio import Medline

from cmosynth.errors import InputError
from cmosynth.imports.registry import Format, register
from cmosynth.imports.text import clean, clean_list, find_doi, parse_year, read_text
from cmosynth.records import new_record

_TAG_LINE = re.compile(r"^[A-Z][A-Z0-9 ]{3}- ")
_CONTINUATION = "      "


def record_start_lines(text: str, path: Path) -> list[int]:
    """Line numbers where records start; a line that is neither tag nor continuation is
    an InputError, since Bio.Medline would silently make a field of it."""
    starts: list[int] = []
    in_record = False
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            in_record = False
        elif _TAG_LINE.match(line):
            if not in_record:
                starts.append(number)
                in_record = True
        elif not (in_record and line.startswith(_CONTINUATION)):
            raise InputError(path, "not MEDLINE format: expected a tag such as 'TI  - ' or "
                                   "a continuation line indented by six spaces", line=number)
    return starts


def record_from_medline(fields: dict, source: str) -> dict:
    """One Bio.Medline record as a contract record."""
    pmid = clean(fields.get("PMID"))
    return new_record(
        source,
        source_id=pmid,
        pmid=pmid,
        pmcid=clean(fields.get("PMC")),
        doi=_doi(fields),
        title=clean(fields.get("TI")) or _joined(fields.get("BTI")),
        abstract=clean(fields.get("AB")),
        authors=clean_list(fields.get("FAU") or fields.get("AU") or []),
        journal=clean(fields.get("JT") or fields.get("TA")),
        year=parse_year(fields.get("DP")),
        pub_date=clean(fields.get("DP")),
        entrez_date=_iso_date(fields.get("EDAT")),
        volume=clean(fields.get("VI")),
        issue=clean(fields.get("IP")),
        pages=clean(fields.get("PG")),
        mesh=clean_list(term.replace("*", "") for term in fields.get("MH", [])),
        keywords=clean_list(fields.get("OT", [])),
        publication_types=clean_list(fields.get("PT", [])),
        language=clean((fields.get("LA") or [None])[0]),
    )


def _joined(value: str | list[str] | None) -> str | None:
    """A field Bio.Medline keeps as a list of lines (book titles, `BTI`), as one value."""
    return clean(" ".join(value) if isinstance(value, list) else value)


def _doi(fields: dict) -> str | None:
    """The identifier marked `[doi]` in LID or AID."""
    ids = [fields.get("LID", ""), *fields.get("AID", [])]
    return find_doi(*(value for value in ids if value and value.endswith("[doi]")))


def _iso_date(value: str | None) -> str | None:
    """`2002/09/17 10:00` -> `2002-09-17`."""
    match = re.match(r"(\d{4})/(\d{2})/(\d{2})", value or "")
    return "-".join(match.groups()) if match else None


def read_medline(path: Path, source: str) -> Iterator[dict]:
    # Whitespace-only lines end a record for both the check and Bio.Medline.
    text = "\n".join(line if line.strip() else "" for line in read_text(path).split("\n"))
    starts = record_start_lines(text, path)
    for line, fields in zip(starts, Medline.parse(io.StringIO(text)), strict=True):
        pmid = clean(fields.get("PMID"))
        if not pmid:
            raise InputError(path, "MEDLINE record without a 'PMID- ' line; export in "
                                   "PubMed format again", line=line)
        if not re.fullmatch(r"[0-9]+", pmid):
            raise InputError(path, f"PMID {pmid[:20]!r} is not a number (one 'PMID- ' line "
                                   "a record); export in PubMed format again", line=line)
        yield record_from_medline(fields, source)


def _looks_like_medline(head: str) -> bool:
    return re.search(r"^PMID- ", head, re.MULTILINE) is not None


register(Format("nbib", (".nbib", ".txt", ".medline"), _looks_like_medline, read=read_medline))
