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
    assert counts == {"with_pmcid": 2, "fetched": 0, "present": 2, "retrieved": 2,
                      "not_retrieved": 0}
    assert len(eutils.requests) == sent
    assert (folder / "manifest.json").read_bytes() == manifest      # rerun: same bytes
    assert [p.kind for p in read_full_text(folder / "PMC8435807.xml")] == ["body"]


def test_empty_or_error_answers_from_pmc_are_counted_as_not_retrieved(tmp_path, eutils):
    """PMC answers an id it cannot serve with an empty set, an <error> or front matter
    alone: none is a full text, each is named in the manifest and counted as not retrieved."""
    eutils.pmc_articles["7000001"] = b'<error id="7000001">Cannot get document</error>'
    eutils.pmc_articles["7000002"] = (b'<article><front><article-meta><title-group><article-title>'
                                      b'Closed</article-title></title-group></article-meta>'
                                      b'</front></article>')
    records = [new_record("test", pmid=str(n), pmcid=f"PMC{pmc}", title=f"Article {n}")
               for n, pmc in ((1, "9000001"), (2, "7000001"), (3, "7000002"), (4, "7000003"))]
    path = tmp_path / "included.jsonl"
    write_jsonl(path, records)
    counts = fetch_full_texts(path, tmp_path / "fulltext")
    assert (counts["with_pmcid"], counts["retrieved"], counts["not_retrieved"]) == (4, 1, 3)
    manifest = json.loads((tmp_path / "fulltext" / "manifest.json").read_text("utf-8"))
    reasons = {a["pmcid"]: a["reason"] for a in manifest["articles"] if not a["retrieved"]}
    assert reasons == {
        "PMC7000001": "PMC answered with an error: Cannot get document",
        "PMC7000002": "PMC sent the article without its body (the publisher does not allow "
                      "the XML)",
        "PMC7000003": "PMC sent no article (not in the open-access subset, or withdrawn)"}
    assert (manifest["sought"], manifest["retrieved"], manifest["not_retrieved"]) == (4, 1, 3)

    from cmosynth.report.prisma import prisma_counts, prisma_csv_rows

    topic_dir = tmp_path / "outputs" / "t"
    (topic_dir / "extract").mkdir(parents=True)
    (tmp_path / "fulltext").rename(topic_dir / "extract" / "fulltext")
    (topic_dir / "dedup").mkdir()
    write_jsonl(topic_dir / "dedup" / "records.jsonl",
                [{**r, "duplicate_of": None} for r in records])
    (topic_dir / "screen").mkdir()
    with open(topic_dir / "screen" / "screening.csv", "w", encoding="utf-8") as handle:
        handle.write("record_id,rule_decision,rule_reason,decision,decided_by\n")
        handle.writelines(f"{r['record_id']},,,include,reviewer\n" for r in records)
    n = {row["data"]: row["n"] for row in prisma_csv_rows(prisma_counts(topic_dir))}
    assert (n["dbr_sought_reports"], n["dbr_notretrieved_reports"], n["dbr_assessed"]) == (4, 3, 1)


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
