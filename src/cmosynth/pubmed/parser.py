"""Streaming parser for PubMed XML (efetch `retmode=xml`, MEDLINE baseline/update files).

Turns each `PubmedArticle` and `PubmedBookArticle` into a Record (DESIGN.md, data
contracts). Elements are cleared as soon as a record is built, so memory stays flat
however many records a file holds; reference lists are never walked.

The parser loads no DTD (PubMed's DOCTYPE names one on the web), expands no entity and
opens no network connection (`XML_OPTIONS`): a reference to an entity declared in the
document stays an unexpanded node, whose text `_text` leaves out, so a crafted file can
neither read a local file into a record nor make the parser build gigabytes (libxml2
refuses such a document outright). PubMed itself writes characters, never entities.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import io
import logging
import os
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from lxml import etree

from cmosynth.errors import InputError
from cmosynth.records import new_record

log = logging.getLogger("cmosynth.pubmed.parser")

Source = str | os.PathLike | bytes | BinaryIO

ARTICLE_TAGS = ("PubmedArticle", "PubmedBookArticle")
#: Root elements of PubMed XML; anything else (an HTML error page, another database's
#: XML) is not a PubMed answer even when it is well-formed.
PUBMED_ROOTS = frozenset({"PubmedArticleSet", "PubmedBookArticleSet", *ARTICLE_TAGS})
_MATHML = "{http://www.w3.org/1998/Math/MathML}"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_YEAR = re.compile(r"(?<!\d)(1[5-9]\d\d|2\d\d\d)(?!\d)")
_HEAD_BYTES = 4096
_GZIP_MAGIC = b"\x1f\x8b"
#: lxml options for every PubMed document, fetched or given: no DTD, no entity expansion,
#: no network. No `huge_tree`: a PubMed record is far below libxml2's limits (10 MB of
#: text in one node, nesting 256 deep), which are part of its protection against abuse;
#: files of any size stream, since the limits are per node, not per document.
XML_OPTIONS = {"resolve_entities": False, "no_network": True, "load_dtd": False}
_DIGITS = re.compile(r"[0-9]+")
# Compiled once: lxml evaluates these in C, several times faster than iterfind paths.
_MESH_DESCRIPTORS = etree.XPath("MeshHeadingList/MeshHeading/DescriptorName")
_KEYWORDS = etree.XPath("KeywordList/Keyword")
_PUBLICATION_TYPES = etree.XPath("PublicationTypeList/PublicationType | PublicationType")
_ENTREZ_DATE = etree.XPath('PubMedPubDate[@PubStatus="entrez"]')
_PUBMED_DATE = etree.XPath('PubMedPubDate[@PubStatus="pubmed"]')


# ----------------------------------------------------------------------------- public API

def parse_pubmed_xml(source: Source) -> Iterator[dict]:
    """Yield one Record per PubMed article or book article in `source`, in file order.

    `source` is a path, the bytes of a response, or a binary file object; gzip is
    decompressed transparently. An empty result set yields nothing; a body that is not
    PubMed XML, or XML cut short, raises InputError naming the source and line.
    """
    for article in _iter_articles(source):
        yield _record_from(article, source)


def count_articles(source: Source) -> int:
    """Number of articles and book articles in `source`, without building records."""
    return sum(1 for _ in _iter_articles(source))


# ----------------------------------------------------------------------------- streaming

def _iter_articles(source: Source) -> Iterator[etree._Element]:
    """Yield each complete article element, then free it and everything before it."""
    name = _source_name(source)
    with _open_binary(source) as stream:
        reader = _NonEmptyReader.wrap(stream, name)
        if reader is None:
            return
        # ReferenceList is listed only so it can be dropped the moment it is complete.
        events = etree.iterparse(reader, events=("end",),
                                 tag=(*ARTICLE_TAGS, "ReferenceList"), **XML_OPTIONS)
        count = 0
        try:
            for _, element in events:
                if element.tag == "ReferenceList":
                    element.clear()
                    continue
                yield element
                _free(element)
                count += 1
        except etree.XMLSyntaxError as exc:
            message = " ".join(str(exc.msg).split())
            raise InputError(name, f"not well-formed PubMed XML ({message}); the file is "
                                   "truncated or corrupt, fetch it again",
                             line=exc.lineno or None) from None
        except (OSError, EOFError, zlib.error) as exc:  # a truncated or corrupt gzip stream
            raise InputError(name, f"cannot read ({exc}); fetch the file again") from None
        root = events.root
        if root is None or root.tag not in PUBMED_ROOTS:
            tag = getattr(root, "tag", None)
            raise InputError(name, f"not PubMed XML: the root element is <{tag}>, expected "
                                   "<PubmedArticleSet>; was it fetched with retmode=xml?",
                             line=getattr(root, "sourceline", None))
        log.debug("%s: %d PubMed articles", name, count)


def _free(element: etree._Element) -> None:
    """Drop a finished article and its already-handled siblings from the tree."""
    element.clear(keep_tail=True)
    parent = element.getparent()
    if parent is not None:
        while element.getprevious() is not None:
            del parent[0]


def _source_name(source: Source) -> str:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "<bytes>"
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    return str(getattr(source, "name", "<stream>"))


def _open_binary(source: Source) -> contextlib.AbstractContextManager[BinaryIO]:
    """A binary stream over `source`, gzip recognised by its magic bytes, not its name.

    A caller's own file object is left open for the caller to close.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if data[:2] == _GZIP_MAGIC:
            return gzip.GzipFile(fileobj=io.BytesIO(data))
        return io.BytesIO(data)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            with open(path, "rb") as probe:
                gzipped = probe.read(2) == _GZIP_MAGIC
            return gzip.open(path, "rb") if gzipped else open(path, "rb")
        except OSError as exc:
            raise InputError(path, f"cannot open ({exc.strerror or exc})") from None
    return contextlib.nullcontext(source)


class _NonEmptyReader:
    """Replays the bytes read to check the body is not blank, then the rest of the stream.

    A blank body is an empty answer, not a parse error, so it is told apart before
    lxml sees it (lxml calls it "Start tag expected", like any other non-XML body).
    """

    def __init__(self, head: bytes, stream: BinaryIO):
        self._head = head
        self._stream = stream

    @classmethod
    def wrap(cls, stream: BinaryIO, name: str) -> _NonEmptyReader | None:
        """A reader over `stream`, or None when it holds nothing but whitespace."""
        head = b""
        try:
            while not head.strip():
                chunk = stream.read(_HEAD_BYTES)
                if not chunk:
                    return None
                head += chunk
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(name, f"cannot read ({exc}); fetch the file again") from None
        return cls(head, stream)

    def read(self, size: int = -1) -> bytes:
        if self._head:
            head, self._head = self._head, b""
            return head
        return self._stream.read(size)


# ----------------------------------------------------------------------------- records

def _record_from(article: etree._Element, source: Source) -> dict:
    book = article.tag == "PubmedBookArticle"
    required = "BookDocument" if book else "MedlineCitation/Article"
    if article.find(required) is None:
        raise _incomplete(article, source, f"no <{required}>")
    fields = _book_fields(article) if book else _journal_article_fields(article)
    if not fields["pmid"]:
        raise _incomplete(article, source, "no PMID")
    if not _DIGITS.fullmatch(fields["pmid"]):
        raise _incomplete(article, source, f"PMID {fields['pmid'][:20]!r}, not a number,")
    return new_record("pubmed", source_id=fields["pmid"], **fields)


def _incomplete(article: etree._Element, source: Source, what: str) -> InputError:
    return InputError(_source_name(source), f"<{article.tag}> with {what} is not a complete "
                                            "PubMed record; fetch it again",
                      line=article.sourceline)


def _journal_article_fields(article: etree._Element) -> dict:
    citation = article.find("MedlineCitation")
    art = citation.find("Article")
    journal = art.find("Journal")
    issue = journal.find("JournalIssue") if journal is not None else None
    ids = article.find("PubmedData/ArticleIdList")
    year, pub_date = _pub_date(issue.find("PubDate") if issue is not None else None)
    if year is None:
        year, pub_date = _pub_date(art.find("ArticleDate"))
    return {
        "pmid": _text(citation.find("PMID")),
        "pmcid": _pmcid(ids),
        "doi": _article_id(ids, "doi") or _elocation_doi(art),
        "title": _text(art.find("ArticleTitle")) or _text(art.find("VernacularTitle")),
        **_abstract(art.find("Abstract"), citation.findall("OtherAbstract")),
        "authors": _authors(art.find("AuthorList")),
        "journal": _journal_title(journal, citation),
        "year": year,
        "pub_date": pub_date,
        "entrez_date": _entrez_date(article.find("PubmedData/History")),
        "volume": _text(issue.find("Volume")) if issue is not None else None,
        "issue": _text(issue.find("Issue")) if issue is not None else None,
        "pages": _pages(art.find("Pagination")),
        "mesh": [_text(d) for d in _MESH_DESCRIPTORS(citation)],
        "keywords": _unique(_text(k) for k in _KEYWORDS(citation)),
        "publication_types": _unique(_text(p) for p in _PUBLICATION_TYPES(art)),
        "language": _language(art),
    }


def _book_fields(article: etree._Element) -> dict:
    document = article.find("BookDocument")
    book = document.find("Book")
    book_title = _text(book.find("BookTitle")) if book is not None else None
    chapter_title = _text(document.find("ArticleTitle"))
    ids = article.find("PubmedBookData/ArticleIdList")
    year, pub_date = _pub_date(book.find("PubDate") if book is not None else None)
    authors = next((a for a in document.iterfind("AuthorList")
                    if a.get("Type", "authors") == "authors"), None)
    return {
        "pmid": _text(document.find("PMID")),
        "pmcid": _pmcid(ids),
        "doi": (_article_id(document.find("ArticleIdList"), "doi")
                or _article_id(ids, "doi") or _elocation_doi(document)),
        "title": chapter_title or book_title or _text(document.find("VernacularTitle")),
        **_abstract(document.find("Abstract"), document.findall("OtherAbstract")),
        "authors": _authors(authors),
        "journal": book_title if chapter_title else None,
        "year": year,
        "pub_date": pub_date,
        "entrez_date": _entrez_date(article.find("PubmedBookData/History")),
        "volume": _text(book.find("Volume")) if book is not None else None,
        "pages": _pages(document.find("Pagination")),
        "keywords": _unique(_text(k) for k in _KEYWORDS(document)),
        "publication_types": _unique(_text(p) for p in _PUBLICATION_TYPES(document)),
        "language": _language(document),
    }


# ----------------------------------------------------------------------------- fields

def _text(element: etree._Element | None) -> str | None:
    """Plain text of an element: inline markup flattened, tails kept, spaces normalised."""
    if element is None:
        return None
    raw = "".join(_flatten(element)) if len(element) else element.text or ""
    return " ".join(raw.split()) or None


def _flatten(element: etree._Element) -> Iterator[str]:
    if element.text:
        yield element.text
    for child in element:
        if isinstance(child.tag, str):  # comments and processing instructions have no text
            if child.tag.startswith(_MATHML):
                yield _math_text(child)
            else:
                yield from _flatten(child)
        if child.tail:
            yield child.tail


def _math_text(math: etree._Element) -> str:
    """MathML as its symbols in order: only leaf tokens carry text, the rest is layout."""
    return "".join(token.text for token in math.iter()
                   if isinstance(token.tag, str) and not len(token) and token.text)


def _abstract(abstract: etree._Element | None, others: list[etree._Element]) -> dict:
    """`abstract_sections` and the joined `abstract`; OtherAbstract only if no Abstract,
    preferring one in English."""
    sections = _abstract_sections(abstract)
    if not sections:
        english = [o for o in others if o.get("Language", "eng") == "eng"]
        for other in english + others:
            sections = _abstract_sections(other)
            if sections:
                break
    text = "\n".join(f"{s['label']}: {s['text']}".rstrip() if s["label"] else s["text"]
                     for s in sections)
    return {"abstract": text or None, "abstract_sections": sections}


def _abstract_sections(abstract: etree._Element | None) -> list[dict]:
    if abstract is None:
        return []
    sections = []
    for part in abstract.iterfind("AbstractText"):
        label = " ".join(part.get("Label", "").split()) or None
        text = _text(part) or ""
        if text or label:
            sections.append({"label": label, "nlm_category": part.get("NlmCategory"),
                             "text": text})
    return sections


def _authors(author_list: etree._Element | None) -> list[str]:
    """"Last, Fore" (initials when no fore name); group authors by their collective name."""
    if author_list is None:
        return []
    authors = []
    for author in author_list.iterfind("Author"):
        if author.get("ValidYN", "Y") != "Y":
            continue
        last = _text(author.find("LastName"))
        if last:
            fore = _text(author.find("ForeName")) or _text(author.find("Initials"))
            authors.append(f"{last}, {fore}" if fore else last)
        else:
            collective = _text(author.find("CollectiveName"))
            if collective:
                authors.append(collective)
    return authors


def _article_id(id_list: etree._Element | None, id_type: str) -> str | None:
    if id_list is None:
        return None
    for article_id in id_list.iterfind("ArticleId"):
        if article_id.get("IdType") == id_type:
            value = _text(article_id)
            if value:
                return value
    return None


def _pmcid(id_list: etree._Element | None) -> str | None:
    value = _article_id(id_list, "pmc")
    if not value:
        return None
    return value if value.upper().startswith("PMC") else f"PMC{value}"


def _elocation_doi(container: etree._Element) -> str | None:
    for location in container.iterfind("ELocationID"):
        if location.get("EIdType") == "doi" and location.get("ValidYN", "Y") == "Y":
            value = _text(location)
            if value:
                return value
    return None


def _pub_date(date: etree._Element | None) -> tuple[int | None, str | None]:
    """(year, date as printed) from a PubDate, ArticleDate or book PubDate element."""
    if date is None:
        return None, None
    medline_date = _text(date.find("MedlineDate"))
    if medline_date:
        found = _YEAR.search(medline_date)
        return (int(found.group(1)) if found else None), medline_date
    year = _text(date.find("Year"))
    if not year:
        return None, None
    parts = [year, _month_name(_text(date.find("Month"))),
             _text(date.find("Season")), _day(_text(date.find("Day")))]
    found = _YEAR.search(year)
    return (int(found.group(1)) if found else None), " ".join(p for p in parts if p)


def _month_name(month: str | None) -> str | None:
    """PubMed prints months as "Mar"; some dates carry them as numbers."""
    if month and _DIGITS.fullmatch(month) and 1 <= int(month) <= 12:
        return _MONTHS[int(month) - 1]
    return month


def _day(day: str | None) -> str | None:
    return str(int(day)) if day and _DIGITS.fullmatch(day) else day


def _entrez_date(history: etree._Element | None) -> str | None:
    """YYYY-MM-DD of the Entrez date (when PubMed received the record), else its pubmed date."""
    if history is None:
        return None
    dates = _ENTREZ_DATE(history) or _PUBMED_DATE(history)
    if not dates:
        return None
    date = dates[0]
    parts = [(date.findtext(part) or "").strip() for part in ("Year", "Month", "Day")]
    if not all(_DIGITS.fullmatch(part) for part in parts):
        return None
    try:
        return dt.date(*map(int, parts)).isoformat()
    except ValueError:  # no such day
        return None


def _journal_title(journal: etree._Element | None, citation: etree._Element) -> str | None:
    if journal is not None:
        title = _text(journal.find("Title")) or _text(journal.find("ISOAbbreviation"))
        if title:
            return title
    return _text(citation.find("MedlineJournalInfo/MedlineTA"))


def _pages(pagination: etree._Element | None) -> str | None:
    if pagination is None:
        return None
    medline_pages = _text(pagination.find("MedlinePgn"))
    if medline_pages:
        return medline_pages
    start, end = _text(pagination.find("StartPage")), _text(pagination.find("EndPage"))
    if start and end and end != start:
        return f"{start}-{end}"
    return start or end


def _language(container: etree._Element) -> str | None:
    """The first of the record's languages, as PubMed's three-letter code."""
    for language in container.iterfind("Language"):
        code = _text(language)
        if code:
            return code.lower()
    return None


def _unique(values) -> list[str]:
    """Non-empty values in first-seen order; PubMed repeats some keywords verbatim."""
    return list(dict.fromkeys(v for v in values if v))
