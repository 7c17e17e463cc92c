"""The Record contract: stable ids, normalised DOIs, complete fields, atomic files."""

from __future__ import annotations

import json
import os
import stat

import pytest

from cmosynth.errors import InputError
from cmosynth.files import atomic_write
from cmosynth.records import (RECORD_FIELDS, make_record_id, new_record, normalise_doi,
                              read_records, write_records)


@pytest.mark.parametrize("raw", [
    "10.1111/hex.13774", "https://doi.org/10.1111/HEX.13774", "doi:10.1111/hex.13774",
    "http://dx.doi.org/10.1111/hex.13774", " 10.1111/hex.13774. ",
])
def test_doi_forms_normalise_to_one(raw):
    assert normalise_doi(raw) == "10.1111/hex.13774"


def test_text_that_is_not_a_doi_is_dropped():
    assert normalise_doi("not a doi") is None
    assert normalise_doi("") is None


def test_record_id_prefers_pmid_then_doi_then_source():
    assert make_record_id("pubmed", pmid="32486987", doi="10.1/x") == "pmid:32486987"
    assert make_record_id("ris", doi="https://doi.org/10.1177/13558196") == "doi:10.1177/13558196"
    assert make_record_id("ris", source_id="17") == "ris:17"
    with pytest.raises(ValueError):
        make_record_id("ris")


def test_new_record_has_every_field_in_contract_order():
    record = new_record("pubmed", pmid="1", title="T", authors=["Cloke, Jane"])
    assert tuple(record) == RECORD_FIELDS
    assert record["mesh"] == [] and record["year"] is None
    with pytest.raises(TypeError):
        new_record("pubmed", pmid="1", titel="typo")


def test_records_round_trip_keeps_stage_fields(tmp_path):
    path = tmp_path / "records.jsonl"
    first = new_record("pubmed", pmid="1", title="Ünïcode title")
    first["duplicate_of"] = None
    write_records(path, [first])
    (back,) = list(read_records(path))
    assert back == first
    assert "Ünïcode" in path.read_text(encoding="utf-8")


def test_bad_jsonl_line_is_named(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"record_id": "a"}) + "\n{oops\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"bad\.jsonl:2"):
        list(read_records(path))


def test_failed_write_leaves_the_old_file_untouched(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text("old\n", encoding="utf-8")
    with pytest.raises(RuntimeError):
        with atomic_write(path) as handle:
            handle.write("half of the new")
            raise RuntimeError("interrupted")
    assert path.read_text(encoding="utf-8") == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]


def test_outputs_are_readable_by_the_team(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "screening.csv") as handle:
            handle.write("record_id\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "screening.csv").stat().st_mode) == 0o644
