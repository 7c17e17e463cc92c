"""The report stage: PRISMA counts agree with the stage tables; files a reviewer opens."""

from __future__ import annotations

import json
from html import unescape
from pathlib import Path

import pytest
from lxml import etree
from openpyxl import load_workbook

from conftest import read_csv, write_csv
from cmosynth.errors import InputError
from cmosynth.extract import CONFLICT_COLUMNS
from cmosynth.records import new_record, read_records, write_records
from cmosynth.report import report_topic
from cmosynth.report.flow_svg import render_flow_svg
from cmosynth.report.prisma import count_screening, prisma_counts, prisma_csv_rows

REPO = Path(__file__).resolve().parent.parent
SCREENING_COLUMNS = ["record_id", "rank", "score", "rule_decision", "rule_reason",
                     "reviewer_decision", "decision", "exclusion_reason", "decided_by"]


def screening_row(record_id, decision, decided_by, rule_decision="", rule_reason=""):
    return {"record_id": record_id, "rank": "", "score": "", "rule_decision": rule_decision,
            "rule_reason": rule_reason, "reviewer_decision": "", "decision": decision,
            "exclusion_reason": rule_reason, "decided_by": decided_by}


@pytest.fixture
def topic_dir(tmp_path) -> Path:
    """Stage outputs of a small review: 6 records from PubMed and an Embase export, one
    duplicate, one excluded by a rule, one by the reviewer, three included."""
    root = tmp_path / "outputs" / "tiny"
    records = [
        new_record("pubmed", pmid="1", title="Co-production in primary care", year=2020,
                   authors=["Cloke, Jane"], publication_types=["Journal Article"]),
        new_record("pubmed", pmid="2", title="Trust in partnerships", year=2021,
                   publication_types=["Journal Article", "Review"]),
        new_record("pubmed", pmid="3", title="A comment", year=2021,
                   publication_types=["Comment"]),
        new_record("pubmed", pmid="4", title="Knee surgery outcomes", year=2019),
        new_record("pubmed", pmid="5", title="Knowledge mobilisation with patients", year=2022),
        new_record("ris", source_id="7", title="Co-production in primary care", year=2020),
    ]
    for record in records:
        record["duplicate_of"] = None
    records[-1]["duplicate_of"] = "pmid:1"
    records[-1]["dup_rule"] = "title+authors+journal"
    write_records(root / "dedup" / "records.jsonl", records)
    write_csv(root / "screen" / "screening.csv", [
        screening_row("pmid:1", "include", "reviewer"),
        screening_row("pmid:2", "include", "reviewer"),
        screening_row("pmid:3", "exclude", "rule", "exclude", "publication type: Comment"),
        screening_row("pmid:4", "exclude", "reviewer"),
        screening_row("pmid:5", "include", "model"),
    ], SCREENING_COLUMNS)
    write_records(root / "screen" / "included.jsonl", [records[0], records[1], records[4]])
    (root / "screen" / "summary.json").write_text(json.dumps({"machine_made": False}))
    return root


def test_prisma_counts_follow_the_stage_tables(topic_dir):
    counts = prisma_counts(topic_dir)
    assert counts.database_results == {"PubMed": 5, "RIS export": 1}
    assert counts.identified == 6
    assert counts.duplicates == 1
    assert counts.excluded_automatic == {"publication type: Comment": 1}
    assert counts.records_screened == 4
    assert counts.records_excluded == 1
    assert counts.included == 3
    # identified = duplicates + automation exclusions + screened
    assert counts.identified == counts.duplicates + counts.excluded_automatic_total + 4


def test_prisma_csv_has_the_prisma2020_package_layout(topic_dir):
    rows = prisma_csv_rows(prisma_counts(topic_dir))
    assert list(rows[0]) == ["data", "node", "box", "description", "boxtext", "tooltips",
                             "url", "n"]
    n = {row["data"]: row["n"] for row in rows}
    assert n["database_results"] == 6 and n["duplicates"] == 1
    assert n["excluded_automatic"] == 1 and n["records_screened"] == 4
    assert n["new_studies"] == 3
    assert n["database_specific_results"] == "PubMed, 5; RIS export, 1"


def test_screening_table_without_contract_columns_is_named(tmp_path):
    path = tmp_path / "screening.csv"
    path.write_text("record_id,decision\npmid:1,include\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"screening\.csv:1: missing columns"):
        count_screening(path)


def test_flow_diagram_is_valid_svg_with_the_counts(topic_dir):
    svg = render_flow_svg(prisma_counts(topic_dir))
    root = etree.fromstring(svg.encode())
    text = " ".join(root.itertext())
    assert "Records identified from databases (n = 6)" in text
    assert "Duplicate records linked (n = 1)" in text
    assert "Studies included in review (n = 3)" in text


def test_report_files_are_written_and_say_who_screened(topic_dir, tmp_path):
    topic = {"name": "tiny", "title": "A tiny review", "description": "",
             "codebook": str(REPO / "config" / "codebooks" / "coproduction.yaml"),
             "search": {"imports": []}, "_path": "tiny.yaml"}
    report_dir = report_topic(topic, tmp_path / "outputs")
    html = (report_dir / "index.html").read_text(encoding="utf-8")
    assert "A tiny review" in html and "RAMESES 12" in html
    assert "machine-made" not in html  # reviewers decided here
    ris = (report_dir / "included.ris").read_text(encoding="utf-8")
    assert ris.count("ER  -") == 3
    workbook = load_workbook(report_dir / "review.xlsx", read_only=True)
    assert {"PRISMA", "Screening"} <= set(workbook.sheetnames)
    first = (report_dir / "PRISMA.csv").read_bytes()
    report_topic(topic, tmp_path / "outputs")
    assert (report_dir / "PRISMA.csv").read_bytes() == first
    manifest = json.loads((report_dir.parent / "manifest.json").read_text("utf-8"))
    assert manifest["versions"]["cmosynth"] and manifest["versions"]["onnxruntime"]
    assert manifest["role_model"]["method"] == "minilm-onnx-v1"
    assert len(manifest["role_model"]["sha256"]) == 64
    assert len(manifest["codebook"]["sha256"]) == 64
    assert manifest["counts"]["included"] == 3


def test_the_report_says_which_rule_linked_each_duplicate(topic_dir, tmp_path):
    write_csv(topic_dir / "dedup" / "pairs_to_review.csv",
              [{"record_id_a": "pmid:2", "record_id_b": "pmid:5", "reason": "similar"}],
              ("record_id_a", "record_id_b", "reason"))
    topic = {"name": "tiny", "title": "A tiny review", "description": "",
             "codebook": str(REPO / "config" / "codebooks" / "coproduction.yaml"),
             "search": {"imports": []}, "_path": "tiny.yaml"}
    html = (report_topic(topic, tmp_path / "outputs") / "index.html").read_text("utf-8")
    assert ("<tr><td><code>title+authors+journal</code></td><td>same title, authors and "
            "journal</td><td>1</td></tr>") in html
    assert "for a reviewer\n(1 pair)" in html


def test_machine_made_screening_is_said_plainly(topic_dir, tmp_path):
    (topic_dir / "screen" / "summary.json").write_text(json.dumps(
        {"machine_made": True,
         "machine_made_statement": "Screening was machine-made: no reviewer decisions.",
         "stopping_rule": {"sentence": "The stopping rule was not applied."}}))
    topic = {"name": "tiny", "title": "A tiny review", "description": "",
             "codebook": str(tmp_path / "missing.yaml"), "search": {"imports": []}}
    html = (report_topic(topic, tmp_path / "outputs") / "index.html").read_text("utf-8")
    assert html.count("Screening was machine-made") == 1
    assert "no reviewer decisions." in html
    assert "The stopping rule was not applied." in html


def test_the_report_says_how_much_of_the_coding_a_reviewer_did(topic_dir, tmp_path):
    topic = {"name": "tiny", "title": "A tiny review", "description": "",
             "codebook": str(REPO / "config" / "codebooks" / "coproduction.yaml"),
             "search": {"imports": []}}
    columns = ["record_id", "sentence", "roles", "method", "text"]
    rows = [{"record_id": f"pmid:{k}", "sentence": n, "roles": "", "method": "rules-v1+model-v3",
             "text": "A sentence."} for k in (1, 2, 5) for n in (1, 2)]
    write_csv(topic_dir / "extract" / "sentences.csv", rows, columns)
    html = (report_topic(topic, tmp_path / "outputs") / "index.html").read_text("utf-8")
    assert "Every sentence was machine-coded: no reviewer coding was given" in html
    rows[0]["method"] = rows[1]["method"] = rows[4]["method"] = "reviewer"
    write_csv(topic_dir / "extract" / "sentences.csv", rows, columns)
    html = (report_topic(topic, tmp_path / "outputs") / "index.html").read_text("utf-8")
    assert "A reviewer coded 3 of the 6 sentences (2 of 3 records;" in html
    assert "(a reviewer coded 3 of 6 sentences)" in html and "machine-coded: no" not in html

    rows[5]["method"] = "reviewers-disagree"
    write_csv(topic_dir / "extract" / "sentences.csv", rows, columns)
    (topic_dir / "extract" / "coding_agreement.json").write_text(json.dumps(
        {"reviewers": ["ann", "bob"], "sentences_coded": 4, "by_consensus": 1,
         "pairs": [{"reviewers": ["ann", "bob"], "sentences_both_coded": 3, "identical": 0.667,
                    "macro_f1": 0.8125, "f1": {},
                    "cohen_kappa": {"context": 0.7, "mechanism": None, "outcome": 0.55}}],
         "conflicts": 2, "conflicts_settled_by_consensus": 1,
         "coder": {"records": 2, "sentences": 3, "folds": 2, "macro_f1": 0.6,
                   "macro_f1_95": [0.41, 0.775],
                   "f1": {"context": 0.5, "mechanism": None, "outcome": 0.7}}}),
        encoding="utf-8")
    html = unescape((report_topic(topic, tmp_path / "outputs") / "index.html").read_text("utf-8"))
    assert "Reviewers (ann, bob) coded 4 of the 6 sentences (2 of 3 records;" in html
    assert ("ann and bob: macro F1 0.81 over 3 sentences (Cohen's kappa context 0.70, "
            "mechanism undefined, outcome 0.55)") in html
    assert ("2 sentences were coded differently, 1 settled by consensus; 1 not yet settled "
            "carry every role any reviewer gave") in html
    assert ("a coder trained without the record it codes (cross-fitted) agrees with the "
            "reviewers at macro F1 0.60 (95 % interval 0.41 to 0.78, resampling records) on "
            "the 3 sentences of 2 records reviewers coded; per role F1 context 0.50, "
            "mechanism undefined, outcome 0.70.") in html
    write_csv(topic_dir / "extract" / "coding_conflicts.csv",
              [{"record_id": "pmid:5", "sentence": 2, "roles": "", "reviewer": "consensus",
                "text": "A sentence.", "coded_by": "ann: context (ann.csv:3); bob: none"}],
              CONFLICT_COLUMNS)
    report_topic(topic, tmp_path / "outputs")
    sheet = load_workbook(tmp_path / "outputs" / "tiny" / "report" / "review.xlsx",
                          read_only=True)["Coding conflicts"]
    assert [c.value for c in next(sheet.iter_rows(min_row=2))][:4] == \
        ["pmid:5", "2", None, "consensus"]


def write_run(topic_dir: Path, name: str, maxdate: str, pmids: list[str]) -> None:
    run = topic_dir / "search" / name
    write_records(run / "records.jsonl", [new_record("pubmed", pmid=p, title=f"Record {p}")
                                          for p in pmids])
    (run / "search_log.json").write_text(json.dumps({
        "database": "PubMed", "query": "coproduction[tiab]", "query_hash": "abc",
        "window": {"mindate": "2020-01-01", "maxdate": maxdate}, "count": len(pmids),
        "records_retrieved": len(pmids), "slices": [], "finished": "2026-01-01T00:00:00"}))


def test_an_update_run_is_reported_as_what_is_new(topic_dir, tmp_path):
    write_run(topic_dir, "2020-01-01_2021-12-31_abc", "2021-12-31", ["1", "2", "3", "4"])
    write_run(topic_dir, "2021-12-31_2022-06-30_abc", "2022-06-30", ["4", "5"])
    topic = {"name": "tiny", "title": "A tiny review", "description": "",
             "codebook": str(tmp_path / "missing.yaml"), "search": {"imports": []}}
    html = (report_topic(topic, tmp_path / "outputs") / "index.html").read_text("utf-8")
    new_section = html.split("What is new in this update")[1].split("<h2>")[0]
    assert "2021-12-31_2022-06-30_abc" in new_section
    assert "found 1\nrecord that earlier runs had not" in new_section  # PMID 5, not 4
    assert "Knowledge mobilisation with patients" in new_section  # PMID 5 was included
    report_dir = tmp_path / "outputs" / "tiny" / "report"
    new_records = read_csv(report_dir / "new_records.csv")
    assert [(r["record_id"], r["decision"], r["decided_by"]) for r in new_records] == [
        ("pmid:5", "include", "model")]
    prisma = {row["data"]: row["n"] for row in read_csv(report_dir / "PRISMA.csv")}
    # The updated-review layout: two studies from the earlier version, one new.
    assert (prisma["previous_studies"], prisma["new_studies"], prisma["total_studies"]) == (
        "2", "1", "3")


def test_a_first_run_has_no_update_section(topic_dir, tmp_path):
    write_run(topic_dir, "2020-01-01_2021-12-31_abc", "2021-12-31", ["1", "2", "3", "4", "5"])
    topic = {"name": "tiny", "title": "A tiny review", "description": "",
             "codebook": str(tmp_path / "missing.yaml"), "search": {"imports": []}}
    html = (report_topic(topic, tmp_path / "outputs") / "index.html").read_text("utf-8")
    assert "What is new in this update" not in html


def test_an_empty_import_is_named_in_the_report(topic_dir, tmp_path):
    empty = tmp_path / "embase.ris"
    empty.write_text("", encoding="utf-8")
    topic = {"name": "tiny", "title": "A tiny review", "description": "",
             "codebook": str(REPO / "config" / "codebooks" / "coproduction.yaml"),
             "search": {"imports": [str(empty)]}, "_path": "tiny.yaml"}
    html = (report_topic(topic, tmp_path / "outputs") / "index.html").read_text("utf-8")
    assert "<code>embase.ris</code> (<strong>empty: it added no records</strong>)" in html


def test_a_table_longer_than_a_sheet_is_cut_with_a_note_naming_the_csv():
    from cmosynth.report.workbook import fit_sheet

    rows = [["record_id", "score"]] + [[f"pmid:{n}", "1"] for n in range(10)]
    cut = list(fit_sheet(rows, "dedup/pairs_to_review.csv", limit=6))
    assert len(cut) == 6 and cut[:5] == rows[:5]
    assert cut[-1] == ["... 6 more rows: the whole table is dedup/pairs_to_review.csv"]
    assert list(fit_sheet(rows, "x.csv", limit=11)) == rows


def test_record_text_is_escaped_everywhere_in_the_report(topic_dir, tmp_path):
    """Titles, journals, quotes and the topic's own words may hold markup: the report shows
    them as text, and no element or script they spell is created."""
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    records = list(read_records(topic_dir / "dedup" / "records.jsonl"))
    for record in records:
        record["title"] = f"{record['title']} {hostile}"
        record["journal"] = hostile
    write_records(topic_dir / "dedup" / "records.jsonl", records)
    write_records(topic_dir / "screen" / "included.jsonl",
                  [r for r in records if r["record_id"] in ("pmid:1", "pmid:2", "pmid:5")])
    topic = {"name": "tiny", "title": f"A review {hostile}", "description": hostile,
             "codebook": str(REPO / "config" / "codebooks" / "coproduction.yaml"),
             "search": {"imports": [], "pubmed": {"query": f"co-production {hostile}"}},
             "_path": "tiny.yaml"}
    html = (report_topic(topic, tmp_path / "outputs") / "index.html").read_text("utf-8")
    assert "<script" not in html.lower() and "<img src=x" not in html
    assert "&lt;script&gt;" in html
    root = etree.fromstring(html.encode(), etree.HTMLParser())
    assert not root.xpath("//script") and not root.xpath("//img[@onerror]")
