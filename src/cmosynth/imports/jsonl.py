"""JSON Lines of records: our own contract (DESIGN.md), as every stage writes it.

Read line by line (gzip unpacked by its first bytes), so every fault names its line: text
that is not UTF-8, a line that is not a JSON object, a field of the wrong type. A file
with no records is no error here: the search stage writes an empty one for a search with
no hits.
"""

from __future__ import annotations

import codecs
import gzip
import json
import re
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

from cmosynth.errors import InputError
from cmosynth.imports.registry import Format, register
from cmosynth.imports.text import GZIP_MAGIC, clean, parse_year, split_authors, split_keywords
from cmosynth.records import RECORD_FIELDS, new_record, write_records

_IDENTIFIERS = ("record_id", "pmid", "doi", "source_id")
#: Contract fields holding one value: text, or a number (a PMID, a volume) read as text.
_TEXT_FIELDS = frozenset(RECORD_FIELDS) - {"abstract_sections", "authors", "mesh",
                                           "keywords", "publication_types", "year"}
#: Contract fields holding a list of names or terms; a string is split as the CSV reader does.
_LIST_FIELDS = ("authors", "mesh", "keywords", "publication_types")
#: A `\uD800`-`\uDFFF` escape: JSON allows it, but alone it is no character and cannot be
#: written out again as UTF-8.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")


def record_from_json(obj: dict, number: int, source: str | None) -> dict:
    """A stored record, completed to the contract; fields added by later stages are kept."""
    contract = {k: obj[k] for k in RECORD_FIELDS if k in obj and k != "source"}
    year = obj.get("year")
    plain_year = isinstance(year, int) and not isinstance(year, bool) and 1000 <= year <= 9999
    contract["year"] = year if plain_year else parse_year(year)
    if isinstance(obj.get("authors"), str):
        contract["authors"] = split_authors(obj["authors"])
    for name in _LIST_FIELDS[1:]:
        if isinstance(obj.get(name), str):
            contract[name] = split_keywords(obj[name])
    contract["source_id"] = contract.get("source_id") or str(number)
    label = source or clean(obj.get("source")) or "jsonl"
    record = new_record(label, **contract)
    record.update({k: v for k, v in obj.items() if k not in record})
    return record


def field_problem(obj: dict) -> str | None:
    """What is wrong with the types of a stored record's contract fields, if anything."""
    for name in _TEXT_FIELDS:
        value = obj.get(name)
        if isinstance(value, (list, dict)):
            return f"field {name!r} must be text, not {_kind(value)}"
    if obj.get("record_id") is not None and not isinstance(obj["record_id"], str):
        return f"record_id must be text, not {_kind(obj['record_id'])}"
    if isinstance(obj.get("year"), (list, dict)):
        return f"field 'year' must be a number or text, not {_kind(obj['year'])}"
    for name in _LIST_FIELDS:
        value = obj.get(name)
        if value is None or isinstance(value, str):
            continue
        if not isinstance(value, list):
            return f"field {name!r} must be a list, not {_kind(value)}"
        allowed = (dict, str) if name == "mesh" else (str,)  # mesh: {descriptor, ...} too
        if any(item is not None and not isinstance(item, allowed) for item in value):
            return f"field {name!r} must be a list of text"
    sections = obj.get("abstract_sections")
    if sections is not None:
        if not isinstance(sections, list) or not all(
                isinstance(s, dict) and all(s.get(k) is None or isinstance(s.get(k), str)
                                            for k in ("label", "nlm_category", "text"))
                for s in sections):
            return ("field 'abstract_sections' must be a list of {label, nlm_category, text} "
                    "objects of text")
    return None


def _kind(value: object) -> str:
    return {list: "a list", dict: "an object", bool: "true/false"}.get(type(value),
                                                                       type(value).__name__)


def read_jsonl_records(path: Path, source: str | None) -> Iterator[dict]:
    for number, (line, obj) in enumerate(json_objects(path), start=1):
        problem = field_problem(obj)
        if problem:
            raise InputError(path, f"{problem}; fix or remove this line", line=line)
        if not clean(obj.get("title")) and not any(clean(obj.get(k)) for k in _IDENTIFIERS):
            raise InputError(path, "record without a title or an id (record_id, pmid, doi); "
                                   "fix or remove this line", line=line)
        try:
            yield record_from_json(obj, number, source)
        except (TypeError, ValueError) as exc:
            raise InputError(path, f"not a record ({exc})", line=line) from None


def json_objects(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) for every non-blank line of a JSON Lines file."""
    try:
        with open(path, "rb") as probe:
            gzipped = probe.read(2) == GZIP_MAGIC
        with (gzip.open if gzipped else open)(path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                text = _line_text(raw, path, number)
                if text.strip():
                    yield number, _json_object(text, path, number)
    except FileNotFoundError:
        raise InputError(path, "file not found; check the path") from None
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(path, f"cannot read ({exc}); write the file again") from None


def _line_text(raw: bytes, path: Path, number: int) -> str:
    if number == 1 and raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(path, f"not UTF-8 text (byte 0x{raw[exc.start]:02X}); record files "
                               "are UTF-8 JSON Lines", line=number) from None


def _json_object(text: str, path: Path, number: int) -> dict:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(path, f"not valid JSON ({exc.msg}); fix or remove this line",
                         line=number) from None
    except (ValueError, RecursionError) as exc:  # a 5,000-digit number, nesting too deep
        reason = str(exc).split(";")[0].split("\n")[0][:80]
        raise InputError(path, f"not valid JSON ({reason}); fix or remove this line",
                         line=number) from None
    if not isinstance(obj, dict):
        raise InputError(path, "each line must be a JSON object", line=number)
    if _SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(obj, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise InputError(path, "a \\u escape names half a character (an unpaired "
                                   "surrogate); fix the text on this line",
                             line=number) from None
    return obj


def write_jsonl_records(path: Path, records: Iterable[dict]) -> int:
    return write_records(path, records)


def _looks_like_jsonl(head: str) -> bool:
    return head.lstrip().startswith("{")


register(Format("jsonl", (".jsonl", ".ndjson"), _looks_like_jsonl, read=read_jsonl_records,
                write=write_jsonl_records, source_in_records=True, may_hold_no_records=True))
