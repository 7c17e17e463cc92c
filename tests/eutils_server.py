"""A local NCBI E-utilities server for tests and benchmarks: real HTTP on 127.0.0.1.

It speaks enough of the protocol for cmosynth's search: `esearch.fcgi` (term, mindate,
maxdate, datetype, usehistory, retmax, retstart) answering in the shape of NCBI's recorded
eSearchResult responses, and `efetch.fcgi` (GET or POST; WebEnv + query_key + retstart +
retmax, or an id list) answering with real `PubmedArticle` elements taken from
../shared/data (or PMC JATS for db=pmc). Like PubMed it refuses `retstart` > 9998.

Every search term matches the whole corpus except words listed in `unknown_phrases`; the
date window decides what a search finds: `mdat` reads an article's modification date (its
Entrez date until `server.revise(...)` changes the record), the other date types read the
Entrez date.

Faults can be scheduled (`server.fail(...)`): 429 with Retry-After, 500/502/503,
connection reset, a stall beyond the client's timeout, an HTTP 200 carrying `<ERROR>`,
an expired WebEnv, a truncated body. With `rate_limit=N` the server answers 429, like
NCBI, when more than N requests arrive within one second, and counts the violations.
Every request is recorded (endpoint, parameters without api_key, time, status).

    with EutilsServer(load_real_articles(data)) as server:
        os.environ["NCBI_EUTILS_URL"] = server.url

Test modules load its fixtures with `pytest_plugins = ["eutils_server"]` after importing
it, hence PYTEST_DONT_REWRITE (it holds no test assertions).
"""

from __future__ import annotations

import datetime as dt
import functools
import gzip
import json
import random
import secrets
import socket
import struct
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

from lxml import etree

#: PubMed's own words when asked for records beyond the 9,999th of a search.
RETSTART_CAP_MESSAGE = (
    "Search Backend failed: Exception:\n'retstart' cannot be larger than 9998. For PubMed, "
    "ESearch can only retrieve the first 9,999 records matching the query. To obtain more "
    "than 9,999 PubMed records, consider using EDirect that contains additional logic to "
    "batch PubMed search results automatically so that an arbitrary number can be "
    "retrieved. For details see https://www.ncbi.nlm.nih.gov/books/NBK25499/")
MAX_RETSTART = 9998

ESEARCH_HEAD = (
    b'<?xml version="1.0" encoding="UTF-8" ?>\n'
    b'<!DOCTYPE eSearchResult PUBLIC "-//NLM//DTD esearch 20060628//EN" '
    b'"https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20060628/esearch.dtd">\n')
EFETCH_HEAD = (
    b'<?xml version="1.0" ?>\n'
    b'<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN" '
    b'"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">\n')
PMC_HEAD = (
    b'<?xml version="1.0" ?>\n'
    b'<!DOCTYPE pmc-articleset PUBLIC "-//NLM//DTD ARTICLE SET 2.0//EN" '
    b'"https://dtd.nlm.nih.gov/ncbi/pmc/articleset/nlm-articleset-2.0.dtd">\n')
DATE_FIELDS = {"edat": ("EDAT", "Date - Entry"), "pdat": ("PDAT", "Date - Publication"),
               "mdat": ("MDAT", "Date - Modification")}
FAULT_KINDS = {"429", "500", "502", "503", "reset", "stall", "slow", "error", "expired",
               "truncated", "none"}
#: The faults `random_faults` draws from: every way a request can fail and pass on retry.
RANDOM_FAULT_KINDS = ("429", "500", "502", "503", "reset", "stall", "slow", "error", "expired",
                      "truncated")


# --- the record corpus ---------------------------------------------------------------
@dataclass(frozen=True)
class Article:
    """One PubMed record the server can find: PMID, Entrez date and its XML."""

    pmid: str
    entrez_date: dt.date
    xml: bytes = field(repr=False)
    modified: dt.date | None = None     # PubMed's [mdat]; the Entrez date when None

    @property
    def modification_date(self) -> dt.date:
        return self.modified or self.entrez_date


def _articles_in(path: Path) -> list[Article]:
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    if b"<PubmedArticle" not in data:
        return []
    root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True,
                                                  huge_tree=True))
    return [_article(node) for node in root.iter("PubmedArticle", "PubmedBookArticle")]


def _article(node) -> Article:
    pmid = node.findtext(".//PMID").strip()
    return Article(pmid, _entrez_date(node),
                   etree.tostring(node, encoding="UTF-8", xml_declaration=False, with_tail=False))


def _entrez_date(node) -> dt.date:
    for status in ("entrez", "pubmed"):
        date = node.find(f".//History/PubMedPubDate[@PubStatus='{status}']")
        if date is not None:
            return dt.date(int(date.findtext("Year")), int(date.findtext("Month")),
                           int(date.findtext("Day")))
    return dt.date(1900, 1, 1)


@functools.cache
def load_real_articles(data_dir: str | Path) -> tuple[Article, ...]:
    """Every real PubmedArticle under ../shared/data (medline/ and eutils/), one per PMID."""
    data_dir = Path(data_dir)
    paths = sorted([*data_dir.glob("medline/**/*.xml"), *data_dir.glob("medline/**/*.xml.gz"),
                    *data_dir.glob("eutils/**/efetch*.xml"),
                    *data_dir.glob("eutils/**/pubmed*.xml")])
    by_pmid: dict[str, Article] = {}
    for path in paths:
        for article in _articles_in(path):
            by_pmid.setdefault(article.pmid, article)
    return tuple(sorted(by_pmid.values(), key=lambda a: int(a.pmid)))


def load_pmc_articles(data_dir: str | Path) -> dict[str, bytes]:
    """PMC JATS `<article>` elements from efetch_pmc.xml, by PMC id (digits only)."""
    path = Path(data_dir) / "eutils" / "biopython" / "efetch_pmc.xml"
    root = etree.fromstring(path.read_bytes(), etree.XMLParser(resolve_entities=False,
                                                               no_network=True))
    articles = {}
    for article in root.iter("article"):
        pmcid = article.findtext(".//article-id[@pub-id-type='pmc']") or ""
        articles[pmcid.removeprefix("PMC")] = etree.tostring(
            article, encoding="UTF-8", xml_declaration=False, with_tail=False)
    return articles


def clone_articles(templates, count: int, *, first_pmid: int = 90_000_001,
                   start: dt.date = dt.date(2024, 1, 1), per_day: int = 50,
                   max_bytes: int = 12_000) -> list[Article]:
    """`count` copies of real articles under new PMIDs, `per_day` on each Entrez date.

    The `<PMID>`, the pubmed ArticleId and the entrez `PubMedPubDate` are rewritten, so a
    clone is a real record that entered PubMed on another day. Only templates of at most
    `max_bytes` are used (most real records; it keeps volume tests light).
    """
    small = [t for t in templates if len(t.xml) <= max_bytes] or list(templates)
    patterns = [_clone_pattern(t) for t in small]
    clones = []
    for n in range(count):
        pmid = str(first_pmid + n)
        day = start + dt.timedelta(days=n // per_day)
        xml = (patterns[n % len(patterns)].replace(b"@PMID@", pmid.encode())
               .replace(b"@YEAR@", str(day.year).encode())
               .replace(b"@MONTH@", str(day.month).encode())
               .replace(b"@DAY@", str(day.day).encode()))
        clones.append(Article(pmid, day, xml))
    return clones


def _clone_pattern(template: Article) -> bytes:
    """The template's XML with placeholders where the PMID and the Entrez date go."""
    node = etree.fromstring(template.xml)
    citation = node.find("MedlineCitation") if node.tag == "PubmedArticle" else node.find(
        "BookDocument")
    citation.find("PMID").text = "@PMID@"
    for article_id in node.iterfind(".//ArticleIdList/ArticleId[@IdType='pubmed']"):
        if article_id.getparent().getparent().tag in ("PubmedData", "PubmedBookData"):
            article_id.text = "@PMID@"
    for status in ("entrez", "pubmed"):
        date = node.find(f".//History/PubMedPubDate[@PubStatus='{status}']")
        if date is not None:
            date.find("Year").text = "@YEAR@"
            date.find("Month").text = "@MONTH@"
            date.find("Day").text = "@DAY@"
    return etree.tostring(node, encoding="UTF-8", xml_declaration=False)


# --- requests and faults -------------------------------------------------------------
@dataclass
class RecordedRequest:
    """One request as the server saw it; `params` never holds the api_key."""

    endpoint: str
    method: str
    params: dict
    time: float
    api_key_sent: bool
    status: int | None = None


@dataclass
class Fault:
    """A scheduled failure: the next `times` matching requests (after `skip`) get it."""

    kind: str
    endpoint: str | None = None
    times: int = 1
    skip: int = 0
    retry_after: float | None = None
    seconds: float = 5.0
    message: str = "Search Backend failed: temporarily unavailable, please retry"
    #: Run before the fault takes effect, e.g. to add records between two requests.
    action: Callable[[], None] | None = None


def _parse_date(text: str, end: bool) -> dt.date:
    parts = [int(p) for p in text.replace("-", "/").split("/")]
    if len(parts) == 3:
        return dt.date(*parts)
    if len(parts) == 2:
        first = dt.date(parts[0], parts[1], 1)
        if not end:
            return first
        return (first + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
    return dt.date(parts[0], 12, 31) if end else dt.date(parts[0], 1, 1)


# --- the server ----------------------------------------------------------------------
class EutilsServer:
    """E-utilities on 127.0.0.1 in a background thread; `url` is for NCBI_EUTILS_URL."""

    def __init__(self, articles=(), *, rate_limit: int | None = None,
                 pmc_articles: dict[str, bytes] | None = None,
                 unknown_phrases: tuple[str, ...] = ()):
        self.articles: list[Article] = list(articles)
        self.pmc_articles = pmc_articles or {}
        self.rate_limit = rate_limit
        self.unknown_phrases = {p.lower() for p in unknown_phrases}
        self.requests: list[RecordedRequest] = []
        self.violations = 0
        self._faults: list[Fault] = []
        self._history: dict[str, dict[str, list[str]]] = {}
        self._arrivals: deque[float] = deque()
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._by_pmid: dict[str, Article] = {}
        self._random: tuple | None = None
        #: Faults drawn by `random_faults`, by kind.
        self.injected: Counter[str] = Counter()

    # --- control ---------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/entrez/eutils/"

    def start(self) -> EutilsServer:
        self._by_pmid = {a.pmid: a for a in self.articles}
        handler = type("Handler", (_Handler,), {"eutils": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,),
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def fail(self, kind: str, *, endpoint: str | None = None, times: int = 1, skip: int = 0,
             retry_after: float | None = None, seconds: float = 5.0,
             message: str | None = None, action: Callable[[], None] | None = None) -> None:
        """Schedule a fault for the next matching requests (faults fire in the order added).

        `endpoint` is "esearch" or "efetch" (None: any); `skip` lets that many matching
        requests through first; `seconds` is how long a "stall" holds the response;
        `action` runs first (kind "none": only the action, then a normal answer).
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {sorted(FAULT_KINDS)}")
        fault = Fault(kind, endpoint, times, skip, retry_after, seconds, action=action)
        if message:
            fault.message = message
        with self._lock:
            self._faults.append(fault)

    def random_faults(self, rate: float, *, seed: int = 0,
                      kinds: tuple[str, ...] = RANDOM_FAULT_KINDS, stall_seconds: float = 3.0,
                      slow_seconds: float = 0.5, endpoint: str | None = None) -> None:
        """Fail a share `rate` of requests (after any scheduled faults), each with a kind
        drawn from `kinds`, reproducibly from `seed`; `injected` counts them. A "stall"
        holds the answer `stall_seconds` (longer than the client waits), a "slow" one
        `slow_seconds` (shorter)."""
        unknown = set(kinds) - FAULT_KINDS
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}")
        with self._lock:
            self._random = (random.Random(seed), rate, tuple(kinds), stall_seconds,
                            slow_seconds, endpoint)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._random = None

    def expire_history(self) -> None:
        """Forget every WebEnv, as NCBI does after some hours."""
        with self._lock:
            self._history.clear()

    def revise(self, pmid: str, on: dt.date, title: str) -> Article:
        """PubMed revises a record: a new ArticleTitle and a modification date `on`."""
        with self._lock:
            old = self._by_pmid[pmid]
            node = etree.fromstring(old.xml)
            node.find(".//Article/ArticleTitle").text = title
            new = Article(pmid, old.entrez_date, etree.tostring(node, encoding="UTF-8"), on)
            self.articles[self.articles.index(old)] = new
            self._by_pmid[pmid] = new
            return new

    def add_articles(self, articles) -> None:
        with self._lock:
            self.articles.extend(articles)
            self._by_pmid.update({a.pmid: a for a in articles})

    # --- what tests assert on --------------------------------------------------------
    def requests_to(self, endpoint: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.endpoint == endpoint]

    def max_requests_in_window(self, window: float = 1.0) -> int:
        """The most requests that arrived within any `window` seconds."""
        times = sorted(r.time for r in self.requests)
        best, first = 0, 0
        for last, t in enumerate(times):
            while t - times[first] >= window:
                first += 1
            best = max(best, last - first + 1)
        return best

    def status_count(self, status: int) -> int:
        return sum(1 for r in self.requests if r.status == status)

    # --- request handling (called from handler threads) ------------------------------
    def _record(self, endpoint: str, method: str, params: dict) -> RecordedRequest:
        now = time.time()
        shown = {k: v for k, v in params.items() if k != "api_key"}
        request = RecordedRequest(endpoint, method, shown, now, "api_key" in params)
        with self._lock:
            self.requests.append(request)
            if self.rate_limit is not None and self._over_rate(time.monotonic()):
                self.violations += 1
                request.status = 429
        return request

    def _over_rate(self, now: float) -> bool:
        self._arrivals.append(now)
        while now - self._arrivals[0] >= 1.0:
            self._arrivals.popleft()
        return len(self._arrivals) > self.rate_limit

    def _next_fault(self, endpoint: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.endpoint not in (None, endpoint):
                    continue
                if fault.skip > 0:
                    fault.skip -= 1
                    return None
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
            if self._random is not None:
                rng, rate, kinds, stall, slow, only = self._random
                if only in (None, endpoint) and rng.random() < rate:
                    kind = rng.choice(kinds)
                    self.injected[kind] += 1
                    return Fault(kind, seconds=stall if kind == "stall" else slow)
        return None

    def esearch(self, params: dict) -> tuple[int, bytes]:
        db = params.get("db", "pubmed")
        if db not in ("pubmed", "pmc"):
            return 200, _error_body("eSearchResult", f"Invalid db name specified: {db}",
                                    ESEARCH_HEAD)
        retstart, retmax = int(params.get("retstart", 0)), int(params.get("retmax", 20))
        if db == "pubmed" and retstart > MAX_RETSTART:
            return 200, _error_body("eSearchResult", RETSTART_CAP_MESSAGE, ESEARCH_HEAD)
        term = params.get("term", "")
        unknown = [w for w in term.replace('"', " ").split()
                   if w.split("[")[0].lower() in self.unknown_phrases]
        if unknown:
            return 200, _not_found_body(term, unknown)
        pmids = self._matching(params)
        if db == "pubmed":
            retmax = max(min(retmax, MAX_RETSTART + 1 - retstart), 0)
        history = ""
        if params.get("usehistory") == "y":
            webenv = "MCID_" + secrets.token_hex(12)
            with self._lock:
                self._history[webenv] = {"1": pmids}
            history = f"<QueryKey>1</QueryKey><WebEnv>{webenv}</WebEnv>"
        return 200, _esearch_body(term, params, len(pmids), retstart,
                                  pmids[retstart:retstart + retmax], history)

    def _matching(self, params: dict) -> list[str]:
        """PMIDs in the date window, newest first as PubMed lists them."""
        low = _parse_date(params["mindate"], False) if params.get("mindate") else dt.date.min
        high = _parse_date(params["maxdate"], True) if params.get("maxdate") else dt.date.max
        modified = params.get("datetype") == "mdat"
        with self._lock:
            found = [a for a in self.articles
                     if low <= (a.modification_date if modified else a.entrez_date) <= high]
        found.sort(key=lambda a: (a.entrez_date, int(a.pmid)), reverse=True)
        return [a.pmid for a in found]

    def efetch(self, params: dict) -> tuple[int, bytes]:
        db = params.get("db", "pubmed")
        if db == "pmc":
            ids = [i.strip().removeprefix("PMC") for i in params.get("id", "").split(",")]
            found = [self.pmc_articles[i] for i in ids if i in self.pmc_articles]
            return 200, PMC_HEAD + b"<pmc-articleset>" + b"\n".join(found) + b"</pmc-articleset>"
        if db != "pubmed":
            return 200, _error_body("eFetchResult", f"Invalid db name specified: {db}")
        if params.get("id"):
            pmids = [i.strip() for i in params["id"].split(",") if i.strip()]
        else:
            key = params.get("query_key", "")
            with self._lock:
                pmids = self._history.get(params.get("WebEnv", ""), {}).get(key)
            if pmids is None:
                return 200, _error_body("eFetchResult", f"Unable to obtain query #{key}")
            retstart, retmax = int(params.get("retstart", 0)), int(params.get("retmax", 20))
            if retstart > MAX_RETSTART:
                return 400, _error_body("eFetchResult", RETSTART_CAP_MESSAGE)
            pmids = pmids[retstart:min(retstart + retmax, MAX_RETSTART + 1)]
        articles = [self._by_pmid[p].xml for p in pmids if p in self._by_pmid]
        return 200, EFETCH_HEAD + b"<PubmedArticleSet>\n" + b"\n".join(articles) + (
            b"\n</PubmedArticleSet>" if articles else b"</PubmedArticleSet>")


def _error_body(root: str, message: str, head: bytes = b'<?xml version="1.0" ?>\n') -> bytes:
    return head + f"<{root}>\n  <ERROR>{escape(message)}</ERROR>\n</{root}>\n".encode()


def _esearch_body(term: str, params: dict, count: int, retstart: int, ids: list[str],
                  history: str) -> bytes:
    """An eSearchResult in the shape of NCBI's recorded esearch2.xml."""
    field_code, field_name = DATE_FIELDS.get(params.get("datetype", "edat"), DATE_FIELDS["edat"])
    translation = f"({escape(term)})"
    stack = (f"<TermSet>    <Term>{escape(term)}</Term>    <Field>All Fields</Field>"
             f"    <Count>{count}</Count>    <Explode>N</Explode>   </TermSet>")
    if params.get("mindate") or params.get("maxdate"):
        low, high = params.get("mindate", "1000/01/01"), params.get("maxdate", "3000/12/31")
        translation += f" AND {low}:{high}[{field_name}]"
        stack += (f"   <TermSet>    <Term>{low}[{field_code}] : {high}[{field_code}]</Term>"
                  f"    <Field>{field_code}</Field>    <Count>{count}</Count>"
                  f"    <Explode>N</Explode>   </TermSet>   <OP>RANGE</OP>   <OP>AND</OP>")
    id_list = ("<IdList>\n" + "".join(f"<Id>{i}</Id>\n" for i in ids) + "</IdList>"
               if ids else "<IdList/>")
    body = (f"<eSearchResult><Count>{count}</Count><RetMax>{len(ids)}</RetMax>"
            f"<RetStart>{retstart}</RetStart>{history}{id_list}<TranslationSet/>"
            f"<TranslationStack>   {stack}  </TranslationStack>"
            f"<QueryTranslation>{translation}</QueryTranslation></eSearchResult>\n")
    return ESEARCH_HEAD + body.encode()


def _not_found_body(term: str, unknown: list[str]) -> bytes:
    """Zero hits with PhraseNotFound, in the shape of the recorded esearch8.xml."""
    phrases = "".join(f"<PhraseNotFound>{escape(w)}</PhraseNotFound>" for w in unknown)
    body = (f"<eSearchResult><Count>0</Count><RetMax>0</RetMax><RetStart>0</RetStart>"
            f"<IdList/><TranslationSet/><QueryTranslation>({escape(term)})</QueryTranslation>"
            f"<ErrorList>{phrases}</ErrorList><WarningList><OutputMessage>No items found."
            f"</OutputMessage></WarningList></eSearchResult>\n")
    return ESEARCH_HEAD + body.encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    eutils: EutilsServer  # set on the subclass made in EutilsServer.start

    def do_GET(self) -> None:
        self._serve(parse_qs(urlsplit(self.path).query, keep_blank_values=True))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        form = parse_qs(self.rfile.read(length).decode("utf-8"), keep_blank_values=True)
        query = parse_qs(urlsplit(self.path).query, keep_blank_values=True)
        self._serve({**query, **form})

    def _serve(self, raw_params: dict) -> None:
        params = {k: v[0] for k, v in raw_params.items()}
        endpoint = urlsplit(self.path).path.rsplit("/", 1)[-1].removesuffix(".fcgi")
        request = self.eutils._record(endpoint, self.command, params)
        if request.status == 429:
            return self._send(request, 429, _rate_body(self.eutils.rate_limit), "application/json")
        fault = self.eutils._next_fault(endpoint)
        if fault is not None and self._inject(request, fault, endpoint):
            return
        handlers = {"esearch": self.eutils.esearch, "efetch": self.eutils.efetch}
        if endpoint not in handlers:
            return self._send(request, 404, b"<html><body>Not Found</body></html>", "text/html")
        status, body = handlers[endpoint](params)
        if fault is not None and fault.kind == "truncated":
            body = body[: len(body) // 2]
        self._send(request, status, body, "text/xml; charset=UTF-8")

    def _inject(self, request: RecordedRequest, fault: Fault, endpoint: str) -> bool:
        """Apply a fault; True if the response has been dealt with."""
        if fault.action is not None:
            fault.action()
        if fault.kind == "429":
            headers = {"Retry-After": str(int(fault.retry_after))} if fault.retry_after else {}
            self._send(request, 429, _rate_body(3), "application/json", headers)
        elif fault.kind in ("500", "502", "503"):
            page = f"<html><body><h1>{fault.kind} Server Error</h1></body></html>".encode()
            self._send(request, int(fault.kind), page, "text/html")
        elif fault.kind == "reset":
            request.status = 0
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
        elif fault.kind in ("stall", "slow"):
            time.sleep(fault.seconds)
            return False
        elif fault.kind == "error":
            root = "eSearchResult" if endpoint == "esearch" else "eFetchResult"
            self._send(request, 200, _error_body(root, fault.message), "text/xml")
        elif fault.kind == "expired":
            self.eutils.expire_history()
            return False
        else:  # "truncated" is served by the caller; "none" only ran its action
            return False
        return True

    def _send(self, request: RecordedRequest, status: int, body: bytes, content_type: str,
              headers: dict | None = None) -> None:
        request.status = status
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the client gave up (timeout) or went away
            self.close_connection = True

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format, *args) -> None:  # keep test output clean
        pass


def _rate_body(limit: int | None) -> bytes:
    """NCBI's JSON body for HTTP 429."""
    return json.dumps({"error": "API rate limit exceeded", "api-key": "127.0.0.1",
                       "count": str((limit or 3) + 1), "limit": str(limit or 3)}).encode()


# --- pytest fixture ------------------------------------------------------------------
try:
    import pytest
except ImportError:  # used from bench scripts without pytest
    pytest = None

def point_client_at(server: EutilsServer, monkeypatch, rate_dir: Path) -> None:
    """Send cmosynth's requests to `server`, with a rate limit of this test only.

    The rate is raised to 50/s (CMOSYNTH_NCBI_RATE) so tests run fast; tests about the
    limit itself set their own.
    """
    monkeypatch.setenv("NCBI_EUTILS_URL", server.url)
    monkeypatch.setenv("NCBI_RATE_DIR", str(rate_dir))
    monkeypatch.setenv("CMOSYNTH_NCBI_RATE", "50")


if pytest is not None:
    @pytest.fixture
    def eutils_server(monkeypatch, tmp_path):
        """A server holding every real article of ../shared/data, set as NCBI_EUTILS_URL."""
        from conftest import shared_path

        data = shared_path("medline").parent
        with EutilsServer(load_real_articles(data), pmc_articles=load_pmc_articles(data),
                          unknown_phrases=("abcXYZ",)) as server:
            point_client_at(server, monkeypatch, tmp_path / "ncbi-rate")
            yield server

    @pytest.fixture
    def clone_server(monkeypatch, tmp_path):
        """A server holding 150 clones of real articles, 3 a day from 2024-01-01 to
        2024-02-19, set as NCBI_EUTILS_URL: enough records to slice and page through."""
        from conftest import shared_path

        articles = clone_articles(load_real_articles(shared_path("medline").parent), 150,
                                  per_day=3)
        with EutilsServer(articles, unknown_phrases=("abcXYZ",)) as server:
            point_client_at(server, monkeypatch, tmp_path / "ncbi-rate")
            yield server
