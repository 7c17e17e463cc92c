"""Exporters: RIS, CSV (for ASReview LAB and Rayyan) and JSONL, and `cmosynth convert`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from cmosynth.errors import InputError
from cmosynth.imports import read_records_file, write_records_file
from conftest import FIXTURES, shared_path

IMPORTS = FIXTURES / "imports"
#: ASReview LAB's column names (data format docs) and Rayyan's CSV template.
ASREVIEW_COLUMNS = {"title", "abstract", "authors", "doi", "keywords", "year", "label_included"}
RAYYAN_COLUMNS = ["key", "title", "authors", "journal", "issn", "volume", "issue", "pages",
                  "year", "publisher", "url", "abstract", "notes", "doi", "keywords"]


def what_people_compare(records: list[dict]) -> list[tuple]:
    return [(r["title"], r["doi"], r["year"], tuple(r["authors"])) for r in records]


def mixed_exports() -> list[dict]:
    """Records from four real or hand-written exports of different formats."""
    return [
        *read_records_file(shared_path("benchmarks", "dedup", "iebh_copper", "copper.xml")),
        *read_records_file(shared_path("eutils", "biopython", "medline_text",
                                       "pubmed_result2.txt")),
        *read_records_file(IMPORTS / "ovid_embase.ris"),
        *read_records_file(IMPORTS / "accents.bib"),
    ]


@pytest.mark.parametrize("extension", [".ris", ".csv", ".jsonl"])
def test_round_trip_keeps_titles_dois_years_and_authors(tmp_path, extension):
    records = mixed_exports()
    path = tmp_path / f"records{extension}"
    assert write_records_file(path, records) == len(records)
    again = list(read_records_file(path))
    assert what_people_compare(again) == what_people_compare(records)


def test_round_trip_keeps_pmids_and_record_ids_through_jsonl_and_ris(tmp_path):
    records = mixed_exports()
    for extension in (".jsonl", ".ris"):
        path = tmp_path / f"records{extension}"
        write_records_file(path, records)
        again = list(read_records_file(path))
        assert [r["pmid"] for r in again] == [r["pmid"] for r in records]
    jsonl = list(read_records_file(tmp_path / "records.jsonl"))
    assert [r["record_id"] for r in jsonl] == [r["record_id"] for r in records]


def test_csv_export_opens_in_pandas_with_asreview_and_rayyan_columns(tmp_path):
    records = list(read_records_file(IMPORTS / "ovid_embase.ris"))
    records[0]["decision"] = "include"
    records[1]["decision"] = "exclude"
    path = tmp_path / "for_screening.csv"
    write_records_file(path, records)
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert list(table.columns[:len(RAYYAN_COLUMNS)]) == RAYYAN_COLUMNS
    assert ASREVIEW_COLUMNS <= set(table.columns)
    assert list(table["label_included"]) == ["1", "0", ""]
    assert table.loc[1, "authors"] == "Smith, Jane; Doe, Alex"
    assert table.loc[0, "url"] == "https://doi.org/10.5555/hex.2019.0042"
    assert table.loc[1, "pmid"] == "30123456"
    assert list(table["key"]) == [r["record_id"] for r in records]


def test_ris_export_writes_the_usual_tags_one_record_per_er(tmp_path):
    (record,) = read_records_file(IMPORTS / "accents.bib")
    record["decision"] = "include"
    path = tmp_path / "included.ris"
    write_records_file(path, [record])
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "TY  - JOUR"
    assert "AU  - Müller, Jörg" in lines
    assert "SP  - 12" in lines and "EP  - 19" in lines
    assert "DO  - 10.5555/rsp.2019.53.12" in lines
    assert "ID  - doi:10.5555/rsp.2019.53.12" in lines
    assert "N1  - ASReview_relevant" in lines  # ASReview LAB reads this back as a label
    assert [line for line in lines if line.startswith("ER")] == ["ER  - "]


def test_unknown_output_extension_is_refused_before_writing(tmp_path):
    with pytest.raises(InputError, match=r"\.ris"):
        write_records_file(tmp_path / "records.docx", [])
    assert not list(tmp_path.iterdir())


def _cmosynth() -> list[str]:
    exe = Path(sys.executable).with_name("cmosynth")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "cmosynth"]


def test_convert_cli_merges_several_exports_into_one_csv(tmp_path):
    output = tmp_path / "all.csv"
    done = subprocess.run(
        [*_cmosynth(), "convert", str(IMPORTS / "ovid_embase.ris"),
         str(IMPORTS / "semicolon_cp1252.csv"), str(IMPORTS / "latin1.nbib"), "-o", str(output)],
        capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(output, dtype=str, keep_default_na=False)
    assert len(table) == 6
    assert "Müller, Jürgen" in set(table["authors"])
    assert "Ó Sé, Aoife" in table.loc[3, "authors"]
