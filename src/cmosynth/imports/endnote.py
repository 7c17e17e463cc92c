"""EndNote XML exports (File > Export > XML), read with lxml, one record at a time.

EndNote wraps every value in `<style>` runs; the text of a field is all its runs joined.
The parser loads no DTD, expands no entity and opens no network connection (the options
of `XML_OPTIONS`): an entity reference that an export could only hold to read a file of
this computer, or to make the parser build gigabytes, stays an unexpanded node whose
text is left out, and libxml2 refuses a document whose entities would blow up anyway.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Iterator
from pathlib import Path

from lxml import etree

from cmosynth.errors import InputError
from cmosynth.imports.registry import Format, file_head, first_element_name, register
from cmosynth.imports.text import (GZIP_MAGIC, clean, clean_list, each_keyword, find_doi,
                                   parse_year, pmid_from_accession)
from cmosynth.records import new_record

#: lxml options for every document a user gives: no DTD, no entity expansion, no network.
#: No `huge_tree`: EndNote values are far below libxml2's limits (10 MB of text in one
#: node, nesting 256 deep), and those limits are part of its protection against abuse.
XML_OPTIONS = {"resolve_entities": False, "no_network": True, "load_dtd": False}


def element_text(element: etree._Element) -> str:
    """The text of an element and its descendants, tails kept; comments, processing
    instructions and unexpanded entity references (`&name;`) give none of theirs."""
    parts = [element.text or ""]
    for child in element:
        if isinstance(child.tag, str):
            parts.append(element_text(child))
        parts.append(child.tail or "")
    return "".join(parts)


def _text(record: etree._Element, path: str) -> str | None:
    """Cleaned text of the first element at `path` below `record`, runs joined."""
    element = record.find(path)
    return clean(element_text(element)) if element is not None else None


def _texts(record: etree._Element, path: str) -> list[str]:
    return clean_list(element_text(e) for e in record.iterfind(path))


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
        keywords=each_keyword(element_text(k) for k in record.iterfind("keywords/keyword")),
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
    try:
        with open(path, "rb") as probe:
            gzipped = probe.read(2) == GZIP_MAGIC
        with (gzip.open if gzipped else open)(path, "rb") as stream:
            events = etree.iterparse(stream, events=("end",), tag="record", **XML_OPTIONS)
            for number, (_, element) in enumerate(events, start=1):
                yield record_from_endnote(element, number, source)
                element.clear(keep_tail=False)
                while element.getprevious() is not None:
                    del element.getparent()[0]
    except etree.XMLSyntaxError as exc:
        raise InputError(path, f"broken XML ({_one_line(exc.msg)}); export the library again",
                         line=exc.lineno or None) from None
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(path, f"cannot read ({exc}); export the library again") from None


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


def _looks_like_endnote(head: str) -> bool:
    return first_element_name(head) == "xml" and re.search(r"<records?\b", head) is not None


register(Format("endnote", (".xml",), _looks_like_endnote, read=read_endnote))
