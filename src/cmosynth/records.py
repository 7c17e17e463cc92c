"""The Record: one bibliographic record as every stage sees it (DESIGN.md, data contracts).

Records travel between stages as JSON Lines, one plain dict a line, always carrying every
field of `RECORD_FIELDS` in that order so files diff cleanly and tables stay byte-stable.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from pathlib import Path

from cmosynth.files import read_jsonl, write_jsonl

#: Contract fields, in output order. `source_id` (the input's own identifier), `pmcid`,
#: `volume`, `issue` and `pages` extend DESIGN.md's list: deduplication needs the last
#: three and full-text extraction needs the PMC id.
RECORD_FIELDS: tuple[str, ...] = (
    "record_id", "source", "source_id", "pmid", "pmcid", "doi", "title", "abstract",
    "abstract_sections", "authors", "journal", "year", "pub_date", "entrez_date",
    "volume", "issue", "pages", "mesh", "keywords", "publication_types", "language",
)

_LIST_FIELDS = {"abstract_sections", "authors", "mesh", "keywords", "publication_types"}

_DOI_PREFIX = re.compile(
    r"^\s*(?:(?:https?://)?(?:dx\.)?doi\.org/|doi:\s*|https?://doi\.org/)", re.IGNORECASE
)
_DOI_SHAPE = re.compile(r"^10\.\d{4,9}/\S+$")


def normalise_doi(doi: str | None) -> str | None:
    """Return the DOI in lower case without resolver prefixes, or None if it is not one.

    DOIs are case-insensitive (DOI Handbook 2.4), so `10.1000/ABC` and
    `https://doi.org/10.1000/abc` are the same identifier.
    """
    if not doi:
        return None
    text = unicodedata.normalize("NFKC", str(doi)).strip()
    text = re.sub(r"\s+", "", _DOI_PREFIX.sub("", text)).lower()
    # Composed again after spaces are gone ("A\u00b4" decomposes to "a \u0301"), so that a
    # normalised DOI normalises to itself.
    text = unicodedata.normalize("NFKC", text).rstrip(".;,")
    return text if _DOI_SHAPE.match(text) else None


def make_record_id(source: str, pmid: str | None = None, doi: str | None = None,
                   source_id: str | int | None = None) -> str:
    """Stable id: `pmid:<n>`, else `doi:<normalised doi>`, else `<source>:<source_id>`."""
    if pmid:
        return f"pmid:{str(pmid).strip()}"
    norm = normalise_doi(doi)
    if norm:
        return f"doi:{norm}"
    if source_id is None or str(source_id).strip() == "":
        raise ValueError("a record without PMID or DOI needs a source_id for its record_id")
    return f"{source}:{str(source_id).strip()}"


def new_record(source: str, **fields) -> dict:
    """A record dict with every contract field, in contract order, and a record_id.

    Unknown keyword arguments are an error so that a typo never silently drops data.
    """
    unknown = set(fields) - set(RECORD_FIELDS)
    if unknown:
        raise TypeError(f"unknown record fields: {sorted(unknown)}")
    record = {name: ([] if name in _LIST_FIELDS else None) for name in RECORD_FIELDS}
    record.update({k: v for k, v in fields.items() if v is not None})
    record["source"] = source
    record["doi"] = normalise_doi(record["doi"]) if record["doi"] else None
    if record["pmid"] is not None:
        record["pmid"] = str(record["pmid"]).strip() or None
    if not record.get("record_id"):
        record["record_id"] = make_record_id(source, record["pmid"], record["doi"],
                                             record["source_id"])
    return record


def read_records(path: str | Path) -> Iterator[dict]:
    """Yield records from a JSON Lines file (InputError names a bad line)."""
    yield from read_jsonl(path)


def write_records(path: str | Path, records: Iterable[dict]) -> int:
    """Write records atomically, contract fields first, any stage-added fields after."""

    def ordered(record: dict) -> dict:
        out = {name: record.get(name, [] if name in _LIST_FIELDS else None)
               for name in RECORD_FIELDS}
        out.update({k: v for k, v in record.items() if k not in out})
        return out

    return write_jsonl(path, (ordered(r) for r in records))
