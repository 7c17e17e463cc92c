"""Importers and exporters: records from RIS, MEDLINE (.nbib), Ovid tagged and Web of
Science plain-text exports, BibTeX, CSV, EndNote XML, PubMed XML and JSONL; records to
RIS, CSV (ASReview, Rayyan) and JSONL.

Every reader runs the same short pipeline: decode (by the byte-order mark, else UTF-8,
else cp1252, else latin-1; gzip unpacked by its first bytes), parse, clean lightly, build
contract records with `cmosynth.records.new_record`. Errors in a file raise InputError
naming the file and the line or record; so does a file that holds no records (empty,
blank, or nothing in it readable as a record), since an import that adds nothing is
almost always a failed export. Only JSONL, the pipeline's own record file, may be empty:
a search with no hits writes an empty one. Formats live in one registry (`registry.py`);
a new format is one module of this package that registers itself.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain
from pathlib import Path

from cmosynth.console import Progress
from cmosynth.errors import InputError
from cmosynth.imports.registry import (Format, detect_format, extension_of, file_head, formats,
                                       get_format, holds_no_text)

__all__ = ["convert_files", "detect_format", "read_records_file", "write_records_file"]

log = logging.getLogger("cmosynth.imports")


def read_records_file(path: str | Path, *, format: str | None = None,
                      source: str | None = None) -> Iterator[dict]:
    """Yield the records of one export, in file order.

    `format` is detected from the extension and first bytes when not given. `source`
    labels the records (and ids without PMID or DOI, `<source>:<source_id>`); it defaults
    to the format's name (`ris`, `nbib`, `ovid`, `wos`, `bibtex`, `csv`, `endnote`,
    `pubmed`), and for JSONL to the records' own `source`. A file that holds no records
    is an InputError (when it is found empty, or after its last line), except JSONL.
    """
    path = Path(path)
    file_head(path)  # a missing file or a folder is told before anything else
    if holds_no_text(path):
        fmt = get_format(format, path) if format else _format_by_extension(path)
        if fmt is not None and fmt.may_hold_no_records:
            return iter(())
        raise InputError(path, "the file is empty: it holds no records; check the export "
                               "(export it again, or remove it from the inputs)")
    # Resolved before the first record is asked for, so a wrong path fails at once.
    fmt = get_format(format or detect_format(path), path)
    if fmt.read is None:
        raise InputError(path, f"{fmt.name} files can be written but not read")
    log.debug("%s: reading as %s", path, fmt.name)
    records = fmt.read(path, source or fmt.default_source())
    return records if fmt.may_hold_no_records else _some_records(records, path, fmt)


def _format_by_extension(path: Path) -> Format | None:
    """The one format that claims the file's extension, if only one does."""
    claimed = [f for f in formats().values() if extension_of(path) in f.extensions]
    return claimed[0] if len(claimed) == 1 else None


def _some_records(records: Iterable[dict], path: Path, fmt: Format) -> Iterator[dict]:
    """The records, or an InputError at the end when there were none."""
    count = 0
    for record in records:
        count += 1
        yield record
    if not count:
        raise InputError(path, f"holds no records: nothing in it reads as a {fmt.name} "
                               "record; check the export (is it the right file and format?)")


def write_records_file(path: str | Path, records: Iterable[dict], *,
                       format: str | None = None) -> int:
    """Write records atomically as RIS, CSV or JSONL (by `format` or the extension);
    returns the number written."""
    path = Path(path)
    fmt = _writer_for(path, format)
    return fmt.write(path, records)


def convert_files(inputs: Sequence[str | Path], output: str | Path) -> int:
    """Read every input in order and write all their records to `output` (format by its
    extension). Nothing is written if any input is unreadable."""
    output = Path(output)
    writer = _writer_for(output, None)
    records = chain.from_iterable(read_records_file(path) for path in inputs)
    with Progress(f"converting to {output.name}") as progress:
        count = writer.write(output, _advancing(records, progress))
    log.info("wrote %d records from %d file(s) to %s", count, len(inputs), output)
    return count


def _advancing(records: Iterable[dict], progress: Progress) -> Iterator[dict]:
    for record in records:
        yield record
        progress.advance()


def _writer_for(path: Path, format: str | None) -> Format:
    """The format to write: named, or the one whose main extension the output has."""
    if format:
        fmt = get_format(format, path)
    else:
        ext = extension_of(path)
        fmt = next((f for f in formats().values() if f.write and f.extensions[0] == ext), None)
    if fmt is None or fmt.write is None:
        choices = ", ".join(f.extensions[0] for f in formats().values() if f.write)
        raise InputError(path, f"cannot write this format; name the output with one of "
                               f"{choices}")
    return fmt
