"""Importers and exporters: records from RIS, MEDLINE (.nbib), Ovid tagged and Web of
Science plain-text exports, BibTeX, CSV, EndNote XML, PubMed XML and JSONL; records to
RIS, CSV (ASReview, Rayyan) and JSONL.

Every reader runs the same short pipeline: decode (UTF-8, else cp1252, else latin-1),
parse, clean lightly, build contract records with `cmosynth.records.new_record`. Errors
in a file raise InputError naming the file and the line or record. Formats live in one
registry (`registry.py`); a new format is one module of this package that registers itself.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain
from pathlib import Path

from cmosynth.console import Progress
from cmosynth.errors import InputError
from cmosynth.imports.registry import Format, detect_format, extension_of, formats, get_format

__all__ = ["convert_files", "detect_format", "read_records_file", "write_records_file"]

log = logging.getLogger("cmosynth.imports")


def read_records_file(path: str | Path, *, format: str | None = None,
                      source: str | None = None) -> Iterator[dict]:
    """Yield the records of one export, in file order.

    `format` is detected from the extension and first bytes when not given. `source`
    labels the records (and ids without PMID or DOI, `<source>:<source_id>`); it defaults
    to the format's name (`ris`, `nbib`, `ovid`, `wos`, `bibtex`, `csv`, `endnote`,
    `pubmed`), and for JSONL to the records' own `source`.
    """
    path = Path(path)
    # Resolved before the first record is asked for, so a wrong path fails at once.
    fmt = get_format(format or detect_format(path), path)
    if fmt.read is None:
        raise InputError(path, f"{fmt.name} files can be written but not read")
    log.debug("%s: reading as %s", path, fmt.name)
    return fmt.read(path, source or fmt.default_source())


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
