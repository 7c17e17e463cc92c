"""The Snakemake rule `search_pubmed`, run for real against the local E-utilities server."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cmosynth.records import read_records

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
