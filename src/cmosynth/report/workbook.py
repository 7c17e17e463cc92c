"""review.xlsx: every table of a review in one workbook, one sheet per table.

Tables are streamed from their CSV files into the sheets (XlsxWriter in constant-memory
mode), so a review of 100,000 records writes its workbook in seconds, not minutes, and
the workbook's file date is fixed (SOURCE_DATE_EPOCH, else 1980-01-01) so that a rerun
on the same tables writes the same bytes.
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import xlsxwriter

from cmosynth.files import atomic_write
from cmosynth.report.prisma import PrismaCounts, prisma_csv_rows, read_search_logs

# (sheet name, file under the topic folder); absent files are skipped.
_TABLES = (
    ("Screening", "screen/screening.csv"),
    ("Theory evidence", "report/cmoc_table.csv"),
    ("CMOCs", "extract/cmo.csv"),
    ("CMOC summary", "synthesis/cmoc_summary.csv"),
    ("Theories", "synthesis/theory_status.csv"),
    ("Matrix", "synthesis/matrix.csv"),
    ("Coding conflicts", "extract/coding_conflicts.csv"),
    ("Duplicate pairs to review", "dedup/pairs_to_review.csv"),
)

#: Rows an Excel sheet holds, header included.
EXCEL_ROWS = 1_048_576
#: Rows read to size each column to its content.
_WIDTH_SAMPLE = 200


def _search_log_rows(topic_dir: Path) -> list[list[str]]:
    entries = [{"run": folder.name,
                **{k: json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else v
                   for k, v in entry.items()}}
               for folder, entry in read_search_logs(topic_dir)]
    columns = list(dict.fromkeys(key for entry in entries for key in entry))
    return [columns] + [[entry.get(c, "") for c in columns] for entry in entries]


def fit_sheet(rows: Iterable[list], source: str, limit: int = EXCEL_ROWS) -> Iterator[list]:
    """The rows (header first), or as many as a sheet holds with a last row saying how
    many rows are left out and where the whole table is: Excel refuses larger sheets."""
    rows = iter(rows)
    header = next(rows, None)
    if header is None:
        return
    yield header
    yield from itertools.islice(rows, limit - 2)
    last = next(rows, None)          # the row that fills the sheet, if it is the last
    if last is None:
        return
    left_out = sum(1 for _ in rows)
    if not left_out:
        yield last
    else:
        yield [f"... {left_out + 1:,} more rows: the whole table is {source}"]


def _workbook_date() -> dt.datetime:
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    if epoch.isdigit():
        return dt.datetime.fromtimestamp(int(epoch), dt.UTC).replace(tzinfo=None)
    return dt.datetime(1980, 1, 1)


def _write_sheet(book: xlsxwriter.Workbook, name: str, rows: Iterable[list]) -> None:
    """One sheet: header frozen, columns as wide as their first rows' content (8-60)."""
    sheet = book.add_worksheet(name)
    rows = iter(rows)
    head = list(itertools.islice(rows, _WIDTH_SAMPLE))
    if head:
        for column in range(len(head[0])):
            width = max((len(str(row[column])) for row in head if column < len(row)), default=8)
            sheet.set_column(column, column, min(max(width, 8), 60))
    sheet.freeze_panes(1, 0)
    for number, row in enumerate(itertools.chain(head, rows)):
        for column, value in enumerate(row):
            if value is None or value == "":
                continue
            if isinstance(value, str):
                sheet.write_string(number, column, value)
            else:
                sheet.write(number, column, value)


def _csv_rows(path: Path) -> Iterator[list[str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        yield from csv.reader(handle)


def write_review_workbook(topic_dir: Path, counts: PrismaCounts, path: Path) -> None:
    """Write the workbook atomically: the PRISMA counts, the search log, then every table
    of the review that exists, each cut with a note at Excel's row limit."""
    prisma = [["data", "description", "n"]] + [[row["data"], row["description"], row["n"]]
                                               for row in prisma_csv_rows(counts)]
    with atomic_write(path, "wb") as handle:
        book = xlsxwriter.Workbook(handle, {"constant_memory": True,
                                            "strings_to_numbers": False,
                                            "strings_to_formulas": False,
                                            "strings_to_urls": False})
        book.set_properties({"created": _workbook_date()})
        _write_sheet(book, "PRISMA", prisma)
        _write_sheet(book, "Search log", _search_log_rows(topic_dir))
        for name, relative in _TABLES:
            source = topic_dir / relative
            if source.exists() and source.stat().st_size:
                _write_sheet(book, name, fit_sheet(_csv_rows(source), relative))
        book.close()
