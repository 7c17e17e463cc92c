"""JSON Lines of records: our own contract (DESIGN.md), as every stage writes it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from cmosynth.errors import InputError
from cmosynth.imports.registry import Format, register
from cmosynth.imports.text import clean, parse_year, split_authors
from cmosynth.records import RECORD_FIELDS, new_record, read_records, write_records

_IDENTIFIERS = ("record_id", "pmid", "doi", "source_id")


def record_from_json(obj: dict, number: int, source: str | None) -> dict:
    """A stored record, completed to the contract; fields added by later stages are kept."""
    contract = {k: obj[k] for k in RECORD_FIELDS if k in obj and k != "source"}
    year = obj.get("year")
    contract["year"] = year if isinstance(year, int) else parse_year(year)
    if isinstance(obj.get("authors"), str):
        contract["authors"] = split_authors(obj["authors"])
    contract["source_id"] = contract.get("source_id") or str(number)
    label = source or clean(obj.get("source")) or "jsonl"
    record = new_record(label, **contract)
    record.update({k: v for k, v in obj.items() if k not in record})
    return record


def read_jsonl_records(path: Path, source: str | None) -> Iterator[dict]:
    try:
        yield from _checked_records(path, source)
    except UnicodeDecodeError as exc:
        raise InputError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start}); record "
                               "files are UTF-8 JSON Lines") from None


def _checked_records(path: Path, source: str | None) -> Iterator[dict]:
    for number, obj in enumerate(read_records(path), start=1):
        if not clean(obj.get("title")) and not any(clean(obj.get(k)) for k in _IDENTIFIERS):
            raise InputError(path, "record without a title or an id (record_id, pmid, doi); "
                                   "fix or remove this line", line=_line_of(path, number))
        try:
            yield record_from_json(obj, number, source)
        except (TypeError, ValueError) as exc:
            raise InputError(path, f"not a record ({exc})", line=_line_of(path, number)) from None


def _line_of(path: Path, number: int) -> int:
    """Line of the `number`-th JSON object (blank lines are skipped when reading)."""
    with open(path, encoding="utf-8-sig") as handle:
        seen = 0
        for line_number, line in enumerate(handle, start=1):
            seen += bool(line.strip())
            if seen == number:
                return line_number
    return number


def write_jsonl_records(path: Path, records: Iterable[dict]) -> int:
    return write_records(path, records)


def _looks_like_jsonl(head: str) -> bool:
    return head.lstrip().startswith("{")


register(Format("jsonl", (".jsonl", ".ndjson"), _looks_like_jsonl, read=read_jsonl_records,
                write=write_jsonl_records,
                source_in_records=True))
