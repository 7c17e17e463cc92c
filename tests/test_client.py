"""The E-utilities client against a real local E-utilities server (tests/eutils_server.py)."""

from __future__ import annotations

import datetime as dt
import logging
import os
import subprocess
import sys
import textwrap
import time

import pytest

from cmosynth.pubmed.client import (
    EsearchResult,
    EutilsClient,
    EutilsError,
    EutilsHistoryError,
    EutilsHTTPError,
    EutilsResponseError,
)
from cmosynth.pubmed.parser import parse_pubmed_xml
from cmosynth.pubmed.ratelimit import SharedRateLimiter
from conftest import shared_path
from eutils_server import EutilsServer, clone_articles, load_real_articles, point_client_at

pytest_plugins = ["eutils_server"]  # the eutils_server and clone_server fixtures

SECRET_KEY = "0123456789abcdef0123456789abcdef0123"


def fast_client(**kwargs) -> EutilsClient:
    """A client that backs off for milliseconds, not seconds, so fault tests stay quick."""
    kwargs.setdefault("backoff", 0.01)
    kwargs.setdefault("timeout", 5.0)
    return EutilsClient(**kwargs)


def in_window(server: EutilsServer, first: dt.date, last: dt.date) -> set[str]:
    return {a.pmid for a in server.articles if first <= a.entrez_date <= last}


# --- recorded responses --------------------------------------------------------------
def test_recorded_esearch_with_history_gives_count_webenv_and_translation():
    raw = shared_path("eutils", "biopython", "esearch2.xml").read_bytes()
    result = EsearchResult.from_xml(raw)
    assert result.count == 42249
    assert result.query_key == "1"
    assert result.webenv == "MCID_6927d6e7fee3e90f880ec190"
    assert len(result.ids) == 100 and result.ids[0] == "41297076"
    assert result.query_translation.endswith("AND 2025/09/27:2025/11/26[Date - Entry]")


def test_recorded_zero_hit_search_keeps_ncbi_warnings():
    raw = shared_path("eutils", "biopython", "esearch8.xml").read_bytes()
    result = EsearchResult.from_xml(raw)
    assert result.count == 0 and result.ids == []
    assert "PhraseNotFound: abcXYZ" in result.warnings
    assert "OutputMessage: No items found." in result.warnings


@pytest.mark.parametrize("recorded", ["esearch.baderror.xml", "esearch.baderror.json"])
def test_recorded_error_body_with_http_200_is_an_error(httpserver, tmp_path, recorded):
    body = shared_path("eutils", "ncbi_eutils_json_samples", recorded).read_bytes()
    httpserver.expect_request("/entrez/eutils/esearch.fcgi").respond_with_data(body)
    client = fast_client(base_url=httpserver.url_for("/entrez/eutils/"),
                         rate_limiter=SharedRateLimiter(50, tmp_path))
    with pytest.raises(EutilsResponseError, match="Invalid db name specified: fleegle"):
        client.esearch("obstetrics[mh]", db="fleegle")


# --- searching and fetching ----------------------------------------------------------
def test_esearch_counts_the_records_of_the_date_window(eutils_server):
    first, last = dt.date(2015, 1, 1), dt.date(2025, 12, 31)
    result = fast_client().esearch("co-production", mindate="2015/01/01", maxdate="2025/12/31")
    assert result.count == len(in_window(eutils_server, first, last)) > 0
    assert result.webenv.startswith("MCID_") and result.query_key == "1"
    assert result.query_translation == "(co-production) AND 2015/01/01:2025/12/31[Date - Entry]"
    sent = eutils_server.requests_to("esearch")[0].params
    assert (sent["usehistory"], sent["datetype"], sent["tool"]) == ("y", "edat", "cmosynth")


def test_paging_from_history_delivers_every_record_once(eutils_server):
    client = fast_client()
    search = client.esearch("health", mindate="2000/01/01", maxdate="2025/12/31")
    pmids = [record["pmid"] for batch in client.iter_efetch(search, batch_size=7)
             for record in parse_pubmed_xml(batch.body)]
    assert len(pmids) == len(set(pmids)) == search.count
    assert set(pmids) == in_window(eutils_server, dt.date(2000, 1, 1), dt.date(2025, 12, 31))
    starts = [int(r.params["retstart"]) for r in eutils_server.requests_to("efetch")]
    assert starts == list(range(0, search.count, 7))


def test_efetch_by_id_list_is_posted_and_returns_those_records(eutils_server):
    wanted = sorted(a.pmid for a in eutils_server.articles[:5])
    body = fast_client().efetch(ids=wanted)
    assert sorted(r["pmid"] for r in parse_pubmed_xml(body)) == wanted
    assert eutils_server.requests_to("efetch")[0].method == "POST"


def test_efetch_from_pmc_returns_jats_full_text(eutils_server):
    pmcid = next(iter(eutils_server.pmc_articles))
    body = fast_client().efetch(db="pmc", ids=[pmcid])
    assert b"<pmc-articleset>" in body and f"<article-id pub-id-type=\"pmc\">{pmcid}".encode() in body


def test_unknown_phrase_gives_an_empty_result_with_ncbi_warning(eutils_server):
    result = fast_client().esearch("abcXYZ")
    assert result.count == 0
    assert "PhraseNotFound: abcXYZ" in result.warnings


def test_invalid_database_is_reported_at_once_without_retries(eutils_server):
    with pytest.raises(EutilsResponseError, match="Invalid db name specified: fleegle") as info:
        fast_client().esearch("x", db="fleegle")
    assert info.value.permanent
    assert len(eutils_server.requests) == 1


def test_paging_a_search_beyond_pubmeds_cap_is_refused_before_any_request(monkeypatch,
                                                                         tmp_path):
    templates = load_real_articles(shared_path("medline").parent)
    with EutilsServer(clone_articles(templates, 10_000, per_day=100, max_bytes=3000)) as server:
        point_client_at(server, monkeypatch, tmp_path / "rate")
        client = fast_client()
        search = client.esearch("health")
        with pytest.raises(EutilsError, match="at most 9,999 records of one search"):
            next(client.iter_efetch(search))
        assert server.requests_to("efetch") == []


def test_retstart_beyond_9998_is_refused_as_pubmed_does(eutils_server):
    with pytest.raises(EutilsResponseError, match="cannot be larger than 9998"):
        fast_client().esearch("health", retstart=9999, retmax=10)
    assert len(eutils_server.requests) == 1


# --- faults --------------------------------------------------------------------------
@pytest.mark.parametrize("fault", ["500", "502", "503", "reset", "error", "truncated"])
def test_transient_failure_is_retried_and_the_search_succeeds(eutils_server, fault):
    eutils_server.fail(fault)
    result = fast_client().esearch("health")
    assert result.count == len(eutils_server.articles)
    assert [r.status for r in eutils_server.requests][-1] == 200
    assert len(eutils_server.requests) == 2


def test_429_storm_is_ridden_out_with_backoff(eutils_server):
    eutils_server.fail("429", times=4)
    client = fast_client()
    assert client.esearch("health").count == len(eutils_server.articles)
    assert eutils_server.status_count(429) == 4 and client.stats["HTTP 429"] == 4


def test_retry_after_is_honoured_before_asking_again(eutils_server):
    eutils_server.fail("429", retry_after=1)
    fast_client().esearch("health")
    refused, retried = eutils_server.requests
    assert refused.status == 429 and retried.status == 200
    assert retried.time - refused.time >= 0.95  # Retry-After: 1


def test_persistent_429_ends_in_an_error_carrying_ncbi_message(eutils_server):
    eutils_server.fail("429", times=10)
    with pytest.raises(EutilsHTTPError, match="API rate limit exceeded") as info:
        fast_client(max_retries=2).esearch("health")
    assert info.value.status == 429
    assert len(eutils_server.requests) == 3


def test_stalled_response_times_out_and_is_asked_again(eutils_server):
    eutils_server.fail("stall", seconds=3)
    client = fast_client(timeout=0.5)
    assert client.esearch("health").count == len(eutils_server.articles)
    assert client.stats["transport errors"] == 1


def test_expired_webenv_is_searched_again_and_paging_continues(eutils_server):
    client = fast_client()
    search = client.esearch("health", mindate="2000/01/01", maxdate="2025/12/31")
    eutils_server.fail("expired", endpoint="efetch", skip=1)
    batches = list(client.iter_efetch(search, batch_size=10))
    pmids = [r["pmid"] for b in batches for r in parse_pubmed_xml(b.body)]
    assert len(pmids) == len(set(pmids)) == search.count
    assert len(eutils_server.requests_to("esearch")) == 2
    assert batches[-1].search.webenv != search.webenv


def test_expired_webenv_on_a_single_efetch_raises_history_error(eutils_server):
    client = fast_client()
    search = client.esearch("health")
    eutils_server.expire_history()
    with pytest.raises(EutilsHistoryError, match="Unable to obtain query #1"):
        client.efetch(webenv=search.webenv, query_key=search.query_key)


# --- the API key ---------------------------------------------------------------------
def test_api_key_reaches_ncbi_but_never_errors_or_logs(eutils_server, caplog):
    caplog.set_level(logging.DEBUG, logger="cmosynth")
    eutils_server.fail("500", times=10)
    client = fast_client(api_key=SECRET_KEY, max_retries=1)
    with pytest.raises(EutilsHTTPError) as info:
        client.esearch("health")
    request = eutils_server.requests[0]
    assert request.api_key_sent and request.method == "POST"
    assert SECRET_KEY not in str(info.value) and SECRET_KEY not in repr(info.value.__cause__)
    assert SECRET_KEY not in caplog.text


def test_api_key_absent_from_connection_errors(caplog):
    caplog.set_level(logging.DEBUG, logger="cmosynth")
    client = fast_client(base_url="http://127.0.0.1:9/entrez/eutils/", api_key=SECRET_KEY,
                         max_retries=1)
    with pytest.raises(EutilsHTTPError) as info:
        client.esearch("health")
    assert info.value.status is None
    chain = f"{info.value} {info.value.__cause__!r} {info.value.__cause__}"
    assert SECRET_KEY not in chain and SECRET_KEY not in caplog.text


def test_an_unreachable_ncbi_is_one_line_within_fifteen_seconds(tmp_path):
    """Nothing listens on port 9: the command says so with the URL and what to do, long
    before six rounds of backoff would end, and without a traceback."""
    topic = tmp_path / "tiny.yaml"
    topic.write_text("name: tiny\ntitle: Tiny\nsearch:\n  pubmed:\n    query: health[tiab]\n"
                     "    mindate: '2024/01/01'\n", encoding="utf-8")
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "cmosynth", "search", str(topic),
                           "--outputs", str(tmp_path / "out"), "--until", "2024-02-01"],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "NCBI_EUTILS_URL": "http://127.0.0.1:9/entrez/eutils/",
                               "NCBI_API_KEY": SECRET_KEY})
    assert time.monotonic() - started < 15
    assert done.returncode == 2 and "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last == ("cmosynth: error: cannot reach NCBI E-utilities at "
                    "http://127.0.0.1:9/entrez/eutils/: the connection was refused; check the "
                    "network connection and NCBI_EUTILS_URL")
    assert SECRET_KEY not in done.stderr
    assert all(len(line) < 300 for line in done.stderr.splitlines()), "no URL printed twice"


def test_a_timeout_is_still_retried_as_a_passing_fault(eutils_server):
    eutils_server.fail("reset", times=2)
    client = fast_client()
    assert client.esearch("health").count > 0
    assert client.stats["retries"] == 2


def test_key_raises_the_rate_to_ten_per_second():
    assert EutilsClient(api_key=SECRET_KEY).rate_limiter.rate == 10
    assert EutilsClient(api_key="").rate_limiter.rate == 3


# --- one rate limit for every process of a run ---------------------------------------
WORKER = textwrap.dedent("""
    from cmosynth.pubmed.client import EutilsClient
    client = EutilsClient(backoff=0.01)
    for _ in range(4):
        client.esearch("health")
""")


def test_rate_limit_holds_across_three_processes(tmp_path, monkeypatch):
    data = shared_path("medline").parent

    with EutilsServer(clone_articles(load_real_articles(data), 20), rate_limit=3) as server:
        env = {**os.environ, "NCBI_EUTILS_URL": server.url,
               "NCBI_RATE_DIR": str(tmp_path / "shared-rate")}
        env.pop("CMOSYNTH_NCBI_RATE", None)
        env.pop("NCBI_API_KEY", None)
        workers = [subprocess.Popen([sys.executable, "-c", WORKER], env=env,
                                    stderr=subprocess.PIPE) for _ in range(3)]
        errors = [w.communicate(timeout=60)[1] for w in workers]
        assert [w.returncode for w in workers] == [0, 0, 0], errors
    report = b"".join(errors).decode(errors="replace")
    assert sum(r.status == 200 for r in server.requests) == 12, report
    assert server.violations == 0, report
    assert server.max_requests_in_window(1.0) <= 3, report

