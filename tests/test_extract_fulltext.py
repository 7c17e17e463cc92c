"""Full texts from PMC: fetched through the local E-utilities server, JATS sections read,
and CMOCs extracted from results, discussion and conclusions with a `fulltext:` section."""

from __future__ import annotations

import csv
import json

import pytest

from conftest import FIXTURES, shared_path
from cmosynth.cli import main
from cmosynth.extract import extract_records, ExtractOptions
from cmosynth.extract.codebook import ROLES, load_codebook
from cmosynth.extract.fulltext import fetch_full_texts, parse_jats, read_full_text
from cmosynth.files import write_jsonl
from cmosynth.records import new_record

OWN_ARTICLE = FIXTURES / "extract" / "PMC9000001.xml"


@pytest.fixture
def eutils(monkeypatch, shared_data):
    from eutils_server import EutilsServer, load_pmc_articles

    articles = load_pmc_articles(shared_data)
    body = OWN_ARTICLE.read_bytes()
    articles["9000001"] = body[body.index(b"<article "):body.index(b"</pmc-articleset>")]
    with EutilsServer(pmc_articles=articles) as server:
        monkeypatch.setenv("NCBI_EUTILS_URL", server.url)
        monkeypatch.setenv("CMOSYNTH_NCBI_RATE", "50")
        yield server


def _records(tmp_path):
    records = [
        new_record("test", pmid="90000001", pmcid="PMC9000001",
                   title="Co-producing a community mental health service",
                   abstract="We report how staff and service users co-produced a service."),
        new_record("test", pmid="34527728", pmcid="PMC8435807", title="Author correction"),
        new_record("test", pmid="1", title="No PMC id here"),
    ]
    path = tmp_path / "included.jsonl"
    write_jsonl(path, records)
    return path, records


def test_real_pmc_response_without_sections_is_read_as_body():
    paragraphs = read_full_text(shared_path("eutils", "biopython", "efetch_pmc.xml"))
    assert [p.kind for p in paragraphs] == ["body"]
    assert "corrected to" in paragraphs[0].text and "\n" not in paragraphs[0].text


def test_jats_reader_keeps_results_discussion_and_conclusions_only():
    paragraphs = list(parse_jats(OWN_ARTICLE.read_bytes()))
    assert [p.kind for p in paragraphs] == ["results", "results", "discussion", "conclusions"]
    assert paragraphs[1].title == "Training"          # a subsection inherits its parent's kind
    assert not any("interviewed" in p.text or "waiting lists" in p.text for p in paragraphs)


def test_full_texts_are_fetched_once_and_reruns_send_nothing(tmp_path, eutils):
    records, _ = _records(tmp_path)
    folder = tmp_path / "fulltext"
    assert main(["fulltext", str(records), "-o", str(folder)]) == 0
    assert sorted(p.name for p in folder.iterdir()) == [
        "PMC8435807.xml", "PMC9000001.xml", "manifest.json"]
    manifest = (folder / "manifest.json").read_bytes()
    listed = {a["pmcid"]: a for a in json.loads(manifest)["articles"]}
    assert listed["PMC9000001"]["sections"] == ["conclusions", "discussion", "results"]
    assert listed["PMC8435807"]["sections"] == ["body"]
    assert {r.params["db"] for r in eutils.requests_to("efetch")} == {"pmc"}
    sent = len(eutils.requests)
    counts = fetch_full_texts(records, folder)
    assert counts == {"with_pmcid": 2, "fetched": 0, "present": 2}
    assert len(eutils.requests) == sent
    assert (folder / "manifest.json").read_bytes() == manifest      # rerun: same bytes
    assert [p.kind for p in read_full_text(folder / "PMC8435807.xml")] == ["body"]


def test_cmocs_from_full_text_carry_their_section_and_verbatim_quotes(tmp_path):
    records, recs = _records(tmp_path)
    folder = tmp_path / "fulltext"
    folder.mkdir()
    (folder / "PMC9000001.xml").write_bytes(OWN_ARTICLE.read_bytes())
    codebook = load_codebook()
    rows = extract_records(recs, codebook, ExtractOptions(full_text_dir=folder))
    paragraphs = [p.text for p in read_full_text(folder / "PMC9000001.xml")]
    full = [r for r in rows if r["section"].startswith("fulltext:")]
    assert {r["section"] for r in full} >= {"fulltext:results", "fulltext:discussion"}
    for row in full:
        for role in ROLES:
            if row[f"{role}_quote"]:
                assert any(row[f"{role}_quote"] in p for p in paragraphs)
    assert not [r for r in rows if r["section"] == "fulltext:methods"]
    without = extract_records(recs, codebook)
    assert not [r for r in without if r["section"].startswith("fulltext")]

    output = tmp_path / "cmo.csv"
    assert main(["extract", str(records), "--full-text", str(folder), "-o", str(output)]) == 0
    with output.open(encoding="utf-8") as handle:
        assert any(r["section"] == "fulltext:results" for r in csv.DictReader(handle))
