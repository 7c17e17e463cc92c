"""One registry of record formats: each format module registers a `Format` when imported,
and every module of this package is imported on first use, so adding a format is one file."""

from __future__ import annotations

import gzip
import importlib
import pkgutil
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from cmosynth.errors import InputError
from cmosynth.imports.text import BYTE_ORDER_MARKS, GZIP_MAGIC, binary_problem

#: Modules of this package that hold no format.
_HELPER_MODULES = {"registry", "text"}
#: Bytes read from the top of a file to recognise its format by content.
SNIFF_BYTES = 8192

ReadFn = Callable[[Path, str | None], Iterator[dict]]
WriteFn = Callable[[Path, Iterable[dict]], int]


@dataclass(frozen=True)
class Format:
    """A record format: its name (also the default `source` label of what it reads),
    the extensions it claims (the first is the one it writes), how to recognise its first
    bytes, and how to read and write it."""

    name: str
    extensions: tuple[str, ...]
    looks_like: Callable[[str], bool]
    read: ReadFn | None = None
    write: WriteFn | None = None
    #: True when records carry their own `source` (JSONL), so none is imposed by default.
    source_in_records: bool = False
    #: True when a file of no records is a valid answer rather than a failed export: the
    #: JSONL the search stage writes for a search with no hits is empty.
    may_hold_no_records: bool = False

    def default_source(self) -> str | None:
        return None if self.source_in_records else self.name


_FORMATS: dict[str, Format] = {}
_loaded = False


def register(fmt: Format) -> Format:
    """Add a format to the registry (called at import time by each format module)."""
    _FORMATS[fmt.name] = fmt
    return fmt


def formats() -> dict[str, Format]:
    """Every registered format by name, importing the format modules on first call."""
    global _loaded
    if not _loaded:
        package = __name__.rsplit(".", 1)[0]
        for info in pkgutil.iter_modules(importlib.import_module(package).__path__):
            if info.name not in _HELPER_MODULES and not info.name.startswith("_"):
                importlib.import_module(f"{package}.{info.name}")
        _loaded = True
    return _FORMATS


def get_format(name: str, path: str | Path | None = None) -> Format:
    """The format called `name`; an unknown name is an InputError naming the choices."""
    try:
        return formats()[name]
    except KeyError:
        known = ", ".join(sorted(formats()))
        raise InputError(path or name, f"unknown format {name!r}; use one of: {known}") from None


def file_head(path: Path) -> str:
    """The first bytes of a file as text, for recognising its format (never fails on
    bytes): gunzipped when gzip, by the byte-order mark when there is one, else UTF-8."""
    raw = head_bytes(path)
    for bom, encoding in BYTE_ORDER_MARKS:
        if raw.startswith(bom):
            return raw[len(bom):].decode(encoding, errors="replace")
    return raw.decode("utf-8", errors="replace")


def head_bytes(path: Path) -> bytes:
    """The first bytes of a file, gunzipped when it is gzip (by its first bytes)."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(SNIFF_BYTES)
            if raw[:2] == GZIP_MAGIC:
                handle.seek(0)
                with gzip.open(handle, "rb") as unpacked:
                    raw = unpacked.read(SNIFF_BYTES)
    except FileNotFoundError:
        raise InputError(path, "file not found; check the path") from None
    except IsADirectoryError:
        raise InputError(path, "is a folder, not a file of records") from None
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(path, f"cannot read ({exc}); export the file again") from None
    return raw


def holds_no_text(path: Path) -> bool:
    """Whether a file is empty or holds only whitespace (read up to its first other
    character; gzip unpacked, a byte-order mark read as such)."""
    try:
        with open(path, "rb") as probe:
            gzipped = probe.read(2) == GZIP_MAGIC
        with (gzip.open if gzipped else open)(path, "rb") as handle:
            chunk = handle.read(SNIFF_BYTES)
            bom, encoding = next(((b, e) for b, e in BYTE_ORDER_MARKS if chunk.startswith(b)),
                                 (b"", None))
            chunk = chunk[len(bom):]
            while chunk:
                text = chunk.decode(encoding, errors="replace") if encoding else chunk
                if text.strip():
                    return False
                chunk = handle.read(SNIFF_BYTES)
    except (OSError, EOFError, zlib.error):
        return False  # not readable: the reader says what is wrong with it
    return True


def extension_of(path: Path) -> str:
    """Lower-case extension, looking through a trailing `.gz`."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz" and len(suffixes) > 1:
        return suffixes[-2]
    return suffixes[-1] if suffixes else ""


def detect_format(path: str | Path) -> str:
    """Name of the format of `path`: by its extension, and by its first bytes when the
    extension is shared (`.xml`: EndNote or PubMed; `.txt`: MEDLINE or RIS) or unknown."""
    path = Path(path)
    head = file_head(path)
    ext = extension_of(path)
    claimed = [f for f in formats().values() if ext in f.extensions]
    if len(claimed) == 1:
        return claimed[0].name
    candidates = claimed or list(formats().values())
    for fmt in candidates:
        if fmt.looks_like(head):
            return fmt.name
    raw = head_bytes(path)
    if not any(raw.startswith(bom) for bom, _ in BYTE_ORDER_MARKS) and binary_problem(raw):
        raise InputError(path, binary_problem(raw))
    if claimed:
        names = ", ".join(f.name for f in claimed)
        raise InputError(path, f"the content matches none of the {ext} formats ({names}); "
                               "check that it is a bibliographic export", line=1)
    known = ", ".join(sorted({e for f in formats().values() for e in f.extensions}))
    raise InputError(path, f"cannot tell the record format of this file; use one of the "
                           f"extensions {known}")


def first_element_name(head: str) -> str | None:
    """Local name of the root element of an XML document's first bytes."""
    body = re.sub(r"<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>]*>", "", head, flags=re.DOTALL)
    match = re.search(r"<([A-Za-z_][\w.:-]*)", body)
    return match.group(1).rsplit(":", 1)[-1] if match else None
