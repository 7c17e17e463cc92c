"""Import/export benchmark: reader speed on real exports against a baseline measured in
the same run, and whether the tools reviewers use read our exports back unchanged.

    python bench/imports.py

Baselines: the bare parsing library each reader wraps (Bio.Medline, pandas, lxml,
bibtexparser with its full LaTeX decoding); for RIS, rispy (the parser ASReview uses)
from its own virtualenv (/work/bench-venvs/rispy, or $RISPY_PYTHON). Interoperability:
ASReview LAB's own CSV and RIS readers (/work/bench-venvs/asreview, or
$ASREVIEW_PYTHON) on our exports. Tools that are not installed are skipped with a note.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import bibtexparser
import pandas as pd
from Bio import Medline
from bibtexparser.middlewares import LatexDecodingMiddleware
from lxml import etree

from cmosynth.imports import read_records_file, write_records_file

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("CMOSYNTH_SHARED_DATA", REPO.parent / "shared" / "data"))
RISPY_PYTHON = Path(os.environ.get("RISPY_PYTHON", "/work/bench-venvs/rispy/bin/python"))
ASREVIEW_PYTHON = Path(os.environ.get("ASREVIEW_PYTHON", "/work/bench-venvs/asreview/bin/python"))
REPEATS = 3

RISPY_SCRIPT = r"""
import json, sys, time, rispy
path = sys.argv[1]
start = time.perf_counter()
with open(path, encoding="utf-8") as handle:
    entries = rispy.load(handle)
seconds = time.perf_counter() - start
titles = [e.get("title") or e.get("primary_title") for e in entries]
print(json.dumps({"seconds": seconds, "titles": titles}))
"""

ASREVIEW_SCRIPT = r"""
import json, sys
from asreview.data import CSVReader, RISReader
reader = {"csv": CSVReader, "ris": RISReader}[sys.argv[2]]
records = reader.read_records(sys.argv[1], dataset_id="bench")
print(json.dumps([{"title": r.title, "doi": r.doi, "year": r.year,
                   "included": r.included} for r in records]))
"""


def best_seconds(task: Callable[[], object]) -> float:
    """Fastest of a few runs: the least disturbed measure of the same work."""
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        task()
        times.append(time.perf_counter() - start)
    return min(times)


def shared(*parts: str) -> Path:
    path = DATA.joinpath(*parts)
    if not path.exists():
        sys.exit(f"shared data not found: {path} (set CMOSYNTH_SHARED_DATA to ../shared/data)")
    return path


def report_speed(label: str, path: Path, baseline_label: str,
                 baseline: Callable[[], object]) -> None:
    count = sum(1 for _ in read_records_file(path))
    ours = best_seconds(lambda: list(read_records_file(path)))
    theirs = best_seconds(baseline)
    print(f"{label:<10} {count:>7,} records  cmosynth {count / ours:>9,.0f}/s  "
          f"{baseline_label} {count / theirs:>9,.0f}/s  time ratio cmosynth/baseline "
          f"{ours / theirs:5.2f}")


def medline_file(tmp: Path) -> Path:
    """The real MEDLINE samples repeated to 2,100 records, so timings are measurable."""
    parts = [shared("eutils", "biopython", "medline_text", f"pubmed_result{i}.txt")
             for i in range(1, 5)]
    parts.append(shared("eutils", "biopython", "legacy", "efetch2_pubmed_medline_text_2015.txt"))
    text = "\n\n".join(p.read_text(encoding="utf-8").strip("\n") for p in parts)
    path = tmp / "medline.nbib"
    path.write_text("\n\n".join([text] * 300) + "\n", encoding="utf-8")
    return path


def bibtex_full_decoding(path: Path) -> Callable[[], object]:
    """bibtexparser's documented route: LaTeX-decode every field of every entry."""
    return lambda: bibtexparser.parse_string(path.read_text(encoding="utf-8"),
                                             append_middleware=[LatexDecodingMiddleware()])


def speeds(tmp: Path) -> None:
    print("== Reader speed (best of 3; ratio < 1 means faster than the baseline) ==")
    bib = shared("corpus", "autistic-participatory-metrics", "corpus_autism_research.bib")
    report_speed("bibtex", bib, "bibtexparser+LaTeX", bibtex_full_decoding(bib))
    nbib = medline_file(tmp)
    report_speed("medline", nbib, "Bio.Medline",
                 lambda: list(Medline.parse(io.StringIO(nbib.read_text(encoding="utf-8")))))
    stroke = shared("benchmarks", "dedup", "stroke", "records_pre_merged.csv")
    report_speed("csv", stroke, "pandas.read_csv", lambda: pd.read_csv(stroke))
    copper = shared("benchmarks", "dedup", "iebh_copper", "copper.xml")
    report_speed("endnote", copper, "lxml.parse", lambda: etree.parse(str(copper)))


def exported_library(tmp: Path) -> tuple[list[dict], Path, Path]:
    """Records of three real exports, written by our RIS and CSV exporters."""
    records = [*read_records_file(shared("benchmarks", "dedup", "iebh_copper", "copper.xml")),
               *read_records_file(shared("benchmarks", "dedup", "stroke",
                                         "records_pre_merged.csv")),
               *read_records_file(shared("corpus", "autistic-participatory-metrics",
                                         "corpus_autism_research.bib"))]
    for number, record in enumerate(records):
        record["decision"] = ("include", "exclude", None)[number % 3]
    ris, table = tmp / "library.ris", tmp / "library.csv"
    write_records_file(ris, records)
    write_records_file(table, records)
    return records, ris, table


def run_tool(python: Path, script: str, *args: str) -> object | None:
    if not python.exists():
        print(f"  (skipped: {python} not found)")
        return None
    done = subprocess.run([str(python), "-c", script, *args], capture_output=True, text=True,
                          timeout=600)
    if done.returncode != 0:
        print(f"  (failed: {done.stderr.strip().splitlines()[-1:]})")
        return None
    return json.loads(done.stdout)


def ris_against_rispy(records: list[dict], ris: Path) -> None:
    print("== RIS: cmosynth reader against rispy on our own RIS export ==")
    result = run_tool(RISPY_PYTHON, RISPY_SCRIPT, str(ris))
    if result is None:
        return
    ours = best_seconds(lambda: list(read_records_file(ris)))
    same = sum(a == r["title"] for a, r in zip(result["titles"], records, strict=False))
    print(f"ris        {len(records):>7,} records  cmosynth {len(records) / ours:>9,.0f}/s  "
          f"rispy {len(records) / result['seconds']:>9,.0f}/s  time ratio cmosynth/rispy "
          f"{ours / result['seconds']:5.2f}")
    print(f"  rispy read {len(result['titles']):,} records; titles equal to ours: "
          f"{same:,}/{len(records):,}")


def asreview_reads_exports(records: list[dict], ris: Path, table: Path) -> None:
    print("== ASReview LAB reading our exports (its CSVReader and RISReader) ==")
    expected_labels = [{"include": 1, "exclude": 0}.get(r["decision"]) for r in records]
    for kind, path in (("csv", table), ("ris", ris)):
        rows = run_tool(ASREVIEW_PYTHON, ASREVIEW_SCRIPT, str(path), kind)
        if rows is None:
            continue
        titles = sum(row["title"] == r["title"] for row, r in zip(rows, records, strict=False))
        dois = sum((row["doi"] or None) == r["doi"] for row, r in zip(rows, records, strict=False))
        years = sum((int(row["year"]) if row["year"] else None) == r["year"]
                    for row, r in zip(rows, records, strict=False))
        labels = sum((None if row["included"] is None or row["included"] != row["included"]
                      else int(row["included"])) == want
                     for row, want in zip(rows, expected_labels, strict=False))
        print(f"  {kind}: {len(rows):,}/{len(records):,} records; equal titles {titles:,}, "
              f"DOIs {dois:,}, years {years:,}, labels {labels:,}")


def main() -> None:
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        speeds(tmp)
        records, ris, table = exported_library(tmp)
        ris_against_rispy(records, ris)
        asreview_reads_exports(records, ris, table)


if __name__ == "__main__":
    main()
