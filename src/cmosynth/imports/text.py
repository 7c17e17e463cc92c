"""Shared cleaning for every reader: decode bytes, tidy text lightly, pick out years,
DOIs and PMIDs. Matching normalisation (case, punctuation) is the dedup engine's job."""

from __future__ import annotations

import codecs
import gzip
import html
import logging
import re
from collections.abc import Iterable
from pathlib import Path

from cmosynth.errors import InputError

log = logging.getLogger("cmosynth.imports")

#: Tried in order after strict UTF-8. cp1252 is what Windows exports (EndNote, Excel)
#: write; it differs from latin-1 only in 0x80-0x9F, where latin-1 has control codes, so
#: latin-1 is the last resort and decodes any byte.
FALLBACK_ENCODINGS = ("cp1252", "latin-1")

_YEAR = re.compile(r"(?<!\d)(1[5-9]\d\d|2\d\d\d)(?!\d)")
_DOI_IN_TEXT = re.compile(r"10\.\d{4,9}/[^\s\"'<>\]]+")
_PMID = re.compile(r"^(?:pmid:?\s*|(?:https?://)?(?:www\.)?(?:pubmed\.ncbi\.nlm\.nih\.gov|"
                   r"ncbi\.nlm\.nih\.gov/pubmed)/)?(\d{1,9})/?$", re.IGNORECASE)
#: PMIDs have at most 8 digits (about 40 million in 2025); Embase accession numbers have
#: 9-10 digits or an `L` prefix, so a longer number in an accession field is not a PMID.
_ACCESSION_PMID = re.compile(r"^(?:pmid:?\s*)?(\d{1,8})$", re.IGNORECASE)
#: Databases whose accession numbers are their own, not PMIDs.
_OWN_ACCESSION = re.compile(r"embase|psyc|cinahl|cochrane|central|scopus|web of science",
                            re.IGNORECASE)
_AND = re.compile(r"\s+and\s+")
#: "Doe AB" (PubMed) or "Doe A.B." / "Smith J.-P." (Scopus): a surname, then initials only.
_LAST_INITIALS = re.compile(r"^\S.* (?:[A-Z]{1,3}|(?:[A-Z]\.-?){1,4})$")


def read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it ends in `.gz`."""
    try:
        if path.suffix.lower() == ".gz":
            with gzip.open(path, "rb") as handle:
                return handle.read()
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(path, "file not found; check the path") from None
    except (OSError, EOFError) as exc:
        raise InputError(path, f"cannot read ({exc}); export the file again") from None


def decode(raw: bytes, path: Path) -> str:
    """Text of an export in UTF-8 (with or without BOM), else cp1252, else latin-1."""
    if raw.startswith(codecs.BOM_UTF8):
        log.debug("%s: encoding utf-8 with BOM", path)
        return raw[len(codecs.BOM_UTF8):].decode("utf-8", errors="replace")
    for encoding in ("utf-8", *FALLBACK_ENCODINGS):
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        log.debug("%s: encoding %s", path, encoding)
        return text
    raise AssertionError("latin-1 decodes every byte")  # pragma: no cover


def read_text(path: Path) -> str:
    """Decoded text of a file with universal newlines, encoding detected."""
    text = decode(read_bytes(path), path)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def clean(value: object) -> str | None:
    """Text with HTML entities decoded and whitespace runs collapsed; None when empty."""
    if value is None:
        return None
    text = " ".join(html.unescape(str(value)).split())
    return text or None


def clean_list(values: Iterable[object]) -> list[str]:
    """Cleaned, non-empty values in their order, each kept once."""
    seen: dict[str, None] = {}
    for value in values:
        text = clean(value)
        if text:
            seen.setdefault(text, None)
    return list(seen)


def parse_year(value: object) -> int | None:
    """The first plausible four-digit year in a date as printed (`2008//`, `2019 Mar`)."""
    match = _YEAR.search(str(value)) if value is not None else None
    return int(match.group(1)) if match else None


def find_doi(*values: object) -> str | None:
    """The first DOI found in any of `values` (a bare DOI, a doi.org URL, or text)."""
    for value in values:
        if value is None:
            continue
        match = _DOI_IN_TEXT.search(str(value))
        if match:
            return match.group(0).rstrip(".,;)")
    return None


def parse_pmid(value: object) -> str | None:
    """A PMID from `12345`, `PMID: 12345` or a PubMed URL; None otherwise."""
    text = clean(value)
    return _number(_PMID.match(text)) if text else None


def pmid_from_accession(value: object, database: str | None = None) -> str | None:
    """The PMID in an accession-number field (RIS `AN`, EndNote `accession-num`).

    PubMed and Ovid MEDLINE exports put the PMID there; Embase, PsycINFO and CINAHL put
    their own accession numbers, which are never taken for PMIDs.
    """
    text = clean(value)
    if not text:
        return None
    if (database and _OWN_ACCESSION.search(database)
            and not re.search(r"medline|pubmed", database, re.IGNORECASE)):
        return parse_pmid(text) if text.lower().startswith("pmid") else None
    return _number(_ACCESSION_PMID.match(text))


def _number(match: re.Match | None) -> str | None:
    """The matched digits without leading zeros (PMID 0 does not exist)."""
    if match is None:
        return None
    return match.group(1).lstrip("0") or None


def split_authors(value: object) -> list[str]:
    """Authors of one field separated by `;`; by ` and ` between `Last, First` names
    (BibTeX style), so that `Health and Care Board` stays one corporate author; or by
    `,` between `Last AB` names (PubMed's CSV) or `Last A.B.` names (Scopus's CSV)."""
    text = clean(value)
    if not text:
        return []
    if ";" in text:
        return clean_list(text.split(";"))
    parts = _AND.split(text)
    if len(parts) > 1 and all("," in part for part in parts):
        return clean_list(parts)
    parts = text.split(",")
    if len(parts) > 1 and all(_LAST_INITIALS.match(part.strip()) for part in parts):
        return clean_list(parts)
    return [text]


def split_keywords(value: object) -> list[str]:
    """Keywords of one field separated by `;` (or `,` when no `;` is used)."""
    text = clean(value)
    if not text:
        return []
    separator = ";" if ";" in text else ","
    return clean_list(text.split(separator))


def each_keyword(values: Iterable[object]) -> list[str]:
    """Keywords given one per tag or element (RIS KW, EndNote <keyword>); a value holding
    several, separated by `;`, is split, but commas stay (`Copper, dietary`)."""
    return clean_list(part for value in values if value for part in str(value).split(";"))


def join_pages(start: object, end: object) -> str | None:
    """`start-end` as printed, or whichever part exists."""
    first, last = clean(start), clean(end)
    if first and last and last != first and "-" not in first:
        return f"{first}-{last}"
    return first or last
