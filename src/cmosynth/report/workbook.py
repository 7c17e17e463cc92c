"""review.xlsx: every table of a review in one workbook, one sheet per table."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from cmosynth.files import atomic_write
from cmosynth.report.prisma import PrismaCounts, prisma_csv_rows, read_search_logs

# (sheet name, file under the topic folder); absent files are skipped.
_TABLES = (
    ("Screening", "screen/screening.csv"),
    ("CMOCs", "extract/cmo.csv"),
    ("CMOC summary", "synthesis/cmoc_summary.csv"),
    ("Theories", "synthesis/theory_status.csv"),
    ("Matrix", "synthesis/matrix.csv"),
    ("Coding conflicts", "extract/coding_conflicts.csv"),
    ("Duplicate pairs to review", "dedup/pairs_to_review.csv"),
)


def _search_log_frame(topic_dir: Path) -> pd.DataFrame:
    rows = []
    for folder, entry in read_search_logs(topic_dir):
        rows.append({"run": folder.name,
                     **{k: json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else v
                        for k, v in entry.items()}})
    return pd.DataFrame(rows)


#: Rows an Excel sheet holds, header included.
EXCEL_ROWS = 1_048_576


def fit_sheet(frame: pd.DataFrame, source: str, rows: int = EXCEL_ROWS) -> pd.DataFrame:
    """The table, or as much of it as a sheet holds with a last row saying how many rows
    are left out and where the whole table is: Excel refuses larger sheets."""
    if len(frame) < rows:
        return frame
    kept = frame.head(rows - 2).copy()
    note = {column: "" for column in frame.columns}
    note[frame.columns[0]] = (f"... {len(frame) - len(kept):,} more rows: the whole table "
                              f"is {source}")
    return pd.concat([kept, pd.DataFrame([note])], ignore_index=True)


def write_review_workbook(topic_dir: Path, counts: PrismaCounts, path: Path) -> None:
    """Write the workbook atomically; columns are sized to their content for reading."""
    sheets = {"PRISMA": pd.DataFrame(prisma_csv_rows(counts))[["data", "description", "n"]],
              "Search log": _search_log_frame(topic_dir)}
    for name, relative in _TABLES:
        source = topic_dir / relative
        if source.exists() and source.stat().st_size:
            sheets[name] = fit_sheet(pd.read_csv(source, dtype=str, keep_default_na=False),
                                     relative)
    with atomic_write(path, "wb") as handle:
        with pd.ExcelWriter(handle, engine="openpyxl") as writer:
            for name, frame in sheets.items():
                frame.to_excel(writer, sheet_name=name, index=False)
                sheet = writer.sheets[name]
                sheet.freeze_panes = "A2"
                for column in sheet.columns:
                    width = max((len(str(c.value or "")) for c in column[:200]), default=8)
                    sheet.column_dimensions[column[0].column_letter].width = min(max(width, 8), 60)
