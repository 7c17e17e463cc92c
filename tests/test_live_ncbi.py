"""The same calls against the real NCBI E-utilities (opt-in: `pytest -m network`), so that
the local server the rest of the suite uses can be checked against the service it
imitates: the shape of esearch answers and their QueryTranslation, history paging, efetch
by id, PMC full texts, and NCBI's own error for a bad database. Skipped without -m network;
runnable by anyone with internet access (NCBI_API_KEY and NCBI_EMAIL are used if set)."""

from __future__ import annotations

import re

import pytest

from cmosynth.extract.fulltext import not_retrieved_reason, parse_jats
from cmosynth.pubmed.client import EutilsClient, EutilsResponseError
from cmosynth.pubmed.parser import parse_pubmed_xml
from cmosynth.screen.topicality import parse_query
from conftest import shared_path

pytestmark = pytest.mark.network

#: A record of the recorded corpus (../shared/data/medline): live and recorded must agree.
KNOWN_PMID = "34707797"


@pytest.fixture(scope="module")
def client():
    with EutilsClient() as live:   # NCBI's own address; the rate limit of its etiquette
        yield live


def test_esearch_answers_as_the_local_server_does(client):
    result = client.esearch("(coproduc*[tiab] OR co-produc*[tiab]) AND health[tiab]",
                            mindate="2021/01/01", maxdate="2021/01/31")
    assert result.count > 0 and result.webenv and result.query_key == "1"
    # the translation names the date window as the local server writes it
    assert re.search(r"2021/01/01:2021/01/31\[Date - Entry\]", result.query_translation)
    parse_query(result.query_translation.replace("[Date - Entry]", "[dp]"))


def test_history_paging_gives_every_record_once(client):
    search = client.esearch("co-production[tiab] AND health services[mh]",
                            mindate="2020/01/01", maxdate="2020/06/30")
    pmids = [r["pmid"] for batch in client.iter_efetch(search, batch_size=20)
             for r in parse_pubmed_xml(batch.body)]
    assert len(pmids) == len(set(pmids)) == search.count


def test_a_record_fetched_live_reads_as_the_recorded_one(client):
    live = next(parse_pubmed_xml(client.efetch(ids=[KNOWN_PMID])))
    recorded = next(r for path in sorted(shared_path("medline").rglob("*.xml*"))
                    for r in parse_pubmed_xml(path) if r["pmid"] == KNOWN_PMID)
    for field in ("title", "doi", "journal", "year"):
        assert live[field] == recorded[field], field


def test_an_open_access_full_text_is_read_from_pmc(client):
    body = client.efetch(db="pmc", ids=["8435807"])
    assert not_retrieved_reason(body) is None
    assert list(parse_jats(body))


def test_a_bad_database_is_ncbis_error_not_a_retry(client):
    with pytest.raises(EutilsResponseError, match="Invalid db name"):
        client.esearch("x", db="fleegle")
