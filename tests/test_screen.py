"""Screening stage: criteria rules, reviewer decisions, conflicts, cold start, screen_topic.

Records are real: co-production abstracts (participation_studies.bib) and unrelated
autism research abstracts (corpus_autism_research.bib), read in place from ../shared/data.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from pathlib import Path

import bibtexparser
import pytest
import yaml

from cmosynth.cli import main
from cmosynth.config import load_topic
from cmosynth.files import write_jsonl
from cmosynth.records import new_record, read_records
from cmosynth.screen import screen_topic
from cmosynth.errors import InputError
from cmosynth.screen.rules import criteria_rules, rule_exclusion
from cmosynth.screen.topicality import parse_query, topicality
from conftest import read_csv, shared_path

REPO = Path(__file__).resolve().parent.parent
#: The default topic's own PubMed query: the cold start is judged on what users run.
QUERY = load_topic(REPO / "config" / "topics" / "coproduction.yaml")["search"]["pubmed"]["query"]
OFF_TOPIC_WORDS = re.compile(r"particip|co-?produc|co-?design|involv|engag|stakeholder", re.I)


def bib_records(name: str, prefix: str, limit: int, on_topic: bool) -> list[dict]:
    """Records with title and abstract from one of the shared BibTeX corpora."""
    path = shared_path("corpus", "autistic-participatory-metrics", name)
    records = []
    for number, entry in enumerate(bibtexparser.parse_file(str(path)).entries):
        fields = {f.key.lower(): str(f.value) for f in entry.fields}
        title, abstract = fields.get("title"), fields.get("abstract")
        if not title or not abstract:
            continue
        if not on_topic and OFF_TOPIC_WORDS.search(f"{title} {abstract}"):
            continue
        year = int(fields["year"]) if fields.get("year", "").isdigit() else None
        records.append(dedup_record(f"{prefix}{number}", title, abstract, year=year))
        if len(records) == limit:
            break
    return records


def dedup_record(source_id: str, title: str, abstract: str = "", **fields) -> dict:
    record = new_record("test", source_id=source_id, title=title, abstract=abstract,
                        language=fields.pop("language", "eng"), **fields)
    record.update(duplicate_of=None, dup_rule=None, dup_score=None)
    return record


@pytest.fixture(scope="module")
def corpus() -> dict[str, list[dict]]:
    return {"on": bib_records("participation_studies.bib", "on", 15, on_topic=True),
            "off": bib_records("corpus_autism_research.bib", "off", 35, on_topic=False)}


def make_topic(tmp_path: Path, records: list[dict], screen: dict | None = None) -> dict:
    """A topic file and its dedup/records.jsonl under tmp_path/outputs."""
    data = {"name": "trial", "title": "Co-production in health care",
            "codebook": str(tmp_path / "no-codebook.yaml"),
            "search": {"pubmed": {"query": QUERY, "mindate": "2000"}},
            "screen": screen or {}}
    path = tmp_path / "trial.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    write_jsonl(tmp_path / "outputs" / "trial" / "dedup" / "records.jsonl", records)
    return load_topic(path)


def write_decisions(path: Path, rows: list[tuple]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["record_id", "decision", "reason", "reviewer"])
        writer.writerows(rows)
    return path


def screen_dir(tmp_path: Path) -> Path:
    return tmp_path / "outputs" / "trial" / "screen"


# --- criteria rules ------------------------------------------------------------------------
CRITERIA = {
    "years": {"min": 2000, "max": 2024},
    "languages": ["eng"],
    "exclude_publication_types": ["Editorial", "Comment"],
    "require_terms": [{"terms": ["health*", "care"], "fields": ["title", "abstract"],
                       "reason": "not about health or care"}],
    "exclude_terms": [{"terms": ["mice", "in vitro"], "fields": ["title"],
                       "reason": "animal or laboratory study"}],
}


def test_criteria_rules_exclude_each_record_with_its_reason():
    rules = criteria_rules(CRITERIA)
    eligible = dedup_record("1", "Co-producing health services with patients", year=2015)
    cases = {
        "publication type: Editorial": dedup_record("2", "Co-production in health care",
                                                    year=2015, publication_types=["Editorial"]),
        "language not eng": dedup_record("3", "Coproduction en santé", year=2015,
                                         language="fre"),
        "published outside 2000-2024": dedup_record("4", "Health care partnerships", year=1995),
        "not about health or care": dedup_record("5", "Co-design of urban parks", year=2015),
        "animal or laboratory study": dedup_record("6", "Health of mice in shared cages",
                                                   year=2015),
    }
    assert rule_exclusion(eligible, rules) is None
    for reason, record in cases.items():
        assert rule_exclusion(record, rules) == reason


def test_truncated_terms_match_word_forms_and_missing_data_never_excludes():
    rules = criteria_rules({"years": {"min": 2000}, "languages": ["eng"],
                            "require_terms": [{"terms": ["co-produc*"], "reason": "off topic"}]})
    assert rule_exclusion(dedup_record("1", "Co-produced services", year=None, language=""),
                          rules) is None
    assert rule_exclusion(dedup_record("2", "Produced services", year=2010), rules) == "off topic"


def test_rule_exclusions_are_counted_per_reason_for_prisma(tmp_path):
    records = [dedup_record(f"ok{i}", title, year=2010 + i) for i, title in enumerate([
        "Co-production of mental health services", "Patient and public involvement in care",
        "Co-designing primary care with patients", "Knowledge mobilisation in health care"])]
    records += [
        dedup_record("ed", "Co-production in health care: an editorial", year=2015,
                     publication_types=["Editorial"]),
        dedup_record("old", "Health care partnerships of the 1990s", year=1995),
        dedup_record("old2", "Co-production of health in 1990", year=1990),
    ]
    topic = make_topic(tmp_path, records, {"criteria": CRITERIA})
    summary = screen_topic(topic, outputs=tmp_path / "outputs")
    assert summary["excluded_by_automation"] == {
        "total": 3, "reasons": {"publication type: Editorial": 1,
                                "published outside 2000-2024": 2}}
    assert summary["records_screened"] == len(records) - 3
    rows = {r["record_id"]: r for r in read_csv(screen_dir(tmp_path) / "screening.csv")}
    assert rows["test:ed"]["decided_by"] == "rule"
    assert rows["test:ed"]["exclusion_reason"] == "publication type: Editorial"


# --- reviewer decisions ----------------------------------------------------------------------
def test_reviewer_decisions_override_rules_and_model(tmp_path, corpus):
    records = corpus["on"][:8] + corpus["off"][:12] + [
        dedup_record("ed", "Co-production in health care: an editorial", year=2015,
                     publication_types=["Editorial"])]
    on_id, off_id = corpus["on"][0]["record_id"], corpus["off"][0]["record_id"]
    decisions = write_decisions(tmp_path / "reviewer.csv", [
        ("test:ed", "Include", "editorial describes a programme", "ann"),
        (off_id, "yes", "", "ann"),
        (on_id, "0", "not a health service", "ann"),
    ])
    topic = make_topic(tmp_path, records, {"criteria": CRITERIA, "decisions": str(decisions)})
    summary = screen_topic(topic, outputs=tmp_path / "outputs")
    rows = {r["record_id"]: r for r in read_csv(screen_dir(tmp_path) / "screening.csv")}
    assert rows["test:ed"]["rule_decision"] == "exclude"
    assert (rows["test:ed"]["decision"], rows["test:ed"]["decided_by"]) == ("include", "reviewer")
    assert (rows[off_id]["decision"], rows[off_id]["decided_by"]) == ("include", "reviewer")
    assert rows[on_id]["decision"] == "exclude"
    assert rows[on_id]["exclusion_reason"] == "not a health service"
    included = {r["record_id"] for r in read_records(screen_dir(tmp_path) / "included.jsonl")}
    assert included == {"test:ed", off_id}
    assert summary["machine_made"] is False
    # The reviewer's screening order comes first in the ranking.
    assert [rows[r]["rank"] for r in ("test:ed", off_id, on_id)] == ["1", "2", "3"]


def test_pipeline_never_writes_the_reviewer_file(tmp_path, corpus):
    records = corpus["on"][:5] + corpus["off"][:5]
    decisions = write_decisions(tmp_path / "reviewer.csv", [
        (records[0]["record_id"], "include", "", "ann"),
        (records[6]["record_id"], "exclude", "autism genetics", "ann")])
    before = hashlib.sha256(decisions.read_bytes()).hexdigest()
    mtime = decisions.stat().st_mtime_ns
    topic = make_topic(tmp_path, records, {"decisions": [str(decisions)]})
    screen_topic(topic, outputs=tmp_path / "outputs")
    screen_topic(topic, outputs=tmp_path / "outputs")
    assert hashlib.sha256(decisions.read_bytes()).hexdigest() == before
    assert decisions.stat().st_mtime_ns == mtime


@pytest.mark.parametrize("row, complaint", [
    (("test:on0", "perhaps", "", "ann"), "decision 'perhaps' is not one of"),
    (("pmid:999999", "include", "", "ann"), "unknown record_id 'pmid:999999'"),
])
def test_bad_decision_file_exits_2_with_one_line_naming_file_and_line(tmp_path, capsys, row,
                                                                       complaint):
    records = [dedup_record("on0", "Co-production in health care", year=2015),
               dedup_record("on1", "Patient and public involvement in health", year=2016)]
    decisions = write_decisions(tmp_path / "reviewer.csv",
                                [("test:on1", "exclude", "", "ann"), row])
    make_topic(tmp_path, records, {"decisions": str(decisions)})
    code = main(["screen", str(tmp_path / "trial.yaml"), "--outputs", str(tmp_path / "outputs")])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("cmosynth: error:")]
    assert code == 2
    assert len(errors) == 1
    assert f"{decisions}:3:" in errors[0] and complaint in errors[0]
    assert "Traceback" not in err
    assert not (screen_dir(tmp_path) / "screening.csv").exists()


def test_two_reviewers_give_kappa_and_a_conflicts_table(tmp_path, corpus):
    records = corpus["on"][:4] + corpus["off"][:6]
    ids = [r["record_id"] for r in records]
    # A and B agree on 3 of 4 records; A includes 2 of 4, B includes 1 of 4:
    # po = 3/4, pe = (2/4)(1/4) + (2/4)(3/4) = 1/2, kappa = (po - pe) / (1 - pe) = 1/2.
    first = write_decisions(tmp_path / "a.csv", [(ids[0], "include", "", "A"),
                                                 (ids[1], "include", "", "A"),
                                                 (ids[4], "exclude", "off topic", "A"),
                                                 (ids[5], "exclude", "off topic", "A")])
    second = write_decisions(tmp_path / "b.csv", [(ids[0], "yes", "", "B"),
                                                  (ids[1], "no", "no health service", "B"),
                                                  (ids[4], "no", "", "B"),
                                                  (ids[5], "no", "", "B")])
    topic = make_topic(tmp_path, records, {"decisions": [str(first), str(second)]})
    summary = screen_topic(topic, outputs=tmp_path / "outputs")
    pair = summary["agreement"]["pairs"][0]
    assert pair["reviewers"] == ["A", "B"] and pair["records_both_screened"] == 4
    assert pair["cohen_kappa"] == pytest.approx(0.5)
    conflicts = read_csv(screen_dir(tmp_path) / "conflicts.csv")
    assert {r["record_id"] for r in conflicts} == {ids[1]}
    assert {(r["reviewer"], r["decision"]) for r in conflicts} == {("A", "include"),
                                                                   ("B", "exclude")}
    # An unsettled conflict goes forward to full text.
    rows = {r["record_id"]: r for r in read_csv(screen_dir(tmp_path) / "screening.csv")}
    assert rows[ids[1]]["decision"] == "include"

    consensus = write_decisions(tmp_path / "c.csv", [(ids[1], "exclude", "agreed", "consensus")])
    topic = make_topic(tmp_path, records, {"decisions": [str(first), str(second),
                                                         str(consensus)]})
    summary = screen_topic(topic, outputs=tmp_path / "outputs")
    rows = {r["record_id"]: r for r in read_csv(screen_dir(tmp_path) / "screening.csv")}
    assert rows[ids[1]]["decision"] == "exclude"
    assert summary["agreement"]["conflicts_settled_by_consensus"] == 1


# --- cold start and machine-made screening ---------------------------------------------------
def test_cold_start_ranks_co_production_records_above_unrelated_ones(tmp_path, corpus):
    records = corpus["on"] + corpus["off"]
    topic = make_topic(tmp_path, records)
    screen_topic(topic, outputs=tmp_path / "outputs")
    rank = {r["record_id"]: int(r["rank"])
            for r in read_csv(screen_dir(tmp_path) / "screening.csv")}
    on = [rank[r["record_id"]] for r in corpus["on"]]
    off = [rank[r["record_id"]] for r in corpus["off"]]
    above = sum(a < b for a in on for b in off) / (len(on) * len(off))
    # measured 0.924 (deterministic); the floor sits just below
    assert above >= 0.91, f"on-topic records ranked above unrelated ones in {above:.0%} of pairs"


def test_without_reviewer_decisions_screening_is_machine_made_and_says_so(tmp_path, corpus):
    records = corpus["on"][:10] + corpus["off"][:20]
    summary = screen_topic(make_topic(tmp_path, records), outputs=tmp_path / "outputs")
    folder = screen_dir(tmp_path)
    rows = {r["record_id"]: r for r in read_csv(folder / "screening.csv")}
    assert summary["machine_made"] is True
    assert "satisfies the topic's search query" in summary["machine_made_statement"]
    included = [r["record_id"] for r in read_records(folder / "included.jsonl")]
    assert included and summary["included_by_model"] == len(included)
    assert not set(included) & {r["record_id"] for r in corpus["off"]}, \
        "no unrelated autism research record is included"
    excluded = [r for r in rows.values() if r["decision"] == "exclude"]
    assert excluded and all(r["exclusion_reason"].startswith("off topic: ") for r in excluded)
    assert summary["topicality"] == {
        verdict: sum(1 for r in rows.values() if r["decision"] == decision)
        for verdict, decision in (("cannot tell", ""), ("off topic", "exclude"),
                                  ("on topic", "include")) if any(
            r["decision"] == decision for r in rows.values())}
    # Machine-made decisions are provisional: every record still waits for a reviewer,
    # the records the query settles first.
    waiting = read_csv(folder / "to_screen.csv")
    assert [r["record_id"] for r in waiting] == sorted(rows, key=lambda i: int(rows[i]["rank"]))
    order = [rows[r["record_id"]]["decision"] for r in waiting]
    assert order == sorted(order, key=["include", "", "exclude"].index)
    assert summary["stopping_rule"]["applicable"] is False


TOPICALITY_CASES = {
    "both blocks in the abstract": (
        dict(title="Working together", abstract="We evaluated co-production of mental "
             "health services with service users."), "on topic"),
    "truncated and hyphen-free spelling": (
        dict(title="Codesigning a discharge pathway", abstract="Staff and patients "
             "codesigned the pathway in a district general hospital's health care teams."),
        "on topic"),
    "only the setting block": (
        dict(title="Atrial fibrillation screening in primary care", abstract="Opportunistic "
             "screening of patients aged 65 or more in health care practices."), "off topic"),
    "only through MeSH headings": (
        dict(title="Shared decisions about dialysis", abstract="Interviews with nephrologists "
             "about health care choices.", mesh=["Patient Participation/methods"]),
        "cannot tell"),
    "no abstract": (dict(title="Partnership in practice", abstract=""), "cannot tell"),
    "a NOT term excludes": (
        dict(title="Co-creation in marketing", abstract="Brand co-creation with customers "
             "of health insurers."), "off topic"),
}


@pytest.mark.parametrize("case", sorted(TOPICALITY_CASES))
def test_topicality_is_the_topic_query_on_the_record_itself(case):
    query = f"({QUERY}) NOT brand[tiab]"
    fields, expected = TOPICALITY_CASES[case]
    assert topicality(parse_query(query), fields).verdict == expected


def test_a_query_of_three_blocks_missing_one_is_left_for_a_reviewer():
    tree = parse_query('(nurse*[tiab]) AND ("care home*"[tiab]) AND (falls[tiab] OR fall[tiab])')
    record = {"title": "Nurse staffing in care homes", "abstract": "Nurses in care homes."}
    assert topicality(tree, record).verdict == "cannot tell"
    assert topicality(tree, dict(record, abstract="Nurses and falls in care homes.")).verdict \
        == "on topic"


def test_an_unreadable_query_is_named_in_one_line(tmp_path):
    topic = make_topic(tmp_path, [dedup_record("1", "A title", "An abstract")])
    topic["search"]["pubmed"]["query"] = "(co-production[tiab] AND health"
    with pytest.raises(InputError, match="search.pubmed.query: unbalanced brackets"):
        screen_topic(topic, outputs=tmp_path / "outputs")


def test_with_reviewer_decisions_the_rest_waits_for_the_reviewer_in_priority_order(tmp_path,
                                                                                   corpus):
    records = corpus["on"][:10] + corpus["off"][:20]
    decisions = write_decisions(tmp_path / "ann.csv", [
        (corpus["on"][0]["record_id"], "include", "", ""),
        (corpus["off"][0]["record_id"], "exclude", "autism biology", ""),
        (corpus["on"][1]["record_id"], "maybe", "", "")])
    topic = make_topic(tmp_path, records, {"decisions": str(decisions)})
    summary = screen_topic(topic, outputs=tmp_path / "outputs")
    folder = screen_dir(tmp_path)
    waiting = read_csv(folder / "to_screen.csv")
    assert len(waiting) == len(records) - 3 == summary["undecided"]
    scores = [float(r["score"]) for r in waiting]
    assert scores == sorted(scores, reverse=True)
    assert set(waiting[0]) >= {"record_id", "title", "abstract", "decision", "reason", "reviewer"}
    assert all(r["decision"] == "" for r in waiting)
    assert summary["reviewers"] == ["ann"]
    assert summary["model"]["mode"] == "active learning"
    assert summary["included_by_reviewers"] == 2  # "maybe" goes forward to full text
    stopping = summary["stopping_rule"]
    assert stopping["screened"] == 3 and stopping["target_reached"] is False
    assert json.loads((folder / "summary.json").read_text())["included"] == 2


def test_once_the_stopping_rule_shows_target_recall_the_rest_is_excluded_by_the_model(
        tmp_path, corpus):
    records = corpus["on"][:10] + corpus["off"][:35]
    # The reviewer screened in priority order: every relevant record first, then a long
    # run of irrelevant ones; one record is left unscreened.
    rows = [(r["record_id"], "include", "", "ann") for r in corpus["on"][:10]]
    rows += [(r["record_id"], "exclude", "autism biology", "ann") for r in corpus["off"][:34]]
    decisions = write_decisions(tmp_path / "ann.csv", rows)
    topic = make_topic(tmp_path, records, {"decisions": str(decisions)})
    summary = screen_topic(topic, outputs=tmp_path / "outputs")
    assert summary["stopping_rule"]["target_reached"] is True
    assert summary["stopping_rule"]["relevant_found"] == 10
    left = corpus["off"][34]["record_id"]
    row = {r["record_id"]: r for r in read_csv(screen_dir(tmp_path) / "screening.csv")}[left]
    assert (row["decision"], row["decided_by"]) == ("exclude", "model")
    assert "stopping rule" in row["exclusion_reason"]
    assert summary["excluded_by_model"] == 1 and summary["undecided"] == 0


def test_a_filled_in_copy_of_to_screen_is_read_as_reviewer_decisions(tmp_path, corpus):
    records = corpus["on"][:5] + corpus["off"][:10]
    topic = make_topic(tmp_path, records)
    screen_topic(topic, outputs=tmp_path / "outputs")
    waiting = read_csv(screen_dir(tmp_path) / "to_screen.csv")
    on_topic = {r["record_id"] for r in corpus["on"]}
    mine = tmp_path / "my_decisions.csv"
    with open(mine, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(waiting[0]))
        writer.writeheader()
        for row in waiting[:6]:  # the reviewer worked down the list and stopped
            writer.writerow({**row, "decision": "yes" if row["record_id"] in on_topic else "no",
                             "reviewer": "ann"})
        writer.writerows(waiting[6:])
    topic = make_topic(tmp_path, records, {"decisions": str(mine)})
    summary = screen_topic(topic, outputs=tmp_path / "outputs")
    assert summary["reviewer_decisions"] == 6
    assert summary["undecided"] == len(records) - 6
    assert len(read_csv(screen_dir(tmp_path) / "to_screen.csv")) == len(records) - 6


def test_the_ranking_learns_most_from_the_decisions_made_last(tmp_path):
    """The same two look-alike records decided both ways: the rows' order in the decision
    file (the order they were screened in) decides which verdict a third look-alike gets."""
    records = [dedup_record("a", "Community partnership in health services", "Partnership."),
               dedup_record("b", "Community partnership in health services", "Partnership."),
               dedup_record("c", "Knee surgery outcomes", "Knee."),
               dedup_record("d", "Community partnership in social care", "Partnership.")]
    scores = {}
    for name, rows in {"include last": [("test:c", "exclude"), ("test:b", "exclude"),
                                        ("test:a", "include")],
                       "exclude last": [("test:c", "exclude"), ("test:a", "include"),
                                        ("test:b", "exclude")]}.items():
        folder = tmp_path / name
        folder.mkdir()
        decisions = write_decisions(folder / "ann.csv", [(r, d, "", "") for r, d in rows])
        screen_topic(make_topic(folder, records, {"decisions": str(decisions)}),
                     outputs=folder / "outputs")
        table = read_csv(folder / "outputs" / "trial" / "screen" / "screening.csv")
        scores[name] = next(float(r["score"]) for r in table if r["record_id"] == "test:d")
    assert scores["include last"] > scores["exclude last"]
