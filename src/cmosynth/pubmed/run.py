"""Dated PubMed search runs: the PRISMA-S record of what was searched, when, and found.

A run is one Entrez-date window (`<outputs>/<topic>/search/<mindate>_<maxdate>_<query hash>/`)
holding every raw response (`raw/`, gzip, named by request), the records parsed from them
(`records.jsonl`) and `search_log.json`, written last, which marks the run complete.
The first run covers the topic's `mindate` to `until`; each later run (an update) covers
the previous run's last day to `until`, and also fetches the records of the query that
PubMed revised in that window ([mdat]): an earlier record revised since is refreshed (the
latest run's version wins in the union), one that only now matches the query is new. Runs are never overwritten: repeating a run reads
its raw responses and sends nothing, and an interrupted run resumes with the batches
whose raw responses are missing. `search/records.jsonl` unites every run of the query.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import hashlib
import json
import logging
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from cmosynth import __version__
from cmosynth.config import parse_date
from cmosynth.console import Progress
from cmosynth.errors import CmosynthError, ConfigError, InputError
from cmosynth.files import atomic_write, write_json
from cmosynth.pubmed.client import (
    EsearchResult,
    EutilsClient,
    EutilsResultChanged,
    batch_starts,
    esearch_params,
)
from cmosynth.pubmed.parser import parse_pubmed_xml
from cmosynth.records import RECORD_FIELDS

log = logging.getLogger("cmosynth.pubmed.run")

SEARCH_LOG = "search_log.json"
RECORDS = "records.jsonl"
DATE_FIELDS = {"edat": "Entrez date [edat]", "pdat": "Publication date [dp]",
               "mdat": "Modification date [lr]"}
#: How often a slice is started over when PubMed's result changes under it.
MAX_RESTARTS = 3
#: gzip level for raw responses: level 3 compresses PubMed XML nearly as well as 9 in a
#: fraction of the time, which keeps a harvest bound by NCBI's rate, not by this machine.
GZIP_LEVEL = 3
#: Seconds an interrupted run waits for the batch being fetched ahead to arrive.
PREFETCH_GRACE = 5.0

T = TypeVar("T")


class SearchError(CmosynthError):
    """A search that cannot be run as configured (e.g. one day holds too many records)."""


# --- windows -------------------------------------------------------------------------
@dataclass(frozen=True)
class Window:
    """An inclusive range of dates, the unit PubMed searches are sliced into."""

    first: dt.date
    last: dt.date

    @property
    def label(self) -> str:
        return f"{self.first.isoformat()}_{self.last.isoformat()}"

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def ncbi(self) -> tuple[str, str]:
        """The window as E-utilities `mindate`/`maxdate` (YYYY/MM/DD)."""
        return self.first.strftime("%Y/%m/%d"), self.last.strftime("%Y/%m/%d")

    def halves(self) -> tuple[Window, Window]:
        """Two windows of (nearly) equal length that together cover this one."""
        middle = self.first + dt.timedelta(days=self.days // 2 - 1)
        return Window(self.first, middle), Window(middle + dt.timedelta(days=1), self.last)

    def as_dict(self) -> dict:
        return {"mindate": self.first.isoformat(), "maxdate": self.last.isoformat()}


@dataclass
class Slice:
    """A window small enough for PubMed to serve whole, and its search on the history server."""

    window: Window
    search: EsearchResult
    retrieved: int = 0
    done: set[int] = field(default_factory=set)  # retstarts of stored batches
    record_ids: set[str] = field(default_factory=set)


def query_hash(settings: dict) -> str:
    """Short stable id of the search (query, date type, first date): runs of a changed
    search never mix with the old one's."""
    key = f"{settings['date_type']}\n{settings['mindate']}\n{settings['query']}"
    return hashlib.sha256(key.encode()).hexdigest()[:8]


# --- the public entry point ----------------------------------------------------------
def search_topic(topic: dict, outputs: str | Path, until: dt.date | None = None, *,
                 client: EutilsClient | None = None) -> Path:
    """Run (or repeat, resume, update) the topic's PubMed search; returns the run folder.

    Also rewrites `<outputs>/<topic>/search/records.jsonl`, the union of every run of the
    current query, one record per PMID, the latest run's version winning.
    """
    settings = topic["search"]["pubmed"]
    search_dir = Path(outputs) / topic["name"] / "search"
    until = until or dt.date.today()
    qhash = query_hash(settings)
    runs = completed_runs(search_dir, qhash)
    repeat = next((run for run in runs if run["window"]["maxdate"] == until.isoformat()), None)
    if repeat is not None:
        run_dir = search_dir / repeat["run"]
        log.info("run %s already complete: reusing its raw responses, sending no request",
                 repeat["run"])
    else:
        window, previous = plan_window(topic, runs, until)
        run_dir = search_dir / f"{window.label}_{qhash}"
        own_client = client is None
        client = client or EutilsClient()
        try:
            SearchRun(client, run_dir, settings, window, previous, qhash).execute()
        finally:
            if own_client:
                client.close()
    merge_runs(search_dir, qhash)
    return run_dir


def plan_window(topic: dict, runs: list[dict], until: dt.date) -> tuple[Window, str | None]:
    """The window of a new run: from `mindate`, or from the last run's end (an update)."""
    settings = topic["search"]["pubmed"]
    mindate = parse_date(settings["mindate"], "search.pubmed.mindate", topic.get("_path", "topic"))
    if until < mindate:
        raise ConfigError(topic.get("_path", "topic"), "search.pubmed.mindate",
                          f"{mindate} is after the search's last day {until}; "
                          "lower mindate or pass a later --until")
    if not runs:
        return Window(mindate, until), None
    latest = runs[-1]
    latest_end = dt.date.fromisoformat(latest["window"]["maxdate"])
    if until < latest_end:
        raise SearchError(f"run {latest['run']} already searched up to {latest_end}; an update "
                          f"cannot end earlier: use --until {latest_end} (replays it) or later")
    return Window(latest_end, until), latest["run"]


def earlier_record_ids(search_dir: Path, qhash: str, run: str) -> set[str]:
    """Record ids the other completed runs of the query retrieved."""
    ids: set[str] = set()
    for entry in completed_runs(search_dir, qhash):
        if entry["run"] != run:
            with open(search_dir / entry["run"] / RECORDS, encoding="utf-8") as handle:
                ids.update(json.loads(line)["record_id"] for line in handle if line.strip())
    return ids


def completed_runs(search_dir: Path, qhash: str) -> list[dict]:
    """Search logs of the finished runs of this query, oldest window end first."""
    logs = []
    for path in sorted(search_dir.glob(f"*/{SEARCH_LOG}")):
        try:
            entry = json.loads(path.read_text("utf-8"))
        except ValueError:
            raise InputError(path, "not a valid search log (JSON); delete this run folder "
                                   "to search its window again") from None
        if entry.get("query_hash") == qhash:
            logs.append(entry)
    return sorted(logs, key=lambda e: (e["window"]["maxdate"], e["window"]["mindate"]))


def merge_runs(search_dir: Path, qhash: str) -> int:
    """Write search/records.jsonl: every run of the query united by PMID, sorted.

    Lines are copied as the runs wrote them (no re-serialisation), so the union is
    byte-identical whenever the runs are.
    """
    runs = completed_runs(search_dir, qhash)
    if len(runs) == 1:  # the union of one run is that run: copy it as it is
        with atomic_write(search_dir / RECORDS, "wb") as out:
            out.write((search_dir / runs[0]["run"] / RECORDS).read_bytes())
        return runs[0]["records_retrieved"]
    merged: dict[str, tuple[tuple, str]] = {}
    for entry in runs:
        with open(search_dir / entry["run"] / RECORDS, encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    record = json.loads(line)
                    merged[record["record_id"]] = (_pmid_order(record), line)
    with atomic_write(search_dir / RECORDS) as out:
        for _, line in sorted(merged.values()):
            out.write(line)
    log.info("search/records.jsonl: %d unique records", len(merged))
    return len(merged)


def _jsonl_line(record: dict) -> str:
    """A record as `cmosynth.records.write_records` writes it: contract fields first."""
    ordered = {name: record[name] for name in RECORD_FIELDS if name in record}
    ordered.update((k, v) for k, v in record.items() if k not in ordered)
    return json.dumps(ordered, ensure_ascii=False) + "\n"


def _pmid_order(record: dict) -> tuple:
    pmid = record.get("pmid") or ""
    return (0, int(pmid), "") if pmid.isdigit() else (1, 0, record["record_id"])


# --- one run -------------------------------------------------------------------------
class SearchRun:
    """Carries out one dated run: slice the window, fetch each slice in batches, log it."""

    def __init__(self, client: EutilsClient, run_dir: Path, settings: dict, window: Window,
                 previous: str | None, qhash: str):
        self.client = client
        self.run_dir = Path(run_dir)
        self.raw_dir = self.run_dir / "raw"
        self.settings = settings
        self.query = settings["query"]
        self.date_type = settings["date_type"]
        self.window = window
        self.previous = previous
        self.qhash = qhash
        #: record_id -> (sort key, JSON line): records are serialised as they arrive,
        #: while the next batch is on its way, so the run ends soon after its last request.
        self.records: dict[str, tuple[tuple, str]] = {}
        self.split_checks: list[dict] = []
        self.prefix = ""   # of raw file names: "mdat_" while fetching revised records
        self.started = _now()
        self.requests_before = client.stats["requests"]

    def execute(self) -> Path:
        """Search, slice, fetch; write records.jsonl, then search_log.json (run complete)."""
        if self.raw_dir.exists():
            log.info("resuming run %s from its raw responses", self.run_dir.name)
        whole = self.esearch(self.window)
        log.info("PubMed: %d records from %s to %s (%s)", whole.count, *self.window.ncbi(),
                 DATE_FIELDS[self.date_type])
        slices = self.slices(self.window, whole)
        total = sum(s.search.count for s in slices)
        if total != whole.count:
            log.warning("the slices add up to %d records but the whole window has %d",
                        total, whole.count)
        with Progress(f"PubMed {self.window.label}", total=total) as progress:
            self.fetch_all(slices, progress)
        for piece in slices:
            if piece.retrieved < piece.search.count:
                log.warning("%s: PubMed counted %d records but served %d",
                            piece.window.label, piece.search.count, piece.retrieved)
        revisions = self.fetch_revisions() if self.revisions_apply() else None
        with atomic_write(self.run_dir / RECORDS) as out:
            out.writelines(line for _, line in sorted(self.records.values()))
        write_json(self.run_dir / SEARCH_LOG, {**self.search_log(whole, slices),
                                               "revisions": revisions})
        log.info("run %s: %d records from %d slices", self.run_dir.name, len(self.records),
                 len(slices))
        return self.run_dir

    # --- records PubMed revised since the last run ------------------------------------
    def revisions_apply(self) -> bool:
        """An update by Entrez date also looks for revisions (a first run has all records
        as they are; a search by modification date finds them anyway)."""
        return self.previous is not None and self.date_type == "edat"

    def fetch_revisions(self) -> dict:
        """Fetch the query's records modified in the window ([mdat]) that the Entrez-date
        search did not return, and count which an earlier run had (refreshed) and which
        are new to the review (e.g. newly indexed with a MeSH term of the query)."""
        found_by_entry = set(self.records)
        self.date_type, self.prefix = "mdat", "mdat_"
        try:
            whole = self.esearch(self.window)
            slices = self.slices(self.window, whole)
            with Progress(f"PubMed revisions {self.window.label}",
                          total=sum(s.search.count for s in slices)) as progress:
                self.fetch_all(slices, progress)
        finally:
            self.date_type, self.prefix = "edat", ""
        revised = set(self.records) - found_by_entry
        first_day = parse_date(self.settings["mindate"], "search.pubmed.mindate").isoformat()
        before = {record_id for record_id in revised
                  if (json.loads(self.records[record_id][1]).get("entrez_date") or first_day)
                  < first_day}
        for record_id in before:   # entered PubMed before the review's first day
            del self.records[record_id]
        revised -= before
        earlier = earlier_record_ids(self.run_dir.parent, self.qhash, self.run_dir.name)
        refreshed = len(revised & earlier)
        log.info("PubMed revisions: %d records of the query modified from %s to %s; %d an "
                 "earlier run had (refreshed), %d new to the review, %d entered before %s "
                 "(left out)", whole.count, *self.window.ncbi(), refreshed,
                 len(revised) - refreshed, len(before), first_day)
        return {"date_field": DATE_FIELDS["mdat"], "count": whole.count,
                "retrieved": sum(s.retrieved for s in slices), "refreshed": refreshed,
                "new": len(revised) - refreshed, "entered_before_first_day": len(before)}

    # --- searching -------------------------------------------------------------------
    def esearch(self, window: Window) -> EsearchResult:
        """The window's esearch, from its raw response if one was kept (no request)."""
        mindate, maxdate = window.ncbi()
        path = self.raw_dir / f"esearch_{self.prefix}{window.label}.xml.gz"
        if path.exists():
            params = esearch_params(self.query, mindate=mindate, maxdate=maxdate,
                                    datetype=self.date_type)
            return EsearchResult.from_xml(gzip.decompress(path.read_bytes()), params)
        result = self.client.esearch(self.query, mindate=mindate, maxdate=maxdate,
                                     datetype=self.date_type, usehistory=True, retmax=0)
        self.keep_search(window, result)
        return result

    def keep_search(self, window: Window, result: EsearchResult) -> None:
        keep_raw(self.raw_dir / f"esearch_{self.prefix}{window.label}.xml.gz", result.raw)

    def slices(self, window: Window, result: EsearchResult) -> list[Slice]:
        """Halve the window until every part fits `max_per_slice` (PubMed serves 9,999)."""
        limit = self.settings["max_per_slice"]
        if result.count <= limit:
            return [Slice(window, result)]
        if window.days == 1:
            raise SearchError(
                f"{window.first.isoformat()}: {result.count} records on this single day "
                f"({DATE_FIELDS[self.date_type]}), more than the {limit} one search may "
                "return; narrow the query (or split it into several topics)")
        left, right = window.halves()
        left_result, right_result = self.esearch(left), self.esearch(right)
        halves_total = left_result.count + right_result.count
        self.split_checks.append({**window.as_dict(), "count": result.count,
                                  "halves": [left_result.count, right_result.count]})
        if halves_total != result.count:
            log.warning("%s: the halves hold %d records but the window has %d", window.label,
                        halves_total, result.count)
        return self.slices(left, left_result) + self.slices(right, right_result)

    # --- fetching --------------------------------------------------------------------
    def batch_path(self, window: Window, retstart: int) -> Path:
        return self.raw_dir / f"efetch_{self.prefix}{window.label}_{retstart}.xml.gz"

    def fetch_all(self, slices: list[Slice], progress: Progress) -> None:
        """Read every stored batch, then fetch the missing ones, slice after slice."""
        for piece in slices:
            self.read_stored(piece, progress)
        for piece in slices:
            self.fetch_slice(piece, progress)

    def read_stored(self, piece: Slice, progress: Progress) -> None:
        """Count the batches whose raw response was kept by an earlier, interrupted run."""
        for start in batch_starts(piece.search.count, self.settings["batch_size"]):
            path = self.batch_path(piece.window, start)
            if path.exists():
                self.stored(piece, start, list(parse_pubmed_xml(path)), progress)

    def fetch_slice(self, piece: Slice, progress: Progress) -> None:
        """Fetch the slice's missing batches, starting over if PubMed's result changed."""
        for _ in range(MAX_RESTARTS):
            try:
                self.fetch_missing(piece, progress)
                return
            except EutilsResultChanged as changed:
                log.warning("%s: %s; refetching this slice", piece.window.label, changed)
                self.restart_slice(piece, changed.after)
        raise SearchError(f"{piece.window.label}: PubMed's result kept changing while it "
                          "was fetched; run the search again later")

    def fetch_missing(self, piece: Slice, progress: Progress) -> None:
        """Fetch the batches not yet done; each is parsed, then stored, then counted.

        The next batch is fetched while this one is parsed (`prefetched`).
        """
        batches = self.client.iter_efetch(piece.search, batch_size=self.settings["batch_size"],
                                          skip=set(piece.done))
        for batch in prefetched(batches):
            if batch.search is not piece.search:  # searched again: the WebEnv expired
                piece.search = batch.search
                self.keep_search(piece.window, batch.search)
            path = self.batch_path(piece.window, batch.retstart)
            self.stored(piece, batch.retstart, store_batch(path, batch.body), progress)

    def stored(self, piece: Slice, retstart: int, records: list[dict],
               progress: Progress) -> None:
        """A batch is done: its raw response is kept and its records are parsed."""
        piece.done.add(retstart)
        for record in records:
            self.records[record["record_id"]] = (_pmid_order(record), _jsonl_line(record))
            piece.record_ids.add(record["record_id"])
        piece.retrieved += len(records)
        progress.advance(len(records))

    def restart_slice(self, piece: Slice, fresh: EsearchResult) -> None:
        """The stored batches no longer line up with PubMed's result: drop and refetch."""
        for path in self.raw_dir.glob(f"efetch_{self.prefix}{piece.window.label}_*.xml.gz"):
            path.unlink()
        for record_id in piece.record_ids:
            self.records.pop(record_id, None)
        piece.done.clear()
        piece.record_ids.clear()
        piece.retrieved = 0
        piece.search = fresh
        self.keep_search(piece.window, fresh)

    # --- the PRISMA-S record ---------------------------------------------------------
    def search_log(self, whole: EsearchResult, slices: list[Slice]) -> dict:
        mindate, maxdate = self.window.ncbi()
        request = esearch_params(self.query, mindate=mindate, maxdate=maxdate,
                                 datetype=self.date_type)
        return {
            "database": "PubMed",
            "interface": "NCBI E-utilities (esearch, efetch)",
            "url": self.client.redact(self.client.base_url),
            "query": self.query,
            "query_translation": whole.query_translation,
            "ncbi_warnings": whole.warnings,
            "request": {"esearch": request, "efetch_batch_size": self.settings["batch_size"]},
            "date_type": self.date_type,
            "date_field": DATE_FIELDS[self.date_type],
            "window": self.window.as_dict(),
            "run": self.run_dir.name,
            "query_hash": self.qhash,
            "update_of": self.previous,
            "count": whole.count,
            "slices": [{**s.window.as_dict(), "count": s.search.count,
                        "retrieved": s.retrieved} for s in slices],
            "slices_total": sum(s.search.count for s in slices),
            "slices_add_up": sum(s.search.count for s in slices) == whole.count,
            "split_checks": self.split_checks,
            "records_retrieved": len(self.records),
            "requests_sent": self.client.stats["requests"] - self.requests_before,
            "started": self.started,
            "finished": _now(),
            "tool": "cmosynth",
            "version": __version__,
            "raw_files": sorted(p.name for p in self.raw_dir.glob("*.xml.gz")),
        }


def store_batch(path: Path, body: bytes) -> list[dict]:
    """Parse an efetch response, then keep it: a batch is done only when both succeeded."""
    try:
        records = list(parse_pubmed_xml(body))
    except CmosynthError as exc:
        raise SearchError(f"{path.name}: {exc}") from None
    keep_raw(path, body)
    return records


def keep_raw(path: Path, body: bytes) -> None:
    """Store a raw response gzipped, atomically, with mtime 0 so equal bodies give equal files."""
    with (atomic_write(path, "wb") as handle,
          gzip.GzipFile(fileobj=handle, mode="wb", compresslevel=GZIP_LEVEL, mtime=0) as gz):
        gz.write(body)


_END = object()


def prefetched(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Yield from `items`, produced ahead in a background thread.

    Fetching the next batch then overlaps parsing and storing this one, so a harvest
    takes as long as NCBI's rate limit requires and not that plus the local work.
    Errors of the producer are raised here, in the caller's thread.
    """
    box: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                box.put((item, None))
                if stop.is_set():
                    return
        except BaseException as exc:  # noqa: BLE001 (handed over to the consuming thread)
            box.put((None, exc))
            return
        box.put((_END, None))

    worker = threading.Thread(target=produce, name="efetch-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item, error = box.get()
            if error is not None:
                raise error
            if item is _END:
                return
            yield item
    finally:
        # Let the producer finish its request and see `stop`, but never hold up an
        # interrupted run for long: a thread stuck in a retry is left to die with it.
        stop.set()
        deadline = time.monotonic() + PREFETCH_GRACE
        while worker.is_alive() and time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):
                while True:
                    box.get_nowait()
            worker.join(0.05)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
