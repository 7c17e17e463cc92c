"""Shared cleaning for every reader: decode bytes, tidy text lightly, pick out years,
DOIs and PMIDs. Matching normalisation (case, punctuation) is the dedup engine's job."""

from __future__ import annotations

import codecs
import gzip
import html
import logging
import re
import zlib
from collections.abc import Iterable
from pathlib import Path

from cmosynth.errors import InputError

log = logging.getLogger("cmosynth.imports")

#: Tried in order after strict UTF-8. cp1252 is what Windows exports (EndNote, Excel)
#: write; it differs from latin-1 only in 0x80-0x9F, where latin-1 has control codes, so
#: latin-1 is the last resort and decodes any byte.
FALLBACK_ENCODINGS = ("cp1252", "latin-1")

#: Byte-order marks and their encodings; UTF-32's first, since UTF-16 LE's is its prefix.
BYTE_ORDER_MARKS = ((codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),
                    (codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
                    (codecs.BOM_UTF16_BE, "utf-16-be"))
GZIP_MAGIC = b"\x1f\x8b"
#: Signatures of binary files people pick by mistake, for a clearer error.
_MAGIC = ((b"\x89PNG", "a PNG image"), (b"%PDF", "a PDF document"),
          (b"PK\x03\x04", "a ZIP archive (or an .xlsx/.docx file)"),
          (b"\xd0\xcf\x11\xe0", "an old Microsoft Office file (.xls/.doc)"),
          (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
          (b"BZh", "a bzip2 archive"), (b"\xfd7zXZ", "an xz archive"),
          (b"7z\xbc\xaf", "a 7-Zip archive"), (b"Rar!", "a RAR archive"))
#: Control characters no text export is made of (tab, newlines, form feed excepted).
_CONTROL = re.compile("[\x00-\x08\x0e-\x1f\x7f]")
_CONTROL_BYTES = re.compile(b"[\x00-\x08\x0e-\x1f\x7f]")
#: Characters of text looked at for the binary check.
_BINARY_SAMPLE = 65536
#: A character UTF-8 decoding produced from several bytes (surrogateescape marks bad bytes).
_UTF8_MULTIBYTE = re.compile("[^\x00-\x7f\udc80-\udcff]")

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
    """The file's bytes, gunzipped when it is gzip (by its first bytes, whatever its name)."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        raise InputError(path, "file not found; check the path") from None
    except IsADirectoryError:
        raise InputError(path, "is a folder, not a file of records") from None
    except OSError as exc:
        raise InputError(path, f"cannot read ({exc.strerror or exc}); export the file "
                               "again") from None
    if raw[:2] != GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(path, f"a gzip file that cannot be unpacked ({exc}); it is cut "
                               "short or corrupt: export or download it again") from None


def decode(raw: bytes, path: Path) -> str:
    """Text of an export: by its byte-order mark (UTF-8, UTF-16, UTF-32) if it has one,
    else UTF-8, else cp1252, else latin-1.

    Bytes that no text export holds are InputErrors naming the line: a binary file (NUL
    or many control bytes), a byte-order mark the bytes after it contradict, or UTF-8
    mixed with another encoding (reading the whole file as cp1252 would garble the UTF-8).
    """
    for bom, encoding in BYTE_ORDER_MARKS:
        if raw.startswith(bom):
            body = raw[len(bom):]
            try:
                text = body.decode(encoding)
            except UnicodeDecodeError as exc:
                name = encoding.upper().replace("-LE", "").replace("-BE", "")
                raise InputError(path, f"starts with a {name} byte-order mark but is not "
                                       f"{name} text (byte {exc.start + len(bom)}); save it "
                                       "as UTF-8 and import it again",
                                 line=_line_of(body[:exc.start], encoding)) from None
            log.debug("%s: encoding %s with BOM", path, encoding)
            _check_not_binary(text, path)
            return text
    _check_not_binary(raw, path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        if _UTF8_MULTIBYTE.search(raw.decode("utf-8", "surrogateescape")):
            byte = raw[exc.start]
            raise InputError(path, f"mixes UTF-8 with another encoding: byte 0x{byte:02X} "
                                   "here is not UTF-8 though other lines are; save the whole "
                                   "file as UTF-8 (or export it again)",
                             line=raw.count(b"\n", 0, exc.start) + 1) from None
    else:
        log.debug("%s: encoding utf-8", path)
        return text
    for encoding in FALLBACK_ENCODINGS:
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        log.debug("%s: encoding %s", path, encoding)
        return text
    raise AssertionError("latin-1 decodes every byte")  # pragma: no cover


def _line_of(before: bytes, encoding: str) -> int:
    """Line number of the byte after `before` (the bytes of the text above it)."""
    return before.decode(encoding, errors="replace").count("\n") + 1


def binary_problem(data: bytes | str) -> str | None:
    """Why `data` (a file's bytes or decoded text) is binary, not a text export: a NUL, or
    more control characters than the few stray ones some databases leave (those are
    cleaned out of values); None for text."""
    control = _CONTROL if isinstance(data, str) else _CONTROL_BYTES
    head = data[:_BINARY_SAMPLE]
    nul = "\x00" if isinstance(data, str) else b"\x00"
    if nul not in data and len(control.findall(head)) <= max(2, len(head) // 100):
        return None
    raw = data if isinstance(data, bytes) else b""
    what = next((name for magic, name in _MAGIC if raw.startswith(magic)), None)
    if what:
        return f"is {what}, not a text export; export the records as text again"
    return ("holds binary data, not text (or text in UTF-16 without a byte-order mark); "
            "export the records again as UTF-8 text")


def _check_not_binary(data: bytes | str, path: Path) -> None:
    problem = binary_problem(data)
    if problem:
        control = _CONTROL if isinstance(data, str) else _CONTROL_BYTES
        first = control.search(data)
        newline = "\n" if isinstance(data, str) else b"\n"
        raise InputError(path, problem, line=data.count(newline, 0, first.start()) + 1)


def read_text(path: Path) -> str:
    """Decoded text of a file with universal newlines, encoding detected."""
    text = decode(read_bytes(path), path)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def clean(value: object) -> str | None:
    """Text with HTML entities decoded and whitespace runs collapsed; None when empty."""
    if value is None:
        return None
    text = " ".join(_CONTROL.sub(" ", html.unescape(str(value))).split())
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
