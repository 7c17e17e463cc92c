"""The Snakemake rule `search_pubmed`, run for real against the local E-utilities server."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from filelock import FileLock

from cmosynth.records import read_records
from conftest import read_csv

pytest_plugins = ["eutils_server"]  # the eutils_server and clone_server fixtures

REPO = Path(__file__).resolve().parent.parent
SNAKEMAKE = Path(sys.executable).parent / "snakemake"


def snakemake(workdir: Path, topic: Path, outputs: Path, target: Path,
              until: str = "2024-02-19") -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    command = [str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
               "--configfile", str(REPO / "config" / "config.yaml"), "--cores", "1",
               "--config", f'topics=["{topic}"]', f"outputs={outputs}", f"until={until}",
               "--", str(target)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300,
                          check=False)


@pytest.mark.slow
@pytest.mark.skipif(not SNAKEMAKE.exists(), reason="snakemake is not installed in this venv")
def test_search_rule_fetches_once_then_only_updates_when_until_moves(clone_server, tmp_path):
    topic = tmp_path / "tiny.yaml"
    topic.write_text(yaml.safe_dump({
        "name": "tiny", "title": "A tiny topic",
        "codebook": str(REPO / "config" / "codebooks" / "coproduction.yaml"),
        "search": {"pubmed": {"query": "co-production[tiab]", "mindate": "2024/01/01",
                              "batch_size": 50}}}))
    outputs = tmp_path / "outputs"
    records = outputs / "tiny" / "search" / "records.jsonl"

    first = snakemake(tmp_path, topic, outputs, records)
    assert first.returncode == 0, first.stderr[-3000:]
    expected = sorted((a.pmid for a in clone_server.articles
                       if dt.date(2024, 1, 1) <= a.entrez_date <= dt.date(2024, 2, 19)), key=int)
    assert [r["pmid"] for r in read_records(records)] == expected
    assert (outputs / "tiny" / "logs" / "search_pubmed.log").exists()
    assert (outputs / "tiny" / "benchmarks" / "search_pubmed.tsv").exists()
    sent = len(clone_server.requests)

    second = snakemake(tmp_path, topic, outputs, records)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "Nothing to be done" in second.stdout + second.stderr
    assert len(clone_server.requests) == sent

    # A later `until` (a scheduled rerun) makes Snakemake run the search again: an update.
    update = snakemake(tmp_path, topic, outputs, records, until="2024-02-29")
    assert update.returncode == 0, update.stderr[-3000:]
    searches = {(r.params["mindate"], r.params["maxdate"])
                for r in clone_server.requests[sent:] if r.endpoint == "esearch"}
    assert searches == {("2024/02/19", "2024/02/29")}
    assert len(list(records.parent.glob("*/search_log.json"))) == 2


CMOSYNTH = Path(sys.executable).parent / "cmosynth"


def file_hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
@pytest.mark.skipif(not CMOSYNTH.exists(), reason="the cmosynth command is not installed")
def test_a_first_run_and_two_updates_keep_decisions_and_earlier_runs(clone_server, tmp_path):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}

    def cmosynth(*args, **kwargs):
        return subprocess.run([str(CMOSYNTH), *args], cwd=tmp_path, env=env, text=True,
                              capture_output=True, timeout=600, **kwargs)

    topic = tmp_path / "tiny.yaml"
    decisions = tmp_path / "me.csv"
    topic.write_text(yaml.safe_dump({
        "name": "tiny", "title": "A tiny topic",
        "codebook": str(REPO / "config" / "codebooks" / "coproduction.yaml"),
        "search": {"pubmed": {"query": "co-production[tiab]", "mindate": "2024/01/01",
                              "batch_size": 50}},
        "screen": {"decisions": str(decisions)}}))
    assert cmosynth("update", str(topic)).returncode == 2, "nothing to update yet"
    first_ids = sorted(a.pmid for a in clone_server.articles
                       if a.entrez_date <= dt.date(2024, 1, 20))
    decisions.write_text("record_id,decision,reason,reviewer\n"
                         f"pmid:{first_ids[0]},include,,me\npmid:{first_ids[1]},exclude,off,me\n")
    mine = decisions.read_bytes()
    first = cmosynth("run", str(topic), "--until", "2024-01-20")
    assert first.returncode == 0, first.stderr[-3000:]
    assert decisions.read_bytes() == mine, "the pipeline never writes a reviewer's file"
    search = tmp_path / "outputs" / "tiny" / "search"
    (first_run,) = [p.parent for p in search.glob("*/search_log.json")]
    before = file_hashes(first_run)
    # PubMed revises a record the reviewer included: the update refreshes it.
    clone_server.revise(first_ids[0], dt.date(2024, 2, 1), "A title PubMed revised")

    update = cmosynth("update", str(topic), "--until", "2024-02-05")
    assert update.returncode == 0, update.stderr[-3000:]
    assert "new in this update" in update.stdout
    assert file_hashes(first_run) == before, "an earlier run is never rewritten"
    assert decisions.read_bytes() == mine
    screening = {r["record_id"]: r for r in read_csv(search.parent / "screen" / "screening.csv")}
    assert screening[f"pmid:{first_ids[0]}"]["decided_by"] == "reviewer"
    assert screening[f"pmid:{first_ids[1]}"]["decision"] == "exclude"
    new = read_csv(search.parent / "report" / "new_records.csv")
    expected_new = {a.pmid for a in clone_server.articles
                    if dt.date(2024, 1, 20) < a.entrez_date <= dt.date(2024, 2, 5)}
    assert {r["pmid"] for r in new} == expected_new
    records = [r["pmid"] for r in read_records(search / "records.jsonl")]
    assert len(records) == len(set(records)), "the overlap day is not duplicated"
    deduplicated = {r["record_id"]: r for r in read_records(search.parent / "dedup" / "records.jsonl")}
    assert deduplicated[f"pmid:{first_ids[0]}"]["title"] == "A title PubMed revised"
    assert not deduplicated[f"pmid:{first_ids[0]}"].get("duplicate_of")
    assert "1 record that PubMed revised since was refreshed" in " ".join(
        (search.parent / "report" / "index.html").read_text("utf-8").split())

    # A second update while another holds the topic's lock: refused at once, or waits.
    lock = FileLock(search.parent / ".cmosynth.lock")
    with lock:
        refused = cmosynth("update", str(topic), "--until", "2024-02-10")
    assert refused.returncode == 2
    assert "another run or update of topic tiny is in progress" in refused.stderr
    earlier = {run: file_hashes(run) for run in (p.parent for p in search.glob("*/search_log.json"))}
    assert len(earlier) == 2
    lock.acquire()
    waiting = subprocess.Popen([str(CMOSYNTH), "update", str(topic), "--until", "2024-02-10",
                                "--wait", "60"], cwd=tmp_path, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(2)
    assert waiting.poll() is None, "the second update waits for the lock"
    lock.release()
    out, err = waiting.communicate(timeout=300)
    assert waiting.returncode == 0, err[-3000:]
    assert len(list(search.glob("*/search_log.json"))) == 3
    assert {run: file_hashes(run) for run in earlier} == earlier, \
        "no earlier run folder (raw responses, records, search log) changes in an update"
    assert decisions.read_bytes() == mine
