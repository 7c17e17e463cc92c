"""The promises reviewers rely on most, tested so that breaking one fails a test:
- no stage ever writes a reviewer-owned file (decisions, overrides, coding, hand-linked
  CMOCs, consensus files), checked by hashing every one before and after each stage;
- each stage's tables are byte-identical when the stage runs again on the same inputs
  (nothing depends on chance or the clock).
The workflow-level versions (a Snakemake run, a forced rerun, an update) are in
test_workflow.py and test_workflow_search.py."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from cmosynth.config import load_topic
from cmosynth.dedup import dedup_files
from cmosynth.extract import extract_file
from cmosynth.reviewers import COLUMNS, append_rows, reviewer_file, reviewer_files
from cmosynth.screen.run import screen_topic
from cmosynth.synthesis import synthesize_files
from lab_review import RECORDS, write_topic


def hashes(paths) -> dict[str, str]:
    return {str(p): hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths}


@pytest.fixture
def review(tmp_path, monkeypatch):
    """A topic with every kind of reviewer file, for two reviewers and a consensus."""
    monkeypatch.chdir(tmp_path)
    # the rules coder: what is tested is what the stages read and write, not the coding
    topic = load_topic(write_topic(tmp_path, extract={"coder": "rules"}))

    def add(kind, reviewer, *rows):
        append_rows(reviewer_file(topic, kind, reviewer), rows, COLUMNS[kind])

    add("decisions", "alice", {"record_id": "pmid:90000001", "decision": "include"},
        {"record_id": "pmid:90000002", "decision": "include"},
        {"record_id": "pmid:90000003", "decision": "include"},
        {"record_id": "pmid:90000007", "decision": "exclude", "reason": "drug trial"})
    add("decisions", "bob", {"record_id": "pmid:90000001", "decision": "exclude"})
    add("decisions", "consensus", {"record_id": "pmid:90000001", "decision": "include"})
    add("overrides", "alice", {"record_id_a": "doi:10.1111/hex.90013",
                               "record_id_b": "pmid:90000001", "decision": "duplicates"})
    add("coding", "alice", {"record_id": "pmid:90000002", "sentence": 1, "roles": "outcome",
                            "concepts": "out_knowledge_mobilisation"})
    add("coding", "bob", {"record_id": "pmid:90000002", "sentence": 1, "roles": "context"})
    add("configurations", "alice", {"record_id": "pmid:90000003", "cmoc": "R1",
                                    "context_sentence": 2, "outcome_sentence": 4,
                                    "summary": "involvement, when prepared, continues"})
    files = [p for kind in COLUMNS for p in reviewer_files(topic, kind)]
    assert len(files) == 7
    return topic, tmp_path / "outputs", files


def run_stage(name: str, topic: dict, outputs: Path) -> list[Path]:
    """Run one stage as the workflow does; return the tables it wrote."""
    folder = outputs / topic["name"]
    if name == "dedup":
        dedup_files([RECORDS], folder / "dedup" / "records.jsonl",
                    review_pairs=folder / "dedup" / "pairs_to_review.csv",
                    overrides=reviewer_files(topic, "overrides"))
        return [folder / "dedup" / "records.jsonl", folder / "dedup" / "pairs_to_review.csv"]
    if name == "screen":
        screen_topic(topic, outputs)
        return [folder / "screen" / n for n in ("screening.csv", "to_screen.csv",
                                                 "included.jsonl", "conflicts.csv",
                                                 "summary.json")]
    if name == "extract":
        extract = folder / "extract"
        extract_file(folder / "screen" / "included.jsonl", extract / "cmo.csv",
                     codebook=topic["codebook"], sentences=extract / "sentences.csv",
                     coding=reviewer_files(topic, "coding"),
                     configurations=reviewer_files(topic, "configurations"),
                     agreement=extract / "coding_agreement.json",
                     conflicts=extract / "coding_conflicts.csv", coder=topic["extract"]["coder"])
        return [extract / n for n in ("cmo.csv", "sentences.csv", "coding_agreement.json",
                                      "coding_conflicts.csv")]
    synthesize_files(folder / "extract" / "cmo.csv", records=folder / "screen" / "included.jsonl",
                     codebook=topic["codebook"], output_dir=folder / "synthesis",
                     settings=topic.get("synthesis"),
                     query=topic["search"]["pubmed"]["query"],
                     screening=folder / "screen" / "screening.csv")
    return sorted((folder / "synthesis").glob("*.*"))


STAGES = ("dedup", "screen", "extract", "synthesis")


def test_no_stage_writes_a_reviewer_file(review):
    topic, outputs, files = review
    before = hashes(files)
    for stage in STAGES:
        run_stage(stage, topic, outputs)
        assert hashes(files) == before, f"the {stage} stage changed a reviewer's file"
        assert [p for kind in COLUMNS for p in reviewer_files(topic, kind)] == files, \
            f"the {stage} stage added a file among the reviewers'"
    # and the reviewers' files were read: the stages followed them
    records = (outputs / "labtest" / "dedup" / "records.jsonl").read_text("utf-8")
    assert '"dup_rule": "reviewer"' in records
    cmo = (outputs / "labtest" / "extract" / "cmo.csv").read_text("utf-8")
    assert "involvement, when prepared, continues" in cmo


def test_every_stage_writes_the_same_bytes_when_it_runs_again(review):
    topic, outputs, _ = review
    for stage in STAGES:
        written = run_stage(stage, topic, outputs)
        first = hashes(written)
        os.utime(written[0], (0, 0))       # as if forced: the stage runs whatever the dates
        assert hashes(run_stage(stage, topic, outputs)) == first, \
            f"the {stage} stage's tables differ when it runs again on the same inputs"
