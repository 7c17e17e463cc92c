"""EndNote XML exports (File > Export > XML), read with lxml, one record at a time.

EndNote wraps every value in `<style>` runs; the text of a field is all its runs joined.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from lxml import etree

from cmosynth.errors import InputError
from cmosynth.imports.registry import Format, file_head, first_element_name, register
from cmosynth.imports.text import (clean, clean_list, each_keyword, find_doi, parse_year,
                                   pmid_from_accession)
from cmosynth.records import new_record


def _text(record: etree._Element, path: str) -> str | None:
    """Cleaned text of the first element at `path` below `record`, runs joined."""
    element = record.find(path)
    return clean("".join(element.itertext())) if element is not None else None


def _texts(record: etree._Element, path: str) -> list[str]:
    return clean_list("".join(e.itertext()) for e in record.iterfind(path))


def record_from_endnote(record: etree._Element, number: int, source: str) -> dict:
    """One `<record>` as a contract record; `rec-number` is its source_id."""
    database = _text(record, "remote-database-name") or _text(record, "remote-database-provider")
    return new_record(
        source,
        source_id=_text(record, "rec-number") or str(number),
        pmid=pmid_from_accession(_text(record, "accession-num"), database),
        doi=find_doi(_text(record, "electronic-resource-num"),
                     *_texts(record, "urls/related-urls/url")),
        title=_text(record, "titles/title"),
        abstract=_text(record, "abstract"),
        authors=_texts(record, "contributors/authors/author"),
        journal=(_text(record, "periodical/full-title") or _text(record, "titles/secondary-title")
                 or _text(record, "periodical/abbr-1")),
        year=parse_year(_text(record, "dates/year")),
        pub_date=_pub_date(_text(record, "dates/year"), _text(record, "dates/pub-dates/date")),
        volume=_text(record, "volume"),
        issue=_text(record, "number"),
        pages=_text(record, "pages"),
        keywords=each_keyword("".join(k.itertext())
                              for k in record.iterfind("keywords/keyword")),
        language=_text(record, "language"),
    )


def _pub_date(year: str | None, date: str | None) -> str | None:
    """`2018 Mar` from EndNote's separate year and date (`Mar`, `2018 Mar 5`, `03/2018`)."""
    if date and year and year not in date:
        return f"{year} {date}"
    return date or year


def read_endnote(path: Path, source: str) -> Iterator[dict]:
    """Stream `<record>` elements from disk (gzip too), freeing each once turned into a
    record, so memory stays flat for libraries of any size."""
    if first_element_name(file_head(path)) != "xml":
        raise InputError(path, "not an EndNote XML export: the root element is not <xml>",
                         line=1)
    events = etree.iterparse(str(path), events=("end",), tag="record", huge_tree=True)
    try:
        for number, (_, element) in enumerate(events, start=1):
            yield record_from_endnote(element, number, source)
            element.clear(keep_tail=False)
            while element.getprevious() is not None:
                del element.getparent()[0]
    except etree.XMLSyntaxError as exc:
        raise InputError(path, f"broken XML ({exc.msg}); export the library again",
                         line=exc.lineno) from None
    except OSError as exc:
        raise InputError(path, f"cannot read ({exc}); export the library again") from None


def _looks_like_endnote(head: str) -> bool:
    return first_element_name(head) == "xml" and re.search(r"<records?\b", head) is not None


register(Format("endnote", (".xml",), _looks_like_endnote, read=read_endnote))
