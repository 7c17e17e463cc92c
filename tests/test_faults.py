"""Searches through a faulty network: the local E-utilities server fails a share of the
requests at random (429 storms, 500/502/503, connection resets, stalls past the client's
timeout, slow answers, HTTP 200 carrying <ERROR>, expired WebEnvs, truncated XML). A
search either ends with exactly the records of a clean run, or, after bounded retries,
fails with a message that says what to do, having recorded no partial batch as complete,
and the next run completes it."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from cmosynth.errors import CmosynthError
from cmosynth.pubmed.client import EutilsClient
from cmosynth.pubmed.run import search_topic
from eutils_server import RANDOM_FAULT_KINDS, clone_server  # noqa: F401 (fixture)
from test_search_run import UNTIL, pmids_between, topic_for


def faulty_client(**kwargs) -> EutilsClient:
    """The client as a run makes it, with short waits so that the test is quick: a
    1-second read timeout (stalls last 1.5 s) and a backoff of 0.02 s."""
    return EutilsClient(timeout=1.0, backoff=0.02, **kwargs)


def run_files(run: Path) -> tuple[bytes, dict]:
    log = json.loads((run / "search_log.json").read_text("utf-8"))
    return (run / "records.jsonl").read_bytes(), {k: log[k] for k in ("count", "retrieved")
                                                  if k in log}


@pytest.fixture
def clean(clone_server, tmp_path):
    """The records and counts of a run with no fault."""
    (tmp_path / "clean").mkdir()
    topic = topic_for(tmp_path / "clean", batch_size=5)
    run = search_topic(topic, tmp_path / "clean" / "out", UNTIL, client=faulty_client())
    return run_files(run)


@pytest.mark.parametrize("seed", [1, 2])
def test_a_search_through_random_faults_ends_with_the_records_of_a_clean_run(
        clone_server, clean, tmp_path, seed):
    topic = topic_for(tmp_path, batch_size=5)
    clone_server.random_faults(0.15, seed=seed, stall_seconds=1.5, slow_seconds=0.2)
    client = faulty_client()
    run = search_topic(topic, tmp_path / "out", UNTIL, client=client)
    assert sum(clone_server.injected.values()) >= 2, "the faults were injected"
    assert client.stats["retries"] >= sum(
        n for kind, n in clone_server.injected.items() if kind not in ("slow", "expired"))
    assert run_files(run) == clean
    assert [r["pmid"] for r in map(json.loads, clean[0].decode().splitlines())] == \
        pmids_between(clone_server, dt.date(2024, 1, 1), UNTIL)


@pytest.mark.parametrize("kind", [k for k in RANDOM_FAULT_KINDS if k not in ("slow", "expired")])
def test_a_fault_that_persists_fails_with_what_to_do_and_the_next_run_completes(
        clone_server, clean, tmp_path, kind):
    topic = topic_for(tmp_path, batch_size=5)
    clone_server.fail(kind, endpoint="efetch", skip=2, times=1000, seconds=1.5)
    with pytest.raises(CmosynthError) as failure:
        search_topic(topic, tmp_path / "out", UNTIL, client=faulty_client(max_retries=2))
    message = str(failure.value)
    assert "\n" not in message and "run the same command again later" in message
    run = next((tmp_path / "out" / "tiny" / "search").iterdir())
    assert not (run / "search_log.json").exists(), "a failed run is not marked complete"
    assert not (run / "records.jsonl").exists()
    clone_server.clear_faults()
    run = search_topic(topic, tmp_path / "out", UNTIL, client=faulty_client())
    assert run_files(run) == clean
