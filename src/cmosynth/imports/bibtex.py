"""BibTeX (`.bib`) from reference managers and Google Scholar, read with bibtexparser 2.

LaTeX markup (`{\\"o}`, `\\&`, `--`) is decoded to Unicode with bibtexparser's own
LatexDecodingMiddleware, but only in the fields a record uses and only where markup is
present: decoding every field of a 2 MB library takes ten seconds, this a tenth of one.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import bibtexparser
from bibtexparser.library import Library
from bibtexparser.middlewares import LatexDecodingMiddleware, RemoveEnclosingMiddleware
from bibtexparser.middlewares.names import split_multiple_persons_names
from bibtexparser.model import DuplicateFieldKeyBlock, Entry, Field, ParsingFailedBlock

from cmosynth.errors import InputError
from cmosynth.imports.registry import Format, register
from cmosynth.imports.text import (clean, clean_list, find_doi, parse_pmid, parse_year,
                                   read_text, split_keywords)
from cmosynth.records import new_record

log = logging.getLogger("cmosynth.imports.bibtex")

#: Fields shown to people, where LaTeX markup is decoded.
TEXT_FIELDS = ("title", "author", "editor", "journal", "journaltitle", "booktitle",
               "abstract", "keywords", "language")
_MARKUP = re.compile(r"[\\{}$~]")


def parse_bibtex_entries(text: str, path: Path) -> list[Entry]:
    """Entries of a BibTeX library; a syntax error is an InputError naming its line."""
    with _quiet_bibtexparser():
        library = bibtexparser.parse_string(text)
    entries = list(library.entries)
    for block in library.failed_blocks:
        line = block.start_line + 1
        if isinstance(block, DuplicateFieldKeyBlock):
            # JabRef and hand edits leave repeated fields; keep the entry as bibtexparser
            # resolves it rather than lose the record.
            log.warning("%s:%d: entry %s repeats a field; the last value is kept",
                        path, line, block.key)
            entry = RemoveEnclosingMiddleware().transform_entry(block.ignore_error_block,
                                                                library)
            entries.append(entry)
        elif isinstance(block, ParsingFailedBlock):
            reason = clean(getattr(block.error, "abort_reason", None)) or "syntax error"
            raise InputError(path, f"BibTeX syntax error in the entry starting here "
                                   f"({reason}); check its braces and commas", line=line)
    if not entries and text.strip():
        raise InputError(path, "holds no records: no BibTeX entry such as '@article{key, "
                               "...}'; check the export (is it the right file and format?)",
                         line=1)
    return sorted(entries, key=lambda entry: entry.start_line)


@contextlib.contextmanager
def _quiet_bibtexparser() -> Iterator[None]:
    """bibtexparser logs each broken block on its own; we report it as an InputError."""
    parser_log = logging.getLogger("bibtexparser")
    level = parser_log.level
    parser_log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        parser_log.setLevel(level)


def decoded_fields(entry: Entry, library: Library) -> tuple[dict[str, str], list[str]]:
    """Field name (lower case) -> value, and the authors (split at BibTeX's top-level
    ` and `, so a braced `{Health and Care Board}` stays one), LaTeX decoded."""
    fields = {f.key.lower(): str(f.value) for f in entry.fields}
    people = split_multiple_persons_names(fields.get("author") or fields.get("editor") or "")
    marked = [Field(name, fields[name]) for name in TEXT_FIELDS
              if name in fields and _MARKUP.search(fields[name])]
    marked += [Field(f"person {i}", name) for i, name in enumerate(people)
               if _MARKUP.search(name)]
    if marked:
        decoded = LatexDecodingMiddleware().transform_entry(
            Entry(entry.entry_type, entry.key, marked), library)
        for field in decoded.fields:
            if field.key.startswith("person "):
                people[int(field.key.split()[1])] = str(field.value)
            else:
                fields[field.key] = str(field.value)
    return fields, clean_list(people)


def record_from_bibtex(entry: Entry, fields: dict[str, str], authors: list[str], number: int,
                       source: str) -> dict:
    """One BibTeX entry as a contract record; the citation key (else its place in the
    file, from 1) is its source_id."""
    return new_record(
        source,
        source_id=clean(entry.key) or str(number),
        pmid=parse_pmid(fields.get("pmid")),
        pmcid=clean(fields.get("pmcid")),
        doi=find_doi(fields.get("doi"), fields.get("url")),
        title=clean(fields.get("title")),
        abstract=clean(fields.get("abstract")),
        authors=authors,
        journal=clean(fields.get("journal") or fields.get("journaltitle")
                      or fields.get("booktitle")),
        year=parse_year(fields.get("year") or fields.get("date")),
        pub_date=clean(fields.get("date") or fields.get("year")),
        volume=clean(fields.get("volume")),
        issue=clean(fields.get("number") or fields.get("issue")),
        pages=_pages(fields.get("pages")),
        keywords=split_keywords(fields.get("keywords")),
        language=clean(fields.get("language")),
    )


def _pages(value: str | None) -> str | None:
    """BibTeX writes page ranges with an en-dash `--`; records use `-`."""
    return clean(re.sub(r"\s*-{1,3}\s*|\s*\u2013\s*", "-", value)) if value else None


def read_bibtex(path: Path, source: str) -> Iterator[dict]:
    text = read_text(path)
    library = Library()
    for number, entry in enumerate(parse_bibtex_entries(text, path), start=1):
        fields, authors = decoded_fields(entry, library)
        yield record_from_bibtex(entry, fields, authors, number, source)


def _looks_like_bibtex(head: str) -> bool:
    return re.search(r"^\s*@\w+\s*[{(]", head, re.MULTILINE) is not None


register(Format("bibtex", (".bib", ".bibtex"), _looks_like_bibtex, read=read_bibtex))
