"""Where reviewer-owned files live, and how a person's file is added to without loss.

Four kinds of file belong to reviewers: screening decisions (`screen.decisions`), pair
decisions (`dedup.overrides`), sentence coding (`extract.coding`) and the configurations
a reviewer linked by hand (`extract.configurations`). The pipeline reads them and never
writes them; people write them by hand or through the workspace (`cmosynth lab`).

Each key holds a path, a list of paths, or patterns with `*`. Left empty (null), it is
the pattern `reviews/<topic>/<kind>/*.csv`, relative to the folder you run from, so a
file the workspace writes there is read by the next run without editing the topic. An
empty list means no files at all. One file per reviewer: a pattern's `*` is the
reviewer's name, and the reviewer named `consensus` settles disagreements.

`append_rows` adds rows to a person's file atomically: the file as it is on disk now
(hand edits included, in its own column order, encoding and line ends) is copied with
the new rows into a temporary file that then replaces it, under a lock, so a crash
leaves the old file or the new one and two writers of one file take turns.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from filelock import FileLock

from cmosynth.errors import ConfigError, InputError
from cmosynth.files import atomic_write

#: kind -> (topic section, key, folder under reviews/<topic>/)
KINDS: dict[str, tuple[str, str, str]] = {
    "decisions": ("screen", "decisions", "screening"),
    "overrides": ("dedup", "overrides", "duplicates"),
    "coding": ("extract", "coding", "coding"),
    "configurations": ("extract", "configurations", "configurations"),
}
#: The columns the workspace writes into a new file of each kind.
COLUMNS: dict[str, tuple[str, ...]] = {
    "decisions": ("record_id", "decision", "reason", "reviewer"),
    "overrides": ("record_id_a", "record_id_b", "decision", "reviewer", "reason"),
    "coding": ("record_id", "sentence", "section", "roles", "concepts", "reviewer", "text"),
    "configurations": ("record_id", "cmoc", "theory_id", "context_sentence",
                       "mechanism_sentence", "outcome_sentence", "context", "mechanism",
                       "outcome", "summary", "reviewer"),
}
REVIEWS_FOLDER = "reviews"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}")


def topic_key(kind: str) -> str:
    section, key, _ = KINDS[kind]
    return f"{section}.{key}"


def patterns(topic: Mapping, kind: str) -> list[str]:
    """The topic's paths or patterns for one kind of reviewer file (null: the default)."""
    section, key, folder = KINDS[kind]
    value = topic.get(section, {}).get(key)
    if value is None:
        return [f"{REVIEWS_FOLDER}/{topic['name']}/{folder}/*.csv"]
    return [value] if isinstance(value, str) else list(value)


def reviewer_files(topic: Mapping, kind: str) -> list[Path]:
    """The files to read, in order: each named path (missing ones too, so that reading
    them says so), each pattern's matches sorted by name; no path twice."""
    files: dict[Path, None] = {}
    for pattern in patterns(topic, kind):
        if "*" in pattern:
            folder, glob = _split_pattern(pattern)
            if folder.is_dir():
                files.update(dict.fromkeys(sorted(p for p in folder.glob(glob) if p.is_file()
                                                  and not p.name.startswith("."))))
        elif pattern:
            files[Path(pattern)] = None
    return list(files)


def _split_pattern(pattern: str) -> tuple[Path, str]:
    """`reviews/t/screening/*.csv` -> (reviews/t/screening, `*.csv`): the folder part
    holds no `*`."""
    path = Path(pattern)
    return path.parent, path.name


def check_reviewer_name(name: str) -> str:
    """A reviewer's name is part of a file name: letters, digits, `_`, `.`, `-`."""
    if not _NAME.fullmatch(name or "") or ".." in name:
        raise ConfigError("command line", "--reviewer",
                          f"{name!r} cannot name a file: use letters, digits, _ . or - "
                          f"(at most 40), e.g. --reviewer alice")
    return name


def reviewer_file(topic: Mapping, kind: str, reviewer: str) -> Path:
    """The file that holds `reviewer`'s rows of one kind: the first pattern with `*`
    (the name put in its place), else a listed file named after the reviewer."""
    check_reviewer_name(reviewer)
    listed = patterns(topic, kind)
    for pattern in listed:
        if "*" in pattern:
            folder, glob = _split_pattern(pattern)
            if glob.count("*") == 1 and "*" not in str(folder):
                return folder / glob.replace("*", reviewer)
    for pattern in listed:
        if Path(pattern).stem == reviewer:
            return Path(pattern)
    raise ConfigError(topic.get("_path", "topic"), topic_key(kind),
                      f"names no file for reviewer {reviewer!r}: add a pattern such as "
                      f"{REVIEWS_FOLDER}/{topic['name']}/{KINDS[kind][2]}/*.csv (one file "
                      f"per reviewer), or leave the key empty for that default")


# --- adding to a person's file ---------------------------------------------------------
def _lock(path: Path) -> FileLock:
    return FileLock(str(path.parent / f".{path.name}.lock"), timeout=30)


def _read_text(path: Path) -> tuple[str, str]:
    """The file's text (BOM kept aside) and its encoding name for writing back."""
    data = path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8"), "utf-8-sig"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        raise InputError(path, "is not UTF-8 text; save it as UTF-8 (CSV UTF-8 in Excel) "
                               "before the workspace adds to it") from None


def _line_end(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


def _header(text: str, path: Path) -> list[str]:
    first = next(csv.reader(io.StringIO(text)), None)
    if not first:
        raise InputError(path, "has no header line; the workspace cannot add rows to it", line=1)
    return first


def append_rows(path: str | os.PathLike, rows: Sequence[Mapping[str, object]],
                columns: Sequence[str]) -> None:
    """Add `rows` at the end of the CSV at `path`, atomically, creating it with
    `columns` as header when absent. Rows follow the file's own header: a column the file
    lacks is added to the header of a file the workspace made, else refused."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _lock(path):
        text, encoding = _read_text(path) if path.exists() else ("", "utf-8")
        header = _header(text, path) if text.strip() else list(columns)
        lowered = [c.strip().lower() for c in header]
        missing = [c for c in columns if c not in lowered
                   and any(r.get(c) and not _droppable(c, r[c], path) for r in rows)]
        if missing:
            raise InputError(path, f"lacks column(s) {', '.join(missing)} that the workspace "
                                   f"writes; add them to the header line", line=1)
        end = _line_end(text)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator=end)
        if not text.strip():
            text = ""
            writer.writerow(header)
        elif not text.endswith(("\n", "\r")):
            out.write(end)
        for row in rows:
            writer.writerow([_cell(row.get(name, "")) for name in lowered])
        with atomic_write(path, encoding=encoding, newline="") as handle:
            handle.write(text + out.getvalue())


def _droppable(column: str, value: object, path: Path) -> bool:
    """Whether a file may lack this cell without losing what it says: the reviewer when it
    is the file's own name (readers take the name then), and the sentence's section and
    text, which only help a person read the row."""
    return column in ("section", "text") or (column == "reviewer" and value == path.stem)


def _cell(value: object) -> str:
    return "" if value is None else str(value)


def remove_last_row(path: str | os.PathLike, expected: Mapping[str, object]) -> bool:
    """Remove the file's last row when its cells match `expected` (an undo of the row
    just added); False, leaving the file alone, when the last row is another one (the
    file was edited by hand since)."""
    path = Path(path)
    if not path.exists():
        return False
    with _lock(path):
        text, encoding = _read_text(path)
        reader = csv.reader(io.StringIO(text))
        header = [c.strip().lower() for c in next(reader, [])]
        last, last_starts = None, 0
        while True:
            starts = reader.line_num
            row = next(reader, None)
            if row is None:
                break
            if any(cell.strip() for cell in row):
                last, last_starts = row, starts
        if last is None:
            return False
        cells = dict(zip(header, last))
        if any(cells.get(k, "").strip() != _cell(v).strip() for k, v in expected.items()):
            return False
        cut = 0   # the last row starts after its first `last_starts` physical lines
        for _ in range(last_starts):
            cut = text.index("\n", cut) + 1
        kept = text[:cut]
        with atomic_write(path, encoding=encoding, newline="") as handle:
            handle.write(kept)
        return True

def all_reviewer_files(topic: Mapping) -> dict[str, list[Path]]:
    """kind -> the files to read."""
    return {kind: reviewer_files(topic, kind) for kind in KINDS}


def reviewers_in(paths: Iterable[Path]) -> list[str]:
    """Reviewer names as the file names give them (the stem), sorted."""
    return sorted({p.stem for p in paths})
