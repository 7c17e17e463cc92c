"""XML safety: no XML parse of the package loads a DTD, expands an entity or opens a
connection. For every parser entry point, a billion-laughs document and XXE documents
(external entities naming a local file that holds a secret, a closed port and a local
HTTP server that counts requests) give either records without the entity's text or an
InputError: the secret never appears, nothing is expanded exponentially (the test is
fast and memory stays small) and the server is never asked for anything.

What lxml does with `resolve_entities=False`: entity *declarations* are still read, and a
reference to an internal entity is left in the tree as an unexpanded `&name;` node; the
readers leave those nodes' text out (so "&name;" never reaches a record either), and
libxml2 refuses a document whose entities would amplify past its limit outright.
"""

from __future__ import annotations

import http.server
import resource
import threading
import time
from pathlib import Path

import pytest

from cmosynth.errors import InputError
from cmosynth.extract.fulltext import parse_jats, read_full_text
from cmosynth.imports import read_records_file
from cmosynth.pubmed.client import EsearchResult
from cmosynth.pubmed.parser import count_articles, parse_pubmed_xml

SECRET = "TOP-SECRET-7f3a9c"

LAUGHS = "".join(
    f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 10))


@pytest.fixture(scope="module")
def server():
    """A local HTTP server that serves a DTD and an entity, and counts what it is asked."""
    asked: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the name http.server calls)
            asked.append(self.path)
            body = f'<!ENTITY x "{SECRET}">'.encode() if self.path.endswith(".dtd") \
                else SECRET.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", asked
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def secret_file(tmp_path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text(SECRET, "utf-8")
    return path


def attacks(root: str, secret_file: Path, base_url: str) -> dict[str, tuple[str, str]]:
    """Attack name -> (DOCTYPE, the reference to put where a record's text goes)."""
    return {
        "billion laughs": (f'<!DOCTYPE {root} [<!ENTITY lol0 "lol">{LAUGHS}]>', "&lol9;"),
        "external file": (f'<!DOCTYPE {root} [<!ENTITY x SYSTEM "{secret_file.as_uri()}">]>',
                          "&x;"),
        "closed port": (f'<!DOCTYPE {root} [<!ENTITY x SYSTEM "http://127.0.0.1:9/">]>', "&x;"),
        "local server": (f'<!DOCTYPE {root} [<!ENTITY x SYSTEM "{base_url}/entity">]>', "&x;"),
        "parameter entity": (f'<!DOCTYPE {root} [<!ENTITY % p SYSTEM "{base_url}/p.dtd"> %p;'
                             f'<!ENTITY % f SYSTEM "{secret_file.as_uri()}"> %f;]>', "&x;"),
        "external dtd": (f'<!DOCTYPE {root} SYSTEM "{base_url}/evil.dtd">', "&x;"),
        "internal entity": (f'<!DOCTYPE {root} [<!ENTITY i "inner words">]>', "&i;"),
    }


PUBMED = ("<PubmedArticleSet><PubmedArticle><MedlineCitation><PMID>12345678</PMID><Article>"
          "<ArticleTitle>Before {ref} after</ArticleTitle><Abstract><AbstractText>Text {ref}"
          "</AbstractText></Abstract></Article></MedlineCitation></PubmedArticle>"
          "</PubmedArticleSet>")
ENDNOTE = ("<xml><records><record><rec-number>1</rec-number><titles><title><style>Before "
           "{ref} after</style></title></titles><abstract>Text {ref}</abstract></record>"
           "</records></xml>")
ESEARCH = ("<eSearchResult><Count>1</Count><IdList><Id>1</Id></IdList><QueryTranslation>"
           "Before {ref} after</QueryTranslation><WarningList><OutputMessage>{ref}"
           "</OutputMessage></WarningList></eSearchResult>")
JATS = ('<article><body><sec sec-type="results"><title>Results</title><p>Before {ref} after'
        "</p></sec></body></article>")


def document(root: str, template: str, attack: tuple[str, str]) -> bytes:
    doctype, ref = attack
    return f'<?xml version="1.0"?>\n{doctype}\n{template.format(ref=ref)}'.encode()


def pubmed_bytes(data: bytes, tmp_path: Path) -> list:
    return list(parse_pubmed_xml(data))


def pubmed_path(data: bytes, tmp_path: Path) -> list:
    path = tmp_path / "efetch.xml"
    path.write_bytes(data)
    return [*parse_pubmed_xml(path), count_articles(path)]


def pubmed_import(data: bytes, tmp_path: Path) -> list:
    path = tmp_path / "pubmed.xml"
    path.write_bytes(data)
    return list(read_records_file(path, format="pubmed"))


def endnote_import(data: bytes, tmp_path: Path) -> list:
    path = tmp_path / "endnote.xml"
    path.write_bytes(data)
    return list(read_records_file(path, format="endnote"))


def esearch(data: bytes, tmp_path: Path) -> list:
    result = EsearchResult.from_xml(data)
    return [result.query_translation, result.warnings, result.ids]


def jats(data: bytes, tmp_path: Path) -> list:
    path = tmp_path / "PMC1.xml"
    path.write_bytes(data)
    return [*parse_jats(data), *read_full_text(path)]


ENTRY_POINTS = {
    "pubmed parser (bytes)": ("PubmedArticleSet", PUBMED, pubmed_bytes),
    "pubmed parser (file)": ("PubmedArticleSet", PUBMED, pubmed_path),
    "pubmed xml import": ("PubmedArticleSet", PUBMED, pubmed_import),
    "endnote xml import": ("xml", ENDNOTE, endnote_import),
    "esearch result": ("eSearchResult", ESEARCH, esearch),
    "jats full text": ("article", JATS, jats),
}
ATTACKS = ("billion laughs", "external file", "closed port", "local server", "parameter entity",
           "external dtd", "internal entity")


@pytest.mark.parametrize("attack", ATTACKS)
@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_no_parser_expands_entities_or_reaches_out(tmp_path, secret_file, server, entry, attack):
    base_url, asked = server
    root, template, parse = ENTRY_POINTS[entry]
    data = document(root, template, attacks(root, secret_file, base_url)[attack])
    asked.clear()
    memory_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    try:
        result = repr(parse(data, tmp_path))
    except InputError as error:
        result = str(error)
        assert "\n" not in result
    assert time.monotonic() - started < 5, "nothing is expanded exponentially"
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - memory_before
    assert grown_kib < 100_000, f"memory grew by {grown_kib} KiB"
    assert SECRET not in result
    assert "lollol" not in result and "inner words" not in result
    assert asked == [], "no request reaches the network"
    if "Before" in result and entry != "jats full text":  # records: the reference left out
        assert "&x;" not in result and "&i;" not in result and "&lol9;" not in result


@pytest.mark.parametrize("entry", sorted(set(ENTRY_POINTS) - {"esearch result"}))
def test_a_harmless_internal_entity_leaves_the_rest_of_the_text(tmp_path, secret_file, server,
                                                                entry):
    root, template, parse = ENTRY_POINTS[entry]
    data = document(root, template, attacks(root, secret_file, server[0])["internal entity"])
    result = repr(parse(data, tmp_path))
    assert "Before" in result and "after" in result and "inner words" not in result


def test_a_billion_laughs_import_is_an_input_error_naming_the_file(tmp_path, secret_file,
                                                                  server):
    data = document("xml", ENDNOTE, attacks("xml", secret_file, server[0])["billion laughs"])
    path = tmp_path / "library.xml"
    path.write_bytes(data)
    with pytest.raises(InputError, match=r"library\.xml:\d+: broken XML"):
        list(read_records_file(path))
