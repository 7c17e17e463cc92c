"""A polite client for NCBI E-utilities (esearch, efetch) on `requests`.

Other stages call exactly this API: `EutilsClient.esearch`, `EutilsClient.efetch` and
`EutilsClient.iter_efetch`, and catch `EutilsError` and its subclasses.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import random
import re
import time
from collections import Counter
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Self
from urllib.parse import urlencode, urlsplit

import requests
from lxml import etree

from cmosynth import __version__
from cmosynth.errors import CmosynthError, InputError
from cmosynth.pubmed.parser import XML_OPTIONS
from cmosynth.pubmed.ratelimit import (
    RATE_WITH_KEY,
    RATE_WITHOUT_KEY,
    SharedRateLimiter,
    default_rate_dir,
)

log = logging.getLogger("cmosynth.pubmed.client")

DEFAULT_BASE_URL = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/"
#: Test-only override of the requests-per-second limit (documented in docs/search.md).
RATE_OVERRIDE_ENV = "CMOSYNTH_NCBI_RATE"
#: Longer GET URLs risk HTTP 414 at NCBI; such requests go by POST.
MAX_GET_URL = 2000
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: PubMed serves records 0..9,998 of a search (retstart at most 9998), on the history
#: server as well.
PUBMED_MAX_RECORDS = 9999
MAX_BACKOFF = 60.0

_ERROR_TAG = re.compile(rb"<ERROR>(.*?)</ERROR>", re.DOTALL)
_HISTORY_FAILURE = re.compile(
    r"unable to obtain query|cannot (?:retrieve|obtain) query|invalid webenv|"
    r"webenv\b.*\b(?:expired|invalid|not found)|query_key", re.IGNORECASE)
_PERMANENT_FAILURE = re.compile(
    r"invalid db name|cannot be larger than 9998|empty id list|invalid (?:uid|id|query|term)|"
    r"unknown parameter|syntax error", re.IGNORECASE)


# --- errors --------------------------------------------------------------------------
class EutilsError(CmosynthError):
    """Something went wrong talking to NCBI E-utilities."""


class EutilsHTTPError(EutilsError):
    """NCBI answered with an HTTP error, or could not be reached at all (status None)."""

    def __init__(self, url: str, status: int | None, message: str):
        self.url = url
        self.status = status
        self.message = message
        what = f"HTTP {status}" if status is not None else "no response"
        super().__init__(f"{url}: {what}: {message}")


class EutilsUnreachable(EutilsHTTPError):
    """NCBI cannot be reached at all (name lookup, refused connection, TLS, proxy): said
    at once in one line, with what to do, instead of minutes of retries."""

    def __init__(self, base_url: str, what: str, advice: str):
        self.base_url = base_url
        self.what = what
        EutilsError.__init__(self, f"cannot reach NCBI E-utilities at {base_url}: {what}; "
                                   f"{advice}")
        self.url, self.status, self.message = base_url, None, what


#: Kinds of transport failure that mean the service cannot be reached, with advice.
_UNREACHABLE = (
    (requests.exceptions.ProxyError, "the proxy refused or failed the connection",
     "check HTTPS_PROXY / HTTP_PROXY, or unset them"),
    (requests.exceptions.SSLError, "the TLS handshake failed",
     "check the system clock and certificates (REQUESTS_CA_BUNDLE), or an intercepting proxy"),
    (requests.exceptions.ConnectTimeout, "the connection timed out",
     "check the network connection or firewall; NCBI_EUTILS_URL points elsewhere if set"),
)
_NAME_LOOKUP = re.compile(r"NameResolution|Name or service not known|nodename nor servname|"
                          r"getaddrinfo failed|Temporary failure in name resolution|"
                          r"No address associated", re.IGNORECASE)
_REFUSED = re.compile(r"Connection refused|ConnectionRefused|Errno 111|Errno 61|"
                      r"Network is unreachable|No route to host", re.IGNORECASE)
#: Seconds within which an unreachable service is reported, retries included.
UNREACHABLE_WITHIN = 12.0
#: Seconds to wait for a connection before calling the service unreachable.
CONNECT_TIMEOUT = 5.0


def unreachable_kind(exc: requests.RequestException) -> tuple[str, str] | None:
    """(what failed, what to do) when `exc` means the service cannot be reached at all."""
    for kind, what, advice in _UNREACHABLE:
        if isinstance(exc, kind):
            return what, advice
    if isinstance(exc, requests.exceptions.ConnectionError):
        text = f"{exc!r} {exc}"
        if _NAME_LOOKUP.search(text):
            return ("the host name could not be looked up (DNS)",
                    "check the network connection, or set NCBI_EUTILS_URL to a reachable "
                    "mirror")
        if _REFUSED.search(text):
            return ("the connection was refused",
                    "check the network connection and NCBI_EUTILS_URL")
    return None


def _short_reason(exc: requests.RequestException) -> str:
    """The exception's kind and its innermost cause, without urllib3's repeat of the URL."""
    text = str(exc)
    errno = re.search(r"\[Errno -?\d+\][^'\")]*", text)
    detail = errno.group(0) if errno else text.rsplit(": ", 1)[-1][:120]
    return f"{type(exc).__name__}: {detail}"


class EutilsResponseError(EutilsError):
    """HTTP 200, but the body is an error (`<ERROR>`, JSON `ERROR`) or is unusable."""

    def __init__(self, url: str, message: str, permanent: bool = False):
        self.url = url
        self.message = message
        self.permanent = permanent
        super().__init__(f"{url}: NCBI reported: {message}")


class EutilsHistoryError(EutilsResponseError):
    """The WebEnv/query_key is expired or unknown: the search has to be run again."""


class EutilsResultChanged(EutilsError):
    """A search run again (after its WebEnv expired) found a different number of records."""

    def __init__(self, before: EsearchResult, after: EsearchResult):
        self.before = before
        self.after = after
        super().__init__(f"the search result changed while it was being fetched "
                         f"({before.count} then {after.count} records); fetch it again")


# --- results -------------------------------------------------------------------------
@dataclass(frozen=True)
class EsearchResult:
    """What esearch returned: the count, the history handle and NCBI's own translation."""

    count: int
    webenv: str | None
    query_key: str | None
    query_translation: str | None
    ids: list[str]
    raw: bytes = field(repr=False)
    #: The request parameters (never the API key), so the search can be run again.
    params: dict = field(default_factory=dict, repr=False)
    #: NCBI's ErrorList/WarningList entries, e.g. "PhraseNotFound: abcXYZ".
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def from_xml(cls, raw: bytes, params: dict | None = None, *,
                 source: str = "esearch response") -> EsearchResult:
        """The search from an esearch XML body; InputError naming `source` (the raw file
        replayed, or the response) when the body is not an esearch result. No DTD,
        entity expansion or network access (the parser options of `XML_OPTIONS`)."""
        try:
            root = etree.fromstring(raw, parser=etree.XMLParser(**XML_OPTIONS))
        except etree.XMLSyntaxError as exc:
            message = " ".join(str(exc.msg).split())
            raise InputError(source, f"not well-formed esearch XML ({message}); delete it to "
                                     "search again", line=exc.lineno or None) from None

        def text(tag: str) -> str | None:
            node = root.find(tag)
            return node.text if node is not None and node.text is not None else None

        count = (text("Count") or "0").strip()
        if not re.fullmatch(r"[0-9]+", count):
            raise InputError(source, f"esearch Count {count[:20]!r} is not a number; delete "
                                     "it to search again")
        warnings = [f"{node.tag}: {node.text}"
                    for holder in ("ErrorList", "WarningList")
                    for node in root.findall(f"{holder}/*")
                    if isinstance(node.tag, str) and node.text]
        return cls(count=int(count), webenv=text("WebEnv"),
                   query_key=text("QueryKey"), query_translation=text("QueryTranslation"),
                   ids=[node.text for node in root.findall("IdList/Id") if node.text],
                   raw=raw, params=dict(params or {}), warnings=warnings)


@dataclass(frozen=True)
class Batch:
    """One efetch response from the history server: records retstart..retstart+retmax-1."""

    retstart: int
    retmax: int
    body: bytes = field(repr=False)
    #: The search this batch was fetched from (a fresh one if the WebEnv had expired).
    search: EsearchResult = field(repr=False)


def esearch_params(term: str, *, db: str = "pubmed", mindate: str | None = None,
                   maxdate: str | None = None, datetype: str = "edat", usehistory: bool = True,
                   retmax: int = 0, retstart: int = 0) -> dict:
    """The esearch request parameters (without tool, email and key), as sent."""
    params: dict = {"db": db, "term": term, "retmax": retmax, "retstart": retstart}
    if mindate or maxdate:
        params.update(datetype=datetype, mindate=mindate or "", maxdate=maxdate or "")
    if usehistory:
        params["usehistory"] = "y"
    return params


def batch_starts(count: int, batch_size: int) -> list[int]:
    """The retstart of every batch needed to fetch `count` records."""
    return list(range(0, count, batch_size))


# --- the client ----------------------------------------------------------------------
class EutilsClient:
    """Client for NCBI E-utilities that keeps to NCBI's usage rules.

    NCBI's etiquette (https://www.ncbi.nlm.nih.gov/books/NBK25497/): at most 3 requests
    per second without an API key and 10 with one (`NCBI_API_KEY`); every request names
    the software (`tool=cmosynth`) and a contact address (`NCBI_EMAIL`) so NCBI can get in
    touch before blocking; jobs of more than about 100 requests belong on weekends or
    between 9 pm and 5 am US Eastern time. The limit is shared by every process of a run
    through a lock file in `NCBI_RATE_DIR` (default: a per-user temp folder per host).

    Transient failures (429, 5xx, connection resets, timeouts, an HTTP 200 carrying an
    `<ERROR>`) are retried with exponential backoff and full jitter, honouring
    `Retry-After`. The API key is sent in a POST body, never in a URL, and is filtered
    out of everything this client logs or raises.
    """

    def __init__(self, base_url: str | None = None, api_key: str | None = None,
                 email: str | None = None, tool: str = "cmosynth", timeout: float = 30.0,
                 max_retries: int = 6, rate_limiter: SharedRateLimiter | None = None,
                 backoff: float = 1.0):
        base = base_url or os.environ.get("NCBI_EUTILS_URL") or DEFAULT_BASE_URL
        self.base_url = base if base.endswith("/") else base + "/"
        self.api_key = api_key if api_key is not None else (os.environ.get("NCBI_API_KEY") or None)
        self.email = email if email is not None else (os.environ.get("NCBI_EMAIL") or None)
        self.tool = tool
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.rate_limiter = rate_limiter or SharedRateLimiter(
            self.default_rate(), default_rate_dir(urlsplit(self.base_url).netloc))
        self.stats: Counter[str] = Counter()
        self._session = requests.Session()
        self._session.headers["User-Agent"] = f"cmosynth/{__version__} (python-requests)"

    def default_rate(self) -> float:
        """Requests per second: 10 with an API key, 3 without (or the test override)."""
        override = os.environ.get(RATE_OVERRIDE_ENV)
        if override:
            return float(override)
        return RATE_WITH_KEY if self.api_key else RATE_WITHOUT_KEY

    # --- public API ------------------------------------------------------------------
    def esearch(self, term: str, *, db: str = "pubmed", mindate: str | None = None,
                maxdate: str | None = None, datetype: str = "edat", usehistory: bool = True,
                retmax: int = 0, retstart: int = 0) -> EsearchResult:
        """Run a search; with `usehistory` the result stays on NCBI's history server."""
        params = esearch_params(term, db=db, mindate=mindate, maxdate=maxdate,
                                datetype=datetype, usehistory=usehistory, retmax=retmax,
                                retstart=retstart)
        raw = self._request("esearch.fcgi", params)
        return EsearchResult.from_xml(raw, params)

    def efetch(self, *, db: str = "pubmed", ids: Iterable[str | int] | None = None,
               webenv: str | None = None, query_key: str | None = None, retstart: int = 0,
               retmax: int = 500, rettype: str | None = None, retmode: str = "xml") -> bytes:
        """Fetch records by ID list (sent by POST) or from the history server."""
        params: dict = {"db": db, "retmode": retmode}
        if rettype:
            params["rettype"] = rettype
        id_list = [str(i) for i in ids] if ids is not None else None
        if id_list is not None:
            params["id"] = ",".join(id_list)
        elif webenv and query_key:
            params.update(WebEnv=webenv, query_key=query_key, retstart=retstart, retmax=retmax)
        else:
            raise ValueError("efetch needs either ids or webenv and query_key")
        return self._request("efetch.fcgi", params, post=id_list is not None,
                             expect_xml=retmode == "xml")

    def iter_efetch(self, search: EsearchResult, *, batch_size: int = 500,
                    skip: Collection[int] = (), db: str = "pubmed",
                    rettype: str | None = None, retmode: str = "xml") -> Iterator[Batch]:
        """Yield every batch of a history search, skipping retstarts in `skip`.

        If the WebEnv has expired the search is run again; should it then find a
        different count, `EutilsResultChanged` is raised so the caller can start over.
        """
        if db == "pubmed" and search.count > PUBMED_MAX_RECORDS:
            raise EutilsError(f"PubMed serves at most {PUBMED_MAX_RECORDS:,} records of one "
                              f"search and this one has {search.count:,}; split it by date "
                              "(cmosynth.pubmed.run.search_topic does)")
        for retstart in batch_starts(search.count, batch_size):
            if retstart in skip:
                continue
            try:
                body = self._efetch_batch(search, db, retstart, batch_size, rettype, retmode)
            except EutilsHistoryError as exc:
                log.warning("history expired (%s); running the search again", exc.message)
                search = self._search_again(search)
                body = self._efetch_batch(search, db, retstart, batch_size, rettype, retmode)
            yield Batch(retstart, min(batch_size, search.count - retstart), body, search)

    def redact(self, text: str) -> str:
        """`text` with the API key replaced, for anything logged, raised or stored."""
        return text.replace(self.api_key, "***") if self.api_key else text

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- internals -------------------------------------------------------------------
    def _efetch_batch(self, search: EsearchResult, db: str, retstart: int, retmax: int,
                      rettype: str | None, retmode: str) -> bytes:
        return self.efetch(db=db, webenv=search.webenv, query_key=search.query_key,
                           retstart=retstart, retmax=retmax, rettype=rettype, retmode=retmode)

    def _search_again(self, search: EsearchResult) -> EsearchResult:
        params = dict(search.params)
        term = params.pop("term")
        fresh = self.esearch(term, db=params.get("db", "pubmed"),
                             mindate=params.get("mindate") or None,
                             maxdate=params.get("maxdate") or None,
                             datetype=params.get("datetype", "edat"), usehistory=True,
                             retmax=int(params.get("retmax", 0)),
                             retstart=int(params.get("retstart", 0)))
        if fresh.count != search.count:
            raise EutilsResultChanged(search, fresh)
        return fresh

    def _full_params(self, params: dict) -> dict:
        full = {k: v for k, v in params.items() if v is not None}
        full["tool"] = self.tool
        if self.email:
            full["email"] = self.email
        if self.api_key:
            full["api_key"] = self.api_key
        return full

    def _public_url(self, endpoint: str, params: dict) -> str:
        """The request as a URL without the API key, for logs and errors (a long ID list
        is cut short so that one failed request does not flood the log)."""
        shown = {k: v for k, v in params.items() if k != "api_key"}
        ids = str(shown.get("id", "")).split(",")
        if len(ids) > 5:
            shown["id"] = ",".join(ids[:3]) + f",...({len(ids)}_ids)"
        term = str(shown.get("term", ""))
        if len(term) > 60:  # the query is in the search log in full; a log line needs less
            shown["term"] = term[:57] + "..."
        return self.redact(f"{self.base_url}{endpoint}?{urlencode(shown, safe=',()')}")

    def _request(self, endpoint: str, params: dict, *, post: bool = False,
                 expect_xml: bool = True) -> bytes:
        """Send one E-utilities request, retrying transient failures; returns the body."""
        full = self._full_params(params)
        url = self._public_url(endpoint, params)
        # POST keeps the key out of URLs (and so out of proxy logs and exceptions).
        post = post or bool(self.api_key) or len(self.base_url + urlencode(full)) > MAX_GET_URL
        attempt = 0
        started = time.monotonic()
        while True:
            try:
                return self._attempt(endpoint, full, url, post, expect_xml)
            except _Retryable as retry:
                attempt += 1
                self.stats["retries"] += 1
                if attempt > self.max_retries:
                    final = retry.final
                    final.args = (f"{final}; gave up after {attempt} attempts in "
                                  f"{time.monotonic() - started:.0f} s: NCBI may be busy or "
                                  "down, so run the same command again later (what was "
                                  "fetched is kept and not asked for again)",)
                    raise final from final.__cause__
                if retry.unreachable and (time.monotonic() - started
                                          + self.backoff * 2 ** (attempt - 1)
                                          > UNREACHABLE_WITHIN - CONNECT_TIMEOUT):
                    raise EutilsUnreachable(self.redact(self.base_url),
                                            *retry.unreachable) from None
                self._wait_before_retry(attempt, retry)

    def _attempt(self, endpoint: str, full: dict, url: str, post: bool,
                 expect_xml: bool) -> bytes:
        try:
            with self.rate_limiter.slot():
                self.stats["requests"] += 1
                log.debug("%s %s", "POST" if post else "GET", url)
                # A short connect timeout: an unreachable host is told within seconds,
                # while a slow answer still gets the full read timeout.
                timeout = (min(CONNECT_TIMEOUT, self.timeout), self.timeout)
                if post:
                    response = self._session.post(self.base_url + endpoint, data=full,
                                                  timeout=timeout)
                else:
                    response = self._session.get(self.base_url + endpoint, params=full,
                                                 timeout=timeout)
                body = response.content
        except requests.RequestException as exc:
            self.stats["transport errors"] += 1
            unreachable = unreachable_kind(exc)
            reason = unreachable[0] if unreachable else self.redact(_short_reason(exc))
            error = EutilsHTTPError(url, None, reason)
            error.__cause__ = _scrubbed(exc, self.redact)
            raise _Retryable(error, unreachable=unreachable) from None
        self.stats[f"HTTP {response.status_code}"] += 1
        if response.status_code != 200:
            self._raise_for_status(url, response)
        self._check_body(url, body, expect_xml)
        return body

    def _raise_for_status(self, url: str, response: requests.Response) -> None:
        message = self.redact(_ncbi_message(response.content) or response.reason or "")
        error = EutilsHTTPError(url, response.status_code, message)
        try:
            response.raise_for_status()
        except requests.HTTPError as exc:
            error.__cause__ = _scrubbed(exc, self.redact)
        if response.status_code in RETRY_STATUSES:
            raise _Retryable(error, _retry_after(response.headers.get("Retry-After")))
        raise error

    def _check_body(self, url: str, body: bytes, expect_xml: bool) -> None:
        """An HTTP 200 can still carry a failure; turn it into an error (maybe retried)."""
        message = _ncbi_error(body)
        if message is not None:
            message = self.redact(message)
            if _HISTORY_FAILURE.search(message):
                raise EutilsHistoryError(url, message)
            error = EutilsResponseError(url, message,
                                        permanent=bool(_PERMANENT_FAILURE.search(message)))
            if error.permanent:
                raise error
            raise _Retryable(error)
        if not body.strip():
            raise _Retryable(EutilsResponseError(url, "empty response body"))
        if expect_xml and not _xml_complete(body):
            raise _Retryable(EutilsResponseError(url, "response ends before its XML is closed"))

    def _wait_before_retry(self, attempt: int, retry: _Retryable) -> None:
        if retry.after is not None:
            delay = min(retry.after, MAX_BACKOFF)
            # Every process sharing the limit holds back, not only this one.
            self.rate_limiter.pause(delay)
            log.warning("%s; NCBI asks to wait %.1f s (retry %d of %d)",
                        retry.final, delay, attempt, self.max_retries)
            return
        delay = random.uniform(0, min(MAX_BACKOFF, self.backoff * 2 ** (attempt - 1)))
        log.warning("%s; retrying in %.1f s (retry %d of %d)",
                    retry.final, delay, attempt, self.max_retries)
        time.sleep(delay)


class _Retryable(Exception):
    """Internal: a failure worth another attempt; `final` is raised if attempts run out."""

    def __init__(self, final: EutilsError, after: float | None = None,
                 unreachable: tuple[str, str] | None = None):
        super().__init__(str(final))
        self.final = final
        self.after = after
        self.unreachable = unreachable


def _scrubbed(exc: BaseException, redact) -> BaseException:
    """A copy of a transport error whose message no longer holds the API key."""
    clean = type(exc).__new__(type(exc))
    clean.args = tuple(redact(str(a)) for a in exc.args)
    for attribute in ("request", "response"):  # they hold the request, key and all
        if hasattr(exc, attribute):
            setattr(clean, attribute, None)
    return clean


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def _ncbi_error(body: bytes) -> str | None:
    """NCBI's error message inside a 200 body (XML `<ERROR>` or JSON `ERROR`/`error`)."""
    head = body[:4096].lstrip()
    if head.startswith(b"{"):
        try:
            data = json.loads(body)
        except ValueError:
            return None
        return _json_error(data)
    match = _ERROR_TAG.search(head)
    if match and not _is_record_set(head[:match.start()]):
        return match.group(1).decode("utf-8", "replace").strip()
    return None


def _json_error(data) -> str | None:
    if not isinstance(data, dict):
        return None
    for key in ("ERROR", "error"):
        if data.get(key):
            return str(data[key])
    for value in data.values():
        if isinstance(value, dict):
            found = _json_error(value)
            if found:
                return found
    return None


def _is_record_set(head: bytes) -> bool:
    """True if the body is a set of records, whose text may legitimately say ERROR."""
    return any(tag in head for tag in (b"<PubmedArticleSet", b"<pmc-articleset"))


def _ncbi_message(body: bytes) -> str:
    """A short human message from an error body: NCBI's own words where it gives them."""
    found = _ncbi_error(body)
    if found:
        return found
    text = re.sub(r"<[^>]+>", " ", body[:2000].decode("utf-8", "replace"))
    return " ".join(text.split())[:300]


_ROOT_TAG = re.compile(rb"<([A-Za-z_][\w.:-]*)")


def _xml_complete(body: bytes) -> bool:
    """Cheap check that an XML body was not cut off: its root element is closed."""
    match = _ROOT_TAG.search(body)  # the prolog's <?xml and <!DOCTYPE never match
    if match is None:
        return False
    tail = body[-512:].rstrip()
    return tail.endswith((b"</" + match.group(1) + b">", b"/>"))
