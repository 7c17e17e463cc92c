"""The whole workflow, run for real by Snakemake on a tiny topic against the local
E-utilities server: search -> dedup -> screen -> extract -> synthesis -> report."""

from __future__ import annotations

import csv
import gzip
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import read_csv
from eutils_server import eutils_server  # noqa: F401 (fixture)

from cmosynth.records import read_records

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "workflow"
SNAKEMAKE = Path(sys.executable).parent / "snakemake"
#: An NCBI API key the runs use: it must never be written anywhere.
API_KEY = "0123456789abcdef0123456789abcdefAPIKEY"


def run_snakemake(workdir: Path, topic: Path, outputs: Path, *extra: str
                  ) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "NCBI_API_KEY": API_KEY}
    command = [str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
               "--configfile", str(REPO / "config" / "config.yaml"), "--cores", "2",
               "--config", f'topics=["{topic}"]', f"outputs={outputs}", "until=2025-12-31",
               *extra]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
@pytest.mark.skipif(not SNAKEMAKE.exists(), reason="snakemake is not installed in this venv")
def test_workflow_runs_every_stage_then_has_nothing_to_do(eutils_server, tmp_path,
                                                         monkeypatch):
    topic = tmp_path / "tiny.yaml"
    # Paths as people name them, with spaces, quotes and shell syntax: no shell command
    # is built from them unquoted (nothing named PWNED may appear).
    exports = tmp_path / "my exports; $(touch PWNED) `touch PWNED`"
    exports.mkdir()
    embase = exports / "Embase export's.ris"
    embase.write_bytes((FIXTURES / "embase_export.ris").read_bytes())
    topic.write_text(yaml.safe_dump({
        "name": "tiny", "title": "Co-production in health care: a tiny test topic",
        "codebook": str(REPO / "config" / "codebooks" / "coproduction.yaml"),
        "search": {"pubmed": {"query": "(coproduc*[tiab] OR co-produc*[tiab]) AND health[tiab]",
                              "mindate": "2019/01/01", "batch_size": 100},
                   "imports": [str(embase)]},
        "extract": {"coding": str(tmp_path / "coding.csv")},
    }), encoding="utf-8")
    (tmp_path / "coding.csv").write_text("record_id,sentence,roles,text\n", encoding="utf-8")
    outputs = tmp_path / "review outputs"
    topic_dir = outputs / "tiny"
    coding_file = (tmp_path / "coding.csv").read_bytes()

    first = run_snakemake(tmp_path, topic, outputs)
    assert first.returncode == 0, first.stderr[-4000:]
    assert (tmp_path / "coding.csv").read_bytes() == coding_file, "reviewer files are read only"
    assert not list(tmp_path.rglob("PWNED")), "a path ran as a shell command"

    records = list(read_records(topic_dir / "dedup" / "records.jsonl"))
    pubmed = [r for r in records if r["source"] == "pubmed"]
    assert pubmed and len(pubmed) == len(list(read_records(topic_dir / "search" / "records.jsonl")))
    # The Embase copy of PMID 34707797 is linked to the PubMed record, not deleted.
    embase_copy = next(r for r in records if "technology transfer" in r["title"].lower()
                       and r["source"] != "pubmed")
    assert embase_copy["duplicate_of"] == "pmid:34707797"

    screening = read_csv(topic_dir / "screen" / "screening.csv")
    kept = [r for r in records if not r.get("duplicate_of")]
    assert sorted(row["record_id"] for row in screening) == sorted(r["record_id"] for r in kept)
    included = list(read_records(topic_dir / "screen" / "included.jsonl"))
    assert included, "the machine-made screening includes the on-topic records"
    for record in included:  # and only records whose own text satisfies the query
        text = f"{record['title']} {record.get('abstract') or ''}".lower()
        assert re.search(r"\bco-?produc", text) and re.search(r"\bhealth\b", text), text
    assert len(included) < len(screening) / 10, "the served corpus is mostly off the topic"

    by_id = {r["record_id"]: r for r in included}
    sentences = read_csv(topic_dir / "extract" / "sentences.csv")
    assert {row["record_id"] for row in sentences} == set(by_id)
    assert any(row["roles"] for row in sentences)
    for row in read_csv(topic_dir / "extract" / "cmo.csv"):
        source = by_id[row["record_id"]]
        text = f"{source['title']} {source.get('abstract') or ''}"
        for element in ("context", "mechanism", "outcome"):
            quote = row[f"{element}_quote"]
            if quote and not row["section"].startswith("fulltext"):
                assert quote in source["title"] or quote in (source.get("abstract") or ""), quote
        assert sum(bool(row[f"{e}_quote"]) for e in ("context", "mechanism", "outcome")) >= 2, text

    theories = read_csv(topic_dir / "synthesis" / "theory_status.csv")
    assert {t["status"] for t in theories} <= {"supported", "refined", "contested", "no evidence"}
    prisma = {row["data"]: row["n"] for row in read_csv(topic_dir / "report" / "PRISMA.csv")}
    assert int(prisma["database_results"]) == len(records)
    assert int(prisma["duplicates"]) == sum(1 for r in records if r.get("duplicate_of"))
    html = (topic_dir / "report" / "index.html").read_text(encoding="utf-8")
    assert "Screening was machine-made" in html
    assert "Every sentence was machine-coded" in html
    assert "(coproduc*[tiab] OR co-produc*[tiab]) AND health[tiab]" in html
    for name in ("prisma.svg", "review.xlsx", "included.ris"):
        assert (topic_dir / "report" / name).stat().st_size > 0
    for rule in ("search_pubmed", "deduplicate", "screen_records", "extract_cmo", "synthesize",
                 "report"):
        assert (topic_dir / "logs" / f"{rule}.log").exists(), rule

    sent = len(eutils_server.requests)
    tables = {p: p.read_bytes() for p in topic_dir.rglob("*.csv")}
    second = run_snakemake(tmp_path, topic, outputs)
    assert second.returncode == 0, second.stderr[-4000:]
    assert "Nothing to be done" in second.stdout + second.stderr
    assert len(eutils_server.requests) == sent
    # Forced to run screening again (and so extraction, synthesis and the report), the
    # stages write the same tables byte for byte: nothing in them depends on chance or
    # the clock.
    forced = run_snakemake(tmp_path, topic, outputs, "--forcerun", "screen_records")
    assert forced.returncode == 0, forced.stderr[-4000:]
    assert "screen_records" in forced.stdout + forced.stderr
    again = {p: p.read_bytes() for p in topic_dir.rglob("*.csv")}
    for stage in ("screen", "extract", "synthesis"):
        changed = [p.name for p in tables if p.parent.name == stage and again[p] != tables[p]]
        assert changed == [], f"{stage} tables differ on a forced rerun: {changed}"
    assert (tmp_path / "coding.csv").read_bytes() == coding_file

    # The reviewer codes a sentence: extraction and what follows rerun, nothing before.
    coded = next(r for r in sentences if r["section"].startswith("abstract")
                 and r["roles"] != "context;outcome")
    with open(tmp_path / "coding.csv", "a", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerow([coded["record_id"], coded["sentence"], "context;outcome",
                                     coded["text"]])
    coding_file = (tmp_path / "coding.csv").read_bytes()
    third = run_snakemake(tmp_path, topic, outputs)
    assert third.returncode == 0, third.stderr[-4000:]
    assert (tmp_path / "coding.csv").read_bytes() == coding_file
    assert len(eutils_server.requests) == sent
    assert (topic_dir / "screen" / "screening.csv").read_bytes() == \
        tables[topic_dir / "screen" / "screening.csv"]
    recoded = {(r["record_id"], r["sentence"]): r
               for r in read_csv(topic_dir / "extract" / "sentences.csv")}
    mine = recoded[(coded["record_id"], coded["sentence"])]
    assert (mine["roles"], mine["method"]) == ("context;outcome", "reviewer")
    agreement = json.loads((topic_dir / "extract" / "coding_agreement.json").read_text("utf-8"))
    assert agreement["reviewers"] == ["coding"] and agreement["sentences_coded"] == 1
    assert agreement["pairs"] == [] and agreement["conflicts"] == 0
    assert agreement["coder"] is None, "one coded record gives no held-out estimate"
    assert read_csv(topic_dir / "extract" / "coding_conflicts.csv") == []
    html = (topic_dir / "report" / "index.html").read_text(encoding="utf-8")
    assert f"A reviewer coded 1 of the {len(recoded)} sentences (1 of {len(by_id)} records" in html
    assert any(quote and quote in coded["text"] for r in read_csv(topic_dir / "extract" / "cmo.csv")
               if r["record_id"] == coded["record_id"]
               for quote in (r["context_quote"], r["outcome_quote"]))

    # A reviewer screens in the workspace: the decision goes to reviews/tiny/screening/
    # alice.csv, a file the topic never named, and the workflow reads it on the next run.
    from cmosynth.web.workspace import Workspace

    monkeypatch.chdir(tmp_path)   # reviewer files: relative to the folder the workflow runs in
    workspace = Workspace(topic, outputs, "alice")
    chosen = workspace.queue().next_record()["record_id"]
    workspace.decide(chosen, "exclude", "not about co-production")
    workspace.close()
    decisions = (tmp_path / "reviews" / "tiny" / "screening" / "alice.csv").read_bytes()
    fourth = run_snakemake(tmp_path, topic, outputs)
    assert fourth.returncode == 0, fourth.stderr[-4000:]
    assert (tmp_path / "reviews" / "tiny" / "screening" / "alice.csv").read_bytes() == decisions
    rescreened = {r["record_id"]: r for r in read_csv(topic_dir / "screen" / "screening.csv")}
    assert (rescreened[chosen]["decision"], rescreened[chosen]["decided_by"],
            rescreened[chosen]["exclusion_reason"]) == ("exclude", "reviewer",
                                                        "not about co-production")

    # The API key went to NCBI with every request and was written nowhere: no output,
    # log, raw response, Snakemake record or file name holds it.
    assert eutils_server.requests and all(r.api_key_sent for r in eutils_server.requests)
    for path in tmp_path.rglob("*"):
        assert API_KEY not in path.name
        if path.is_file():
            data = path.read_bytes()
            if path.suffix == ".gz":
                data = gzip.decompress(data)
            assert API_KEY.encode() not in data, path


CMOSYNTH = Path(sys.executable).parent / "cmosynth"


@pytest.mark.slow
@pytest.mark.skipif(not CMOSYNTH.exists(), reason="the cmosynth command is not installed")
def test_new_topic_validate_and_run_work_on_a_fresh_topic(eutils_server, tmp_path):
    """As a new user would: scaffold, check, run; the terminal shows each stage's lines
    and ends with a summary that matches the outputs."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}

    def cmosynth(*args):
        return subprocess.run([str(CMOSYNTH), *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=600)

    assert cmosynth("new-topic", "falls").returncode == 0
    topic = tmp_path / "config" / "topics" / "falls.yaml"
    checked = cmosynth("validate", str(topic))
    assert checked.returncode == 0, checked.stderr
    done = cmosynth("run", str(topic), "--until", "2025-12-31", "--cores", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    for stage in ("search_pubmed", "deduplicate", "screen_records", "extract_cmo", "report"):
        assert f"  {stage} " in done.stderr, stage
    assert "Building DAG" not in done.stderr and "Traceback" not in done.stderr
    summary = dict(re.match(r"(.+?)\s{2,}(.*)", line).groups()
                   for line in done.stdout.splitlines() if line.strip())
    topic_dir = tmp_path / "outputs" / "falls"
    records = list(read_records(topic_dir / "dedup" / "records.jsonl"))
    assert int(summary["records found"]) == len(
        list(read_records(topic_dir / "search" / "records.jsonl")))
    assert int(summary["duplicates linked"]) == sum(1 for r in records if r["duplicate_of"])
    assert int(summary["included"]) == len(
        list(read_records(topic_dir / "screen" / "included.jsonl")))
    assert summary["report"] == str(topic_dir / "report" / "index.html")


@pytest.mark.slow
@pytest.mark.skipif(not CMOSYNTH.exists(), reason="the cmosynth command is not installed")
def test_a_failing_step_prints_its_own_one_line_error(tmp_path):
    env = {**os.environ, "NCBI_EUTILS_URL": "http://127.0.0.1:9/entrez/eutils/",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run([str(CMOSYNTH), "new-topic", "falls"], cwd=tmp_path, env=env, check=True,
                   capture_output=True)
    done = subprocess.run([str(CMOSYNTH), "run", "config/topics/falls.yaml"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("cmosynth: error: search_pubmed: cannot reach NCBI E-utilities at "
                           "http://127.0.0.1:9/entrez/eutils/: the connection was refused")
    assert "CalledProcessError" not in done.stderr and "check log file" not in done.stderr
