"""A small review built by the real stage functions (dedup, screen, extract) from the
project's own fixture records, for the workspace's tests and bench/lab.py."""

from __future__ import annotations

from pathlib import Path

import yaml

from cmosynth.config import load_topic
from cmosynth.dedup import dedup_files
from cmosynth.extract import extract_file
from cmosynth.screen.run import screen_topic

REPO = Path(__file__).resolve().parent.parent
RECORDS = Path(__file__).resolve().parent / "fixtures" / "lab" / "records.jsonl"
CODEBOOK = REPO / "config" / "codebooks" / "coproduction.yaml"
QUERY = ('("co-production"[tiab] OR coproduc*[tiab] OR "co-produc*"[tiab] OR "co-design*"[tiab]'
         ' OR "knowledge mobilisation"[tiab] OR "public involvement"[tiab] OR '
         '"community participation"[tiab] OR "inter-organisational"[tiab] OR '
         '"partnership working"[tiab] OR partnership*[tiab]) AND (health[tiab] OR '
         '"health care"[tiab])')


def write_topic(folder: Path, name: str = "labtest", **extra) -> Path:
    """A topic whose reviewer files take the default places under folder/reviews."""
    topic = folder / f"{name}.yaml"
    topic.write_text(yaml.safe_dump({
        "name": name, "title": "Co-production in health care: the workspace's test topic",
        "codebook": str(CODEBOOK),
        "search": {"pubmed": {"query": QUERY, "mindate": "2000/01/01"},
                   "imports": [str(RECORDS)]}, **extra}), encoding="utf-8")
    return topic


def run_stages(topic_path: Path, outputs: Path, records: Path = RECORDS) -> Path:
    """dedup -> screen -> extract with the topic's reviewer files, as the workflow runs
    them (without Snakemake); returns the topic's outputs folder. Run from the folder
    that holds the topic, since reviewer-file patterns are relative to it."""
    from cmosynth.reviewers import reviewer_files

    topic = load_topic(topic_path)
    folder = outputs / topic["name"]
    dedup_files([records], folder / "dedup" / "records.jsonl",
                review_pairs=folder / "dedup" / "pairs_to_review.csv",
                overrides=reviewer_files(topic, "overrides"))
    screen_topic(topic, outputs)
    extract_file(folder / "screen" / "included.jsonl", folder / "extract" / "cmo.csv",
                 codebook=topic["codebook"], sentences=folder / "extract" / "sentences.csv",
                 coding=reviewer_files(topic, "coding"),
                 configurations=reviewer_files(topic, "configurations"),
                 agreement=folder / "extract" / "coding_agreement.json",
                 conflicts=folder / "extract" / "coding_conflicts.csv")
    return folder
