"""Tables of records (`.csv`, `.tsv`): database and reference-manager exports, screening
datasets (ASReview, SYNERGY), and the CSV we export for ASReview and Rayyan.

Columns are found by their usual names, case-insensitively; the delimiter (comma,
semicolon or tab) is read from the header line.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from cmosynth.errors import InputError
from cmosynth.files import atomic_write
from cmosynth.imports.registry import Format, register
from cmosynth.imports.text import (clean, find_doi, parse_pmid, parse_year, read_text,
                                   split_authors, split_keywords)
from cmosynth.records import new_record

#: Record field -> column names that hold it, most specific first (compared in lower
#: case with `_` read as a space).
COLUMN_NAMES: dict[str, tuple[str, ...]] = {
    "source_id": ("record_id", "id", "key", "record id", "rec number", "covidence #", "eid",
                  "accession number"),
    "title": ("title", "primary title", "article title", "document title", "ti"),
    "authors": ("authors", "author", "author names", "first authors", "au"),
    "year": ("year", "publication year", "pubyear", "py", "publication date", "date"),
    "journal": ("journal", "source title", "secondary title", "journal title",
                "publication title", "journal/book", "jo", "t2"),
    "volume": ("volume", "vl"),
    "issue": ("number", "issue", "is"),
    "pages": ("pages", "page", "page range"),
    "page_start": ("page start", "start page", "sp"),   # Scopus, Web of Science
    "page_end": ("page end", "end page", "ep"),
    "article_number": ("art. no.", "article number", "ar"),
    "doi": ("doi", "do"),
    "pmid": ("pmid", "pubmed id", "pubmed"),
    "pmcid": ("pmcid", "pmc id"),
    "abstract": ("abstract", "abstract note", "ab"),
    "keywords": ("keywords", "author keywords", "kw"),
    "language": ("language", "language of original document", "la"),
}

#: What we write: Rayyan's CSV template columns, in its order, then the language (which
#: Rayyan's CSV importer also reads), the PubMed id and ASReview's label column (empty
#: unless a record carries a screening decision). Authors are joined by `; `, which both
#: Rayyan's importer and ours split on.
EXPORT_COLUMNS = ("key", "title", "authors", "journal", "issn", "volume", "issue", "pages",
                  "year", "publisher", "url", "abstract", "notes", "doi", "keywords",
                  "language", "pmid", "label_included")

_DELIMITERS = (",", ";", "\t")


def _column_key(name: str) -> str:
    return re.sub(r"[\s_]+", " ", name.strip().lower())


def find_columns(header: list[str], path: Path) -> dict[str, str]:
    """Record field -> the header column holding it; a table without a title column
    is an InputError, since screening needs titles."""
    by_key: dict[str, str] = {}
    for name in header:
        by_key.setdefault(_column_key(name), name)
    columns = {}
    for field_name, names in COLUMN_NAMES.items():
        found = next((by_key[n] for n in names if n in by_key), None)
        if found is not None:
            columns[field_name] = found
    if "title" not in columns:
        found = ", ".join(filter(None, (clean(name) for name in header)))
        found = found if len(found) <= 200 else found[:200] + "..."
        raise InputError(path, f"no title column (found: {found or 'none'}); name the "
                               "column of titles 'title'", line=1)
    return columns


def sniff_delimiter(header_line: str, path: Path) -> str:
    """The delimiter used most in the header line; `.tsv` files are tab-separated."""
    if path.suffix.lower() == ".tsv":
        return "\t"
    return max(_DELIMITERS, key=header_line.count)


def record_from_row(row: dict[str, str], columns: dict[str, str], number: int,
                    source: str) -> dict:
    """One table row as a record; rows without an id column are numbered from 1."""
    def cell(field_name: str) -> str | None:
        column = columns.get(field_name)
        return clean(row.get(column)) if column else None

    return new_record(
        source,
        source_id=cell("source_id") or str(number),
        pmid=parse_pmid(cell("pmid")),
        pmcid=cell("pmcid"),
        doi=find_doi(cell("doi")),
        title=cell("title"),
        abstract=cell("abstract"),
        authors=split_authors(cell("authors")),
        journal=cell("journal"),
        year=parse_year(cell("year")),
        pub_date=cell("year"),
        volume=_integer_text(cell("volume")),
        issue=_integer_text(cell("issue")),
        pages=cell("pages") or _page_range(cell("page_start"), cell("page_end"))
        or cell("article_number"),
        keywords=split_keywords(cell("keywords")),
        language=cell("language"),
    )


def _page_range(start: str | None, end: str | None) -> str | None:
    """"100" and "110" -> "100-110" (Scopus and Web of Science give the two apart)."""
    if start and end and start != end:
        return f"{start}-{end}"
    return start or end


def _integer_text(value: str | None) -> str | None:
    """Spreadsheets turn volume 7 into `7.0`; give it back as printed."""
    return value[:-2] if value and re.fullmatch(r"\d+\.0", value) else value


def read_table(path: Path, source: str) -> Iterator[dict]:
    text = read_text(path)
    header_line = text.split("\n", 1)[0]
    reader = csv.DictReader(io.StringIO(text), delimiter=sniff_delimiter(header_line, path),
                            strict=True)
    start = 1  # the line the row being read starts on
    try:
        columns = find_columns(list(reader.fieldnames or []), path)
        start = reader.reader.line_num + 1
        for number, row in enumerate(reader, start=1):
            yield record_from_row(row, columns, number, source)
            start = reader.reader.line_num + 1
    except csv.Error as exc:
        raise InputError(path, f"malformed CSV ({exc}); check the quotes on the row that "
                               "starts here", line=start) from None


# ----------------------------------------------------------------------------- writing

def table_row(record: dict) -> dict[str, object]:
    """One record as a row of the ASReview/Rayyan CSV."""
    doi, pmid = record.get("doi"), record.get("pmid")
    url = (f"https://doi.org/{doi}" if doi
           else f"https://pubmed.ncbi.nlm.nih.gov/{pmid}/" if pmid else None)
    return {
        "key": record.get("record_id"),
        "title": record.get("title"),
        "authors": "; ".join(record.get("authors") or []),
        "journal": record.get("journal"),
        "volume": record.get("volume"),
        "issue": record.get("issue"),
        "pages": record.get("pages"),
        "year": record.get("year"),
        "url": url,
        "abstract": record.get("abstract"),
        "doi": doi,
        "keywords": "; ".join(record.get("keywords") or []),
        "language": record.get("language"),
        "pmid": pmid,
        "label_included": _label(record.get("decision")),
    }


def _label(decision: object) -> int | None:
    """ASReview's labels: 1 included, 0 excluded, empty not yet screened."""
    text = str(decision or "").strip().lower()
    return {"include": 1, "included": 1, "exclude": 0, "excluded": 0}.get(text)


def write_table(path: Path, records: Iterable[dict]) -> int:
    """Write records as a UTF-8 CSV that ASReview LAB and Rayyan import."""
    count = 0
    with atomic_write(path, newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=EXPORT_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for record in records:
            writer.writerow({k: ("" if v is None else v) for k, v in table_row(record).items()})
            count += 1
    return count


def _looks_like_table(head: str) -> bool:
    header = head.split("\n", 1)[0].lower()
    return "title" in header and any(d in header for d in _DELIMITERS)


register(Format("csv", (".csv", ".tsv", ".tab"), _looks_like_table, read=read_table,
                write=write_table))
