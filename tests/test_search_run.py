"""Dated PubMed search runs against the local E-utilities server: first run, repeat,
update, resume after an interruption, the 9,999-record cap, the CLI."""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import itertools
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cmosynth.config import load_topic
from cmosynth.pubmed.client import EutilsClient, EutilsHTTPError
from cmosynth.pubmed.parser import parse_pubmed_xml
from cmosynth.pubmed.run import SearchError, search_topic
from cmosynth.records import read_records, write_records
from conftest import shared_path
from eutils_server import EutilsServer, clone_articles, load_real_articles, point_client_at

pytest_plugins = ["eutils_server"]  # the eutils_server and clone_server fixtures

UNTIL = dt.date(2024, 2, 19)
SECRET_KEY = "fedcba9876543210fedcba9876543210abcd"


def write_topic(folder: Path, **pubmed) -> Path:
    settings = {"query": '"co-production"[tiab] AND "health services"[mh]',
                "mindate": "2024/01/01", "batch_size": 20, **pubmed}
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump({"name": "tiny", "title": "A tiny topic",
                                    "search": {"pubmed": settings}}), "utf-8")
    return path


def topic_for(folder: Path, **pubmed) -> dict:
    return load_topic(write_topic(folder, **pubmed))


def pmids_between(server: EutilsServer, first: dt.date, last: dt.date) -> list[str]:
    return sorted((a.pmid for a in server.articles if first <= a.entrez_date <= last), key=int)


def pmids_in(path: Path) -> list[str]:
    return [r["pmid"] for r in read_records(path)]


def fast_client(**kwargs) -> EutilsClient:
    return EutilsClient(backoff=0.01, **kwargs)


# --- a first run ---------------------------------------------------------------------
def test_first_run_keeps_raw_responses_records_and_search_log(clone_server, tmp_path):
    topic = topic_for(tmp_path)
    run = search_topic(topic, tmp_path / "out", UNTIL)

    expected = pmids_between(clone_server, dt.date(2024, 1, 1), UNTIL)
    assert run.parent == tmp_path / "out" / "tiny" / "search"
    assert run.name.startswith("2024-01-01_2024-02-19_")
    assert pmids_in(run / "records.jsonl") == expected
    assert pmids_in(run.parent / "records.jsonl") == expected
    raw = sorted(p.name for p in (run / "raw").iterdir())
    assert "esearch_2024-01-01_2024-02-19.xml.gz" in raw
    assert [n for n in raw if n.startswith("efetch_")] == sorted(
        f"efetch_2024-01-01_2024-02-19_{start}.xml.gz" for start in range(0, len(expected), 20))

    log = json.loads((run / "search_log.json").read_text("utf-8"))
    assert log["query"] == topic["search"]["pubmed"]["query"]
    assert log["query_translation"].endswith("AND 2024/01/01:2024/02/19[Date - Entry]")
    assert log["window"] == {"mindate": "2024-01-01", "maxdate": "2024-02-19"}
    assert log["date_type"] == "edat"
    assert log["count"] == log["records_retrieved"] == log["slices_total"] == len(expected)
    assert log["version"] and log["started"] and log["finished"]


def test_raw_responses_replay_offline_to_the_same_records_file(clone_server, tmp_path):
    run = search_topic(topic_for(tmp_path), tmp_path / "out", UNTIL)
    replayed = [r for path in (run / "raw").glob("efetch_*.xml.gz")
                for r in parse_pubmed_xml(path)]
    write_records(tmp_path / "replayed.jsonl", sorted(replayed, key=lambda r: int(r["pmid"])))
    assert (tmp_path / "replayed.jsonl").read_bytes() == (run / "records.jsonl").read_bytes()


def test_repeating_the_same_search_sends_no_request(clone_server, tmp_path):
    topic = topic_for(tmp_path)
    run = search_topic(topic, tmp_path / "out", UNTIL)
    union = (run.parent / "records.jsonl").read_bytes()
    sent = len(clone_server.requests)

    again = search_topic(topic, tmp_path / "out", UNTIL)
    assert again == run
    assert len(clone_server.requests) == sent
    assert (run.parent / "records.jsonl").read_bytes() == union


def test_empty_window_gives_an_empty_run(clone_server, tmp_path):
    run = search_topic(topic_for(tmp_path, mindate="2023/01/01"), tmp_path / "out",
                       dt.date(2023, 6, 30))
    assert pmids_in(run / "records.jsonl") == []
    assert json.loads((run / "search_log.json").read_text("utf-8"))["count"] == 0
    assert clone_server.requests_to("efetch") == []


def test_phrase_not_found_is_recorded_in_the_search_log(clone_server, tmp_path):
    run = search_topic(topic_for(tmp_path, query="abcXYZ[tiab]"), tmp_path / "out", UNTIL)
    log = json.loads((run / "search_log.json").read_text("utf-8"))
    assert log["count"] == 0
    assert "PhraseNotFound: abcXYZ[tiab]" in log["ncbi_warnings"]


# --- updates -------------------------------------------------------------------------
def test_update_fetches_only_from_the_last_runs_end(clone_server, tmp_path):
    topic = topic_for(tmp_path)
    first = search_topic(topic, tmp_path / "out", dt.date(2024, 1, 31))
    kept = {p.relative_to(first): p.read_bytes() for p in first.rglob("*") if p.is_file()}
    templates = load_real_articles(shared_path("medline").parent)
    clone_server.add_articles(clone_articles(templates, 9, first_pmid=95_000_001,
                                             start=dt.date(2024, 1, 31), per_day=3))
    sent = len(clone_server.requests)

    update = search_topic(topic, tmp_path / "out", UNTIL)
    assert update.name.startswith("2024-01-31_2024-02-19_") and update != first
    searches = [r.params for r in clone_server.requests[sent:] if r.endpoint == "esearch"]
    assert {(p["mindate"], p["maxdate"]) for p in searches} == {("2024/01/31", "2024/02/19")}
    assert pmids_in(update / "records.jsonl") == pmids_between(
        clone_server, dt.date(2024, 1, 31), UNTIL)
    assert pmids_in(update.parent / "records.jsonl") == pmids_between(
        clone_server, dt.date(2024, 1, 1), UNTIL)
    log = json.loads((update / "search_log.json").read_text("utf-8"))
    assert log["update_of"] == first.name
    # the first run is kept as it was: every file, byte for byte (its search log too)
    assert {p.relative_to(first): p.read_bytes() for p in first.rglob("*") if p.is_file()} == kept


def test_update_refreshes_records_pubmed_revised_and_adds_newly_matching_ones(
        clone_server, tmp_path):
    topic = topic_for(tmp_path)
    first = search_topic(topic, tmp_path / "out", dt.date(2024, 1, 31))
    revised_pmid = pmids_in(first / "records.jsonl")[0]
    clone_server.revise(revised_pmid, dt.date(2024, 2, 10), "A revised title")
    templates = load_real_articles(shared_path("medline").parent)
    # Entered within the first run's window but matching the query only now (as when
    # PubMed indexes a record with a MeSH term of the query), and one entered before the
    # review's first day: both revised within the update's window.
    late, early = clone_articles(templates, 2, first_pmid=96_000_001, start=dt.date(2024, 1, 15))
    early = dataclasses.replace(early, entrez_date=dt.date(2023, 6, 1),
                                xml=early.xml.replace(b"<Year>2024</Year>", b"<Year>2023</Year>"))
    clone_server.add_articles([dataclasses.replace(late, modified=dt.date(2024, 2, 12)),
                               dataclasses.replace(early, modified=dt.date(2024, 2, 12))])

    update = search_topic(topic, tmp_path / "out", UNTIL)
    log = json.loads((update / "search_log.json").read_text("utf-8"))
    assert log["revisions"]["refreshed"] == 1
    assert log["revisions"]["new"] == 1
    assert log["revisions"]["entered_before_first_day"] == 1
    union = list(read_records(update.parent / "records.jsonl"))
    assert [r["pmid"] for r in union].count(revised_pmid) == 1, "refreshed, not duplicated"
    assert next(r for r in union if r["pmid"] == revised_pmid)["title"] == "A revised title"
    assert late.pmid in {r["pmid"] for r in union}
    assert early.pmid not in {r["pmid"] for r in union}, "before the review's first day"
    first_titles = {r["pmid"]: r["title"] for r in read_records(first / "records.jsonl")}
    assert first_titles[revised_pmid] != "A revised title", "the earlier run is not rewritten"
    repeated = search_topic(topic, tmp_path / "out", UNTIL)
    assert repeated == update and list(read_records(update.parent / "records.jsonl")) == union


def test_changed_query_starts_a_new_series_of_runs(clone_server, tmp_path):
    first = search_topic(topic_for(tmp_path), tmp_path / "out", UNTIL)
    changed = search_topic(topic_for(tmp_path, query="coproduction[tiab]"), tmp_path / "out",
                           UNTIL)
    assert changed != first and changed.name.startswith("2024-01-01_2024-02-19_")
    log = json.loads((changed / "search_log.json").read_text("utf-8"))
    assert log["query"] == "coproduction[tiab]" and log["update_of"] is None


# --- interruptions -------------------------------------------------------------------
def test_interrupted_run_resumes_without_refetching_completed_batches(clone_server, tmp_path):
    topic = topic_for(tmp_path)
    clone_server.fail("500", endpoint="efetch", skip=3, times=100)
    with pytest.raises(EutilsHTTPError):
        search_topic(topic, tmp_path / "out", UNTIL, client=fast_client(max_retries=1))
    run = next((tmp_path / "out" / "tiny" / "search").iterdir())
    assert not (run / "search_log.json").exists()  # an interrupted run is not complete
    fetched = {r.params["retstart"] for r in clone_server.requests_to("efetch")
               if r.status == 200}
    clone_server.clear_faults()
    sent = len(clone_server.requests)

    search_topic(topic, tmp_path / "out", UNTIL, client=fast_client())
    resumed = [r for r in clone_server.requests[sent:]]
    assert all(r.endpoint == "efetch" for r in resumed)  # the stored esearch is reused
    refetched = {r.params["retstart"] for r in resumed}
    assert fetched and not fetched & refetched
    assert pmids_in(run / "records.jsonl") == pmids_between(
        clone_server, dt.date(2024, 1, 1), UNTIL)


def test_run_resumes_after_the_server_went_away_and_forgot_its_history(monkeypatch,
                                                                        tmp_path):
    articles = clone_articles(load_real_articles(shared_path("medline").parent), 150,
                              per_day=3)
    topic = topic_for(tmp_path)
    with EutilsServer(articles) as first:
        point_client_at(first, monkeypatch, tmp_path / "rate")
        first.fail("reset", endpoint="efetch", skip=2, times=1000)  # gone for good
        with pytest.raises(EutilsHTTPError):
            search_topic(topic, tmp_path / "out", UNTIL, client=fast_client(max_retries=1))
        fetched = {r.params["retstart"] for r in first.requests_to("efetch") if r.status == 200}
    with EutilsServer(articles) as second:  # back, without the old WebEnv
        point_client_at(second, monkeypatch, tmp_path / "rate")
        run = search_topic(topic, tmp_path / "out", UNTIL, client=fast_client())
    refetched = {r.params["retstart"] for r in second.requests_to("efetch") if r.status == 200}
    assert fetched and not fetched & refetched
    assert len(second.requests_to("esearch")) == 1  # the lost history, searched again
    assert pmids_in(run / "records.jsonl") == sorted((a.pmid for a in articles), key=int)


def test_expired_history_during_a_run_is_searched_again(clone_server, tmp_path):
    clone_server.fail("expired", endpoint="efetch", skip=2)
    run = search_topic(topic_for(tmp_path), tmp_path / "out", UNTIL)
    assert len(clone_server.requests_to("esearch")) == 2
    assert pmids_in(run / "records.jsonl") == pmids_between(
        clone_server, dt.date(2024, 1, 1), UNTIL)


def test_result_changing_while_a_slice_is_fetched_refetches_that_slice(clone_server,
                                                                        tmp_path):
    arrivals = clone_articles(load_real_articles(shared_path("medline").parent), 3,
                              first_pmid=97_000_001, start=dt.date(2024, 1, 10), per_day=3)

    def records_arrive_and_history_expires():
        clone_server.add_articles(arrivals)
        clone_server.expire_history()

    clone_server.fail("none", endpoint="efetch", skip=2, action=records_arrive_and_history_expires)
    run = search_topic(topic_for(tmp_path), tmp_path / "out", UNTIL)
    expected = pmids_between(clone_server, dt.date(2024, 1, 1), UNTIL)
    assert pmids_in(run / "records.jsonl") == expected
    log = json.loads((run / "search_log.json").read_text("utf-8"))
    assert log["slices"][0]["count"] == log["records_retrieved"] == len(expected)
    batches = sorted(int(p.name.rsplit("_", 1)[1].split(".")[0])
                     for p in (run / "raw").glob("efetch_*"))
    assert batches == list(range(0, len(expected), 20))


def test_slices_not_adding_up_are_logged_with_both_numbers(clone_server, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="cmosynth")
    arrivals = clone_articles(load_real_articles(shared_path("medline").parent), 4,
                              first_pmid=96_000_001, start=dt.date(2024, 1, 2), per_day=4)
    # Records enter PubMed after the whole window was counted, before its halves are.
    clone_server.fail("none", endpoint="esearch", skip=1,
                      action=lambda: clone_server.add_articles(arrivals))
    run = search_topic(topic_for(tmp_path, max_per_slice=100), tmp_path / "out", UNTIL)
    log = json.loads((run / "search_log.json").read_text("utf-8"))
    assert log["slices_total"] == log["count"] + 4 == log["records_retrieved"]
    assert log["slices_add_up"] is False
    assert (f"the slices add up to {log['slices_total']} records but the whole window has "
            f"{log['count']}") in caplog.text


# --- PubMed's 9,999-record cap -------------------------------------------------------
def test_small_slices_add_up_to_the_whole_window(clone_server, tmp_path):
    run = search_topic(topic_for(tmp_path, max_per_slice=40), tmp_path / "out", UNTIL)
    log = json.loads((run / "search_log.json").read_text("utf-8"))
    assert len(log["slices"]) > 1
    assert all(s["count"] <= 40 for s in log["slices"])
    assert log["slices_total"] == log["count"] == log["records_retrieved"]
    assert all(sum(c["halves"]) == c["count"] for c in log["split_checks"])
    days = [(s["mindate"], s["maxdate"]) for s in log["slices"]]
    assert days[0][0] == "2024-01-01" and days[-1][1] == "2024-02-19"
    assert all(dt.date.fromisoformat(b[0]) - dt.date.fromisoformat(a[1]) == dt.timedelta(1)
               for a, b in itertools.pairwise(days))  # no gap, no overlap


def test_more_than_9999_records_are_split_and_each_retrieved_once(monkeypatch, tmp_path):
    templates = load_real_articles(shared_path("medline").parent)
    articles = clone_articles(templates, 10_050, per_day=50, max_bytes=3000)
    with EutilsServer(articles) as server:
        point_client_at(server, monkeypatch, tmp_path / "rate")
        run = search_topic(topic_for(tmp_path, batch_size=5000), tmp_path / "out",
                           dt.date(2024, 12, 31))
    log = json.loads((run / "search_log.json").read_text("utf-8"))
    assert log["count"] == 10_050 and len(log["slices"]) >= 2
    assert log["slices_total"] == log["records_retrieved"] == 10_050
    assert max(int(r.params.get("retstart", 0)) for r in server.requests) <= 9998
    assert pmids_in(run / "records.jsonl") == sorted((a.pmid for a in articles), key=int)


def test_one_day_over_the_cap_fails_naming_the_day(clone_server, tmp_path):
    with pytest.raises(SearchError, match=r"2024-01-01: 3 records on this single day \(Entrez date"):
        search_topic(topic_for(tmp_path, max_per_slice=2), tmp_path / "out", UNTIL)


# --- the API key ---------------------------------------------------------------------
def test_api_key_is_sent_but_never_written_to_the_run(clone_server, tmp_path, monkeypatch,
                                                       caplog):
    caplog.set_level(logging.DEBUG, logger="cmosynth")
    monkeypatch.setenv("NCBI_API_KEY", SECRET_KEY)
    clone_server.fail("503")  # a retry is logged too
    search_topic(topic_for(tmp_path), tmp_path / "out", UNTIL, client=fast_client())
    assert all(r.api_key_sent for r in clone_server.requests)
    for path in (tmp_path / "out").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            text = gzip.decompress(data) if path.suffix == ".gz" else data
            assert SECRET_KEY.encode() not in text and SECRET_KEY.encode() not in path.name.encode()
    assert SECRET_KEY not in caplog.text


# --- the command line ----------------------------------------------------------------
def run_cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cmosynth", *args], env=env, check=False,
                          capture_output=True, text=True, timeout=120)


def test_cli_search_runs_end_to_end(clone_server, tmp_path):
    topic = write_topic(tmp_path)
    log_file = tmp_path / "search.log"
    env = {**os.environ, "NCBI_API_KEY": SECRET_KEY}
    result = run_cli("--verbose", "--log", str(log_file), "search", str(topic), "--outputs",
                     str(tmp_path / "out"), "--until", "2024-02-19", env=env)
    assert result.returncode == 0, result.stderr
    search = tmp_path / "out" / "tiny" / "search"
    assert pmids_in(search / "records.jsonl") == pmids_between(
        clone_server, dt.date(2024, 1, 1), UNTIL)
    assert len(list(search.glob("*/search_log.json"))) == 1
    assert clone_server.requests[0].api_key_sent
    assert "esearch.fcgi" in log_file.read_text("utf-8")  # requests are logged...
    assert SECRET_KEY not in result.stderr + log_file.read_text("utf-8")  # ...without the key


def test_cli_bad_topic_exits_2_naming_the_key(tmp_path):
    topic = write_topic(tmp_path, batch_size=0)
    result = run_cli("search", str(topic), "--outputs", str(tmp_path / "out"),
                     env=dict(os.environ))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "search.pubmed.batch_size" in lines[0] and str(topic) in lines[0]
    assert "Traceback" not in result.stderr
