"""Writing outputs safely, and reading the files people write.

Every output goes to a temporary file in the same folder and is renamed into place
only when complete, so an interrupted run leaves either the old file or the new one.
A reviewer's CSV is read the same way everywhere, by `read_reviewer_csv`.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import gzip
import io
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from cmosynth.errors import InputError


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8",
                 newline: str | None = None) -> Iterator[IO[Any]]:
    """Open a temporary file beside `path`; rename it to `path` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    binary = "b" in mode
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes files private; outputs are not
    try:
        with os.fdopen(fd, mode, encoding=None if binary else encoding,
                       newline=None if binary else newline) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _remove_stale_parts(path)


def _remove_stale_parts(path: Path) -> None:
    """Temporary files of `path` left by a process killed while writing it: the file is
    whole now, so they are of no use (writers of one path never overlap: Snakemake gives
    each output one job, and reviewer files are written under a lock)."""
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.part"):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    with atomic_write(path, "wb") as handle:
        handle.write(data)


def write_gzip_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Gzip `data` into `path`, with mtime 0 so identical content gives identical bytes."""
    with atomic_write(path, "wb") as handle:
        with gzip.GzipFile(fileobj=handle, mode="wb", mtime=0) as gz:
            gz.write(data)


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict]) -> int:
    """Write one JSON object a line (UTF-8, keys in a fixed order); returns the row count."""
    count = 0
    with atomic_write(path) as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False, sort_keys=False))
            handle.write("\n")
            count += 1
    return count


def write_json(path: str | os.PathLike, obj: Any) -> None:
    with atomic_write(path) as handle:
        json.dump(obj, handle, ensure_ascii=False, indent=2)
        handle.write("\n")


def read_jsonl(path: str | os.PathLike) -> Iterator[dict]:
    """Yield the objects of a JSON Lines file; a bad line raises InputError naming it."""
    from cmosynth.errors import InputError

    with open(path, encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(path, f"not valid JSON ({exc.msg}); fix or remove this line",
                                 line=number) from None
            if not isinstance(obj, dict):
                raise InputError(path, "each line must be a JSON object", line=number)
            yield obj


def read_csv_rows(path: str | os.PathLike) -> list[dict]:
    """The rows of a CSV file a stage wrote, as dicts; none when the file is absent."""
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def read_reviewer_csv(path: str | os.PathLike, required: Iterable[str], *, not_found: str,
                      header: str) -> Iterator[tuple[int, dict[str, str]]]:
    """The rows of a CSV a reviewer owns (UTF-8, with or without BOM), each with the line
    it starts on: column names lower-cased, cells stripped, a missing cell empty.
    `not_found` and `header` say what to do when the file is missing or lacks a
    `required` column (InputError naming the file, and line 1 for the header); text that
    is not UTF-8, or not CSV (a NUL byte, a cell over the csv module's size limit), is an
    InputError naming the line."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError(path, not_found) from None
    except IsADirectoryError:
        raise InputError(path, "is a folder, not a CSV file; name the file itself") from None
    except OSError as exc:
        raise InputError(path, f"cannot read ({exc.strerror or exc})") from None
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(path, f"not UTF-8 (byte 0x{raw[exc.start]:02X}); save the file as "
                               "'CSV UTF-8'", line=raw.count(b"\n", 0, exc.start) + 1) from None
    if "\x00" in text:
        raise InputError(path, "holds a NUL character, so it is not a CSV text file (saved "
                               "as UTF-16 or as a spreadsheet?); save it as 'CSV UTF-8'",
                         line=text.count("\n", 0, text.index("\x00")) + 1)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    start = 1  # the line the row being read starts on
    try:
        columns = {(c or "").strip().lower(): c for c in reader.fieldnames or []}
        missing = [c for c in required if c not in columns]
        if missing:
            raise InputError(path, f"missing column(s) {', '.join(missing)}; {header}", line=1)
        start = reader.reader.line_num + 1
        for row in reader:
            yield start, {name: (row.get(key) or "").strip() for name, key in columns.items()}
            start = reader.reader.line_num + 1
    except csv.Error as exc:
        raise InputError(path, f"not readable as CSV ({exc}); check the quotes on the row "
                               "that starts here", line=start) from None
