"""The workspace's state: a topic's outputs, and one reviewer's files, without HTTP.

Everything a view shows or changes goes through `Workspace`: the routes in `app.py` only
read a request, call one method and render one template. The workspace reads the stage
outputs (`dedup/records.jsonl`, `screen/screening.csv`, `dedup/pairs_to_review.csv`,
`extract/sentences.csv`, `extract/cmo.csv`) and writes only the reviewer-owned files the
pipeline reads (`cmosynth.reviewers`), one per reviewer, by appending rows atomically.
A file changed on disk by someone else (a hand edit, another reviewer) is read again
before the next view is built, so nothing written by hand is clobbered or ignored.
"""

from __future__ import annotations

import difflib
import html
import logging
import re
import subprocess
import sys
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from markupsafe import Markup

from cmosynth.config import load_topic
from cmosynth.dedup import read_overrides, settle_overrides
from cmosynth.errors import CmosynthError, ConfigError, InputError
from cmosynth.extract.codebook import ROLES, Codebook, load_codebook
from cmosynth.extract.coding import (CodedByReviewer, coding_agreement, coding_sheet,
                                     coding_table, read_coding_file, sentence_coding)
from cmosynth.extract.configurations import ReviewerConfiguration, read_configuration_file
from cmosynth.files import read_csv_rows
from cmosynth.records import read_records
from cmosynth.reviewers import (COLUMNS, append_rows, check_reviewer_name, remove_last_row,
                                reviewer_file, reviewer_files)
from cmosynth.screen.decisions import (CONSENSUS_REVIEWER, ReviewerDecision, agreement,
                                       latest_by_reviewer, normalise_decision,
                                       read_decision_file)
from cmosynth.screen.profile import query_terms
from cmosynth.screen.queue import ScreeningQueue

log = logging.getLogger("cmosynth.web")


class WorkspaceError(CmosynthError):
    """A request the workspace cannot carry out; the message says why, for the reviewer."""


# --- text for people: highlighting without trusting the text --------------------------
def highlight(text: str, spans: Iterable[tuple[int, int, str, str]]) -> Markup:
    """`text` HTML-escaped, with each (start, end, css class, title) span in a <mark>;
    overlapping spans keep the earlier, longer one."""
    out, at = [], 0
    for start, end, css, title in sorted(spans, key=lambda s: (s[0], -s[1])):
        if start < at or end <= start:
            continue
        out.append(html.escape(text[at:start]))
        out.append(f'<mark class="{css}" title="{html.escape(title)}">'
                   f'{html.escape(text[start:end])}</mark>')
        at = end
    out.append(html.escape(text[at:]))
    return Markup("".join(out))


def term_pattern(terms: Iterable[str]) -> re.Pattern | None:
    """One regex for the query's words and phrases (`*` truncates), whole words."""
    parts = []
    for term in sorted({t.strip() for t in terms if t.strip()}, key=len, reverse=True):
        body = r"\s+".join(re.escape(w).replace(r"\*", r"\w*") for w in term.split())
        parts.append(body)
    if not parts:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(parts) + r")(?!\w)", re.IGNORECASE)


def word_diff(a: str, b: str) -> tuple[Markup, Markup]:
    """Two texts with the words that differ marked, escaped."""
    left, right = re.findall(r"\S+|\s+", a or ""), re.findall(r"\S+|\s+", b or "")
    out_a, out_b = [], []
    matcher = difflib.SequenceMatcher(None, left, right, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        chunk_a, chunk_b = html.escape("".join(left[i1:i2])), html.escape("".join(right[j1:j2]))
        if op == "equal":
            out_a.append(chunk_a)
            out_b.append(chunk_b)
        else:
            if chunk_a:
                out_a.append(f'<mark class="diff">{chunk_a}</mark>')
            if chunk_b:
                out_b.append(f'<mark class="diff">{chunk_b}</mark>')
    return Markup("".join(out_a)), Markup("".join(out_b))


# --- files on disk, read again when they change ----------------------------------------
class WatchedFiles:
    """Reviewer files of one kind, read again whenever one of them changes on disk."""

    def __init__(self, topic: Mapping, kind: str, read):
        self.topic, self.kind, self.read = topic, kind, read
        self.signature: tuple = ()
        self.rows: list = []

    def _signature(self) -> tuple:
        return tuple((str(p), *_stat(p)) for p in reviewer_files(self.topic, self.kind))

    def current(self) -> list:
        signature = self._signature()
        if signature != self.signature:
            self.rows = [row for path, *_ in signature if Path(path).exists()
                         for row in self.read(Path(path))]
            self.signature = signature
        return self.rows

    def added(self, path: Path, rows: Iterable) -> bool:
        """Rows the workspace itself just appended to `path`: kept without reading every
        file again, unless another file changed meanwhile (then all are read). True when
        the rows were simply added."""
        signature = self._signature()
        others = lambda sig: [entry for entry in sig if entry[0] != str(path)]  # noqa: E731
        if others(signature) != others(self.signature) or not self.signature and self.rows:
            self.current()
            return False
        self.rows.extend(rows)
        self.signature = signature
        return True


def _stat(path: Path) -> tuple:
    try:
        stat = path.stat()
        return stat.st_mtime_ns, stat.st_size
    except FileNotFoundError:
        return (None, None)


@dataclass
class Job:
    """A pipeline run started from the workspace."""

    command: list[str]
    log_path: Path
    process: object = None
    label: str = ""

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def tail(self, lines: int = 12) -> list[str]:
        if not self.log_path.exists():
            return []
        text = self.log_path.read_text("utf-8", errors="replace")
        return [line for line in text.splitlines() if line.strip()][-lines:]


@dataclass
class Workspace:
    """One reviewer's workspace over one topic's outputs."""

    topic_path: Path
    outputs: Path
    reviewer: str
    topic: dict = field(init=False)
    lock: threading.RLock = field(default_factory=threading.RLock, init=False)

    def __post_init__(self):
        self.topic_path = Path(self.topic_path)
        self.outputs = Path(self.outputs)
        self.topic = load_topic(self.topic_path)
        self.folder = self.outputs / self.topic["name"]
        check_reviewer_name(self.reviewer)      # a name that cannot name a file fails now
        self.codebook: Codebook | None = (load_codebook(self.topic["codebook"])
                                          if Path(self.topic["codebook"]).exists() else None)
        self._terms = term_pattern(query_terms(self.topic["search"]["pubmed"].get("query", "")))
        self._queue: ScreeningQueue | None = None
        self._queue_signature = None
        self._stop = threading.Event()
        self.job: Job | None = None
        self._aliases: dict[str, str] = {}
        self._records: dict[str, dict] = {}
        self._loaded_records = None
        self._tables: dict[str, tuple] = {}
        self.decision_files = WatchedFiles(self.topic, "decisions", self._read_decisions)
        self.override_files = WatchedFiles(self.topic, "overrides", read_overrides)
        self.coding_files = WatchedFiles(self.topic, "coding", read_coding_file)
        self.configuration_files = WatchedFiles(
            self.topic, "configurations",
            lambda p: read_configuration_file(p, self.codebook) if self.codebook else [])

    def my_file(self, kind: str) -> Path:
        return reviewer_file(self.topic, kind, self.reviewer)

    def consensus_file(self, kind: str) -> Path:
        return reviewer_file(self.topic, kind, CONSENSUS_REVIEWER)

    def close(self) -> None:
        self._stop.set()

    # --- records ---------------------------------------------------------------------
    def _records_path(self) -> Path:
        return self.folder / "dedup" / "records.jsonl"

    def records(self) -> dict[str, dict]:
        """Every deduplicated record by id (read again when the file changes)."""
        path = self._records_path()
        signature = _stat(path)
        if signature != self._loaded_records:
            self._records, self._aliases = {}, {}
            if path.exists():
                for record in read_records(path):
                    self._records[record["record_id"]] = record
                    self._aliases[record["record_id"]] = (record.get("duplicate_of")
                                                          or record["record_id"])
            self._loaded_records = signature
        return self._records

    def record(self, record_id: str) -> dict:
        record = self.records().get(record_id)
        if record is None:
            raise WorkspaceError(f"no record {record_id!r} in {self._records_path()}")
        return record

    def has_records(self) -> bool:
        return bool(self.records())

    def _read_decisions(self, path: Path) -> list[ReviewerDecision]:
        self.records()
        return read_decision_file(path, self._aliases)

    # --- screening -------------------------------------------------------------------
    def queue(self) -> ScreeningQueue:
        """The reviewer's screening queue, built once and told of changed files."""
        with self.lock:
            records = self.records()
            decisions = self.decision_files.current()
            if self._queue is None or self._queue_signature != self._loaded_records:
                kept = [r for r in records.values() if not r.get("duplicate_of")]
                self._stop.set()                  # the old queue's retraining thread ends
                self._stop = threading.Event()
                self._queue = ScreeningQueue(self.topic, kept, decisions, self.reviewer)
                self._queue.retrain()
                self._queue.retrain_in_background(self._stop)
                self._queue_signature = self._loaded_records
                self._queue_decisions = self.decision_files.signature
            elif self._queue_decisions != self.decision_files.signature:
                self._queue.reload(decisions)          # a file changed on disk
                self._queue_decisions = self.decision_files.signature
            return self._queue

    def exclusion_reasons(self) -> list[str]:
        """Reasons a reviewer may pick: the topic's criteria reasons, then common ones."""
        criteria = self.topic["screen"]["criteria"]
        reasons = [rule["reason"] for key in ("require_terms", "exclude_terms")
                   for rule in criteria.get(key) or []]
        reasons += ["wrong population or setting", "wrong intervention or programme",
                    "not about collaboration or co-production", "wrong study design",
                    "not a research article"]
        return list(dict.fromkeys(reasons))

    def decide(self, record_id: str, decision: str, reason: str = "") -> None:
        """Append the reviewer's decision on a record to their decisions file."""
        value = normalise_decision(decision or "")
        if value is None:
            raise WorkspaceError(f"decision {decision!r} is not include, exclude or maybe")
        with self.lock:
            queue = self.queue()
            if record_id not in queue.index:
                raise WorkspaceError(f"record {record_id!r} is not among the records to screen")
            path = self.my_file("decisions")
            row = {"record_id": record_id, "decision": value, "reason": reason.strip(),
                   "reviewer": self.reviewer}
            append_rows(path, [row], COLUMNS["decisions"])
            decided = ReviewerDecision(record_id, value, row["reason"], self.reviewer,
                                       str(path), 0)
            if self.decision_files.added(path, [decided]):
                queue.record(decided)
            else:
                queue.reload(self.decision_files.rows)
            self._queue_decisions = self.decision_files.signature

    def undo(self) -> str | None:
        """Remove the reviewer's last decision; the record id it was on, or None."""
        with self.lock:
            queue = self.queue()
            last = queue.last_decision()
            if last is None:
                return None
            expected = {"record_id": last.record_id, "decision": last.decision}
            if not remove_last_row(self.my_file("decisions"), expected):
                raise WorkspaceError(f"the last row of {self.my_file('decisions')} is not your "
                                     "last decision (the file was edited); edit it by hand")
            queue.forget_last(last.record_id)
            self.decision_files.current()
            self._queue_decisions = self.decision_files.signature
            return last.record_id

    def screening_card(self, record: dict) -> dict:
        """What the screen view shows of one record."""
        queue = self.queue()
        title, abstract = record.get("title") or "", record.get("abstract") or ""
        return {"record": record, "title": self.marked(title), "abstract": self.marked(abstract),
                "score": queue.score_of(record["record_id"]),
                "rule_reason": queue.rule_reason(record["record_id"]),
                "links": record_links(record)}

    def marked(self, text: str) -> Markup:
        """Text with the topic's query terms and the codebook's cues highlighted."""
        spans = []
        if self._terms is not None:
            spans += [(m.start(), m.end(), "term", "search term")
                      for m in self._terms.finditer(text)]
        if self.codebook is not None:
            for concept in self.codebook.concepts:
                spans += [(m.start(), m.end(), f"cue cue-{concept.role}",
                           f"{concept.role}: {concept.label}") for m in concept.find(text)]
        return highlight(text, spans)

    # --- duplicates ------------------------------------------------------------------
    def pairs(self) -> list[dict]:
        """Pairs to review with both records, their differences marked, and the
        decisions taken on them (this reviewer's, and the settled one)."""
        rows = self._table("dedup/pairs_to_review.csv")
        records = self.records()
        overrides = self.override_files.current()
        mine = {}
        for o in overrides:
            if (o.reviewer or "") == self.reviewer:
                mine[tuple(sorted((o.record_id_a, o.record_id_b)))] = o
        settled = {tuple(sorted((o.record_id_a, o.record_id_b))): o
                   for o in settle_overrides(overrides)}
        pairs = []
        for number, row in enumerate(rows, start=1):
            a, b = records.get(row["record_id_a"], {}), records.get(row["record_id_b"], {})
            key = tuple(sorted((row["record_id_a"], row["record_id_b"])))
            fields = []
            for name, label in (("title", "Title"), ("authors", "Authors"),
                                ("journal", "Journal"), ("year", "Year"), ("doi", "DOI"),
                                ("pmid", "PMID"), ("abstract", "Abstract")):
                left, right = _field_text(a.get(name)), _field_text(b.get(name))
                marked = word_diff(left, right)
                fields.append({"label": label, "a": marked[0], "b": marked[1],
                               "same": left == right})
            pairs.append({"number": number, "a": row["record_id_a"], "b": row["record_id_b"],
                          "score": row.get("score", ""), "rule": row.get("rule", ""),
                          "reason": row.get("reason", ""), "fields": fields,
                          "mine": mine.get(key), "settled": settled.get(key)})
        return pairs

    def decide_pair(self, a: str, b: str, same: bool, reason: str = "") -> None:
        known = {(r["record_id_a"], r["record_id_b"]) for r in
                 self._table("dedup/pairs_to_review.csv")}
        records = self.records()
        if (a, b) not in known and (a not in records or b not in records):
            raise WorkspaceError(f"{a} and {b} are not a pair of this review")
        with self.lock:
            append_rows(self.my_file("overrides"),
                        [{"record_id_a": a, "record_id_b": b,
                          "decision": "duplicates" if same else "not_duplicates",
                          "reviewer": self.reviewer, "reason": reason.strip()}],
                        COLUMNS["overrides"])

    # --- coding ----------------------------------------------------------------------
    def _table(self, relative: str) -> list[dict]:
        """A stage's CSV table, read again only when the file changes (a rerun)."""
        path = self.folder / relative
        signature = _stat(path)
        cached = self._tables.get(relative)
        if cached is None or cached[0] != signature:
            cached = self._tables[relative] = (signature, read_csv_rows(path))
        return cached[1]

    def sentences(self) -> dict[str, list[dict]]:
        """record_id -> its rows of extract/sentences.csv, in order."""
        by_record: dict[str, list[dict]] = {}
        for row in self._table("extract/sentences.csv"):
            by_record.setdefault(row["record_id"], []).append(row)
        return by_record

    def included(self) -> list[dict]:
        path = self.folder / "screen" / "included.jsonl"
        return list(read_records(path)) if path.exists() else []

    def coding_order(self, order: str = "uncertain", seed: int = 0) -> list[str]:
        """Included records to code: `uncertain` puts first the records whose sentences the
        coder is least sure of (what most helps it learn); `sample` draws them as
        `cmosynth coding-sheet --seed` does."""
        sentences = self.sentences()
        ids = [r["record_id"] for r in self.included() if r["record_id"] in sentences]
        if order == "sample":
            rows = [row for rid in ids for row in sentences[rid]]
            drawn = list(dict.fromkeys(r["record_id"] for r in coding_sheet(rows, None, seed)))
            return drawn + [rid for rid in ids if rid not in drawn]

        def doubt(record_id: str) -> float:
            values = [float(row[f"{role}_confidence"]) for row in sentences[record_id]
                      for role in ROLES if row.get(f"{role}_confidence")]
            return -max((min(v, 1 - v) for v in values), default=0.0)

        coded = {row.record_id for row in self.coding_files.current()
                 if row.reviewer == self.reviewer}
        return sorted(ids, key=lambda rid: (rid in coded, doubt(rid), rid))

    def my_coding(self) -> dict[tuple[str, int], CodedByReviewer]:
        table = {}
        for row in self.coding_files.current():
            if row.reviewer == self.reviewer:
                table[(row.record_id, row.sentence)] = row
        return table

    def code_view(self, record_id: str) -> dict:
        """A record's sentences with the coder's roles, confidence and concepts, the
        reviewer's coding where given, and the CMOCs: the coder's and the reviewer's."""
        record = self.record(record_id)
        rows = self.sentences().get(record_id, [])
        mine = self.my_coding()
        concepts = self.codebook.concepts_by_id if self.codebook else {}
        sentences = []
        for row in rows:
            number = int(row["sentence"])
            coded = mine.get((record_id, number))
            suggested = [r for r in ROLES if r in row["roles"].split(";")]
            confidence = {r: float(row[f"{r}_confidence"]) for r in ROLES
                          if row.get(f"{r}_confidence")}
            sentence_concepts = [c for c in row["concepts"].split(";") if c]
            if coded is not None and coded.concepts is not None:
                sentence_concepts = sorted(coded.concepts)
            sentences.append({
                "number": number, "section": row["section"], "text": self.marked(row["text"]),
                "plain": row["text"], "suggested": suggested, "confidence": confidence,
                "roles": sorted(coded.roles, key=ROLES.index) if coded else suggested,
                "coded": coded is not None, "method": row["method"],
                "concepts": [{"id": c, "label": concepts[c].label if c in concepts else c,
                              "role": concepts[c].role if c in concepts else ""}
                             for c in sentence_concepts]})
        machine = [dict(r) for r in self._table("extract/cmo.csv")
                   if r["record_id"] == record_id and r["method"] != "reviewer"]
        for cmoc in machine:
            cmoc["sentences"] = {role: _sentence_of(cmoc[f"{role}_quote"], rows)
                                 for role in ROLES}
        return {"record": record, "links": record_links(record), "sentences": sentences,
                "machine": machine, "mine": self.my_configurations(record_id)}

    def my_configurations(self, record_id: str) -> list[ReviewerConfiguration]:
        latest: dict[str, ReviewerConfiguration] = {}
        for row in self.configuration_files.current():
            if row.record_id == record_id and row.reviewer == self.reviewer:
                latest[row.label] = row
        return [c for c in latest.values() if c.sentences]

    def code_sentence(self, record_id: str, number: int, roles: Iterable[str],
                      concepts: Iterable[str] | None) -> None:
        """Append the reviewer's roles (and concepts) for one sentence."""
        rows = self.sentences().get(record_id, [])
        if not 1 <= number <= len(rows):
            raise WorkspaceError(f"record {record_id} has no sentence {number}")
        roles = [r for r in ROLES if r in set(roles)]
        if set(roles) - set(ROLES):
            raise WorkspaceError("roles are context, mechanism and outcome")
        concept_cell = ""
        if concepts is not None:
            concepts = sorted(set(concepts))
            unknown = [c for c in concepts if self.codebook is None
                       or c not in self.codebook.concepts_by_id]
            if unknown:
                raise WorkspaceError(f"concept {unknown[0]!r} is not in the codebook")
            concept_cell = ";".join(concepts) or "none"
        row = rows[number - 1]
        with self.lock:
            append_rows(self.my_file("coding"),
                        [{"record_id": record_id, "sentence": number, "section": row["section"],
                          "roles": ";".join(roles) or "none", "concepts": concept_cell,
                          "reviewer": self.reviewer, "text": row["text"]}],
                        COLUMNS["coding"])

    def accept_record(self, record_id: str) -> int:
        """Code every sentence the reviewer has not coded yet as the coder suggests."""
        mine = self.my_coding()
        rows = [row for row in self.sentences().get(record_id, [])
                if (record_id, int(row["sentence"])) not in mine]
        with self.lock:
            append_rows(self.my_file("coding"),
                        [{"record_id": record_id, "sentence": row["sentence"],
                          "section": row["section"], "roles": row["roles"] or "none",
                          "reviewer": self.reviewer, "text": row["text"]} for row in rows],
                        COLUMNS["coding"])
        return len(rows)

    def link_cmoc(self, record_id: str, sentences: Mapping[str, int | None],
                  concepts: Mapping[str, Iterable[str]], theory_id: str, summary: str,
                  label: str | None = None) -> str:
        """Append a configuration the reviewer linked; returns its label."""
        count = len(self.sentences().get(record_id, []))
        chosen = {role: int(n) for role, n in sentences.items() if role in ROLES and n}
        if len(chosen) < 2:
            raise WorkspaceError("a CMOC needs at least two of context, mechanism and outcome")
        if any(not 1 <= n <= count for n in chosen.values()):
            raise WorkspaceError(f"record {record_id} has sentences 1 to {count}")
        known = self.codebook.concepts_by_id if self.codebook else {}
        theories = {t.id for t in self.codebook.theories} if self.codebook else set()
        if theory_id and theory_id not in theories:
            raise WorkspaceError(f"{theory_id!r} is not a programme theory of the codebook")
        cells = {}
        for role in ROLES:   # an element keeps the concepts of its own role
            ids = sorted(set(concepts.get(role) or ())) if role in chosen else []
            if any(c not in known for c in ids):
                raise WorkspaceError("a concept is not in the codebook")
            cells[role] = ";".join(c for c in ids if known[c].role == role)
        if label is None:
            taken = {c.label for c in self.configuration_files.current()
                     if c.record_id == record_id and c.reviewer == self.reviewer}
            label = next(f"R{k}" for k in range(1, len(taken) + 2) if f"R{k}" not in taken)
        with self.lock:
            append_rows(self.my_file("configurations"),
                        [{"record_id": record_id, "cmoc": label, "theory_id": theory_id,
                          **{f"{r}_sentence": chosen.get(r, "") for r in ROLES}, **cells,
                          "summary": " ".join(summary.split()), "reviewer": self.reviewer}],
                        COLUMNS["configurations"])
        return label

    def unlink_cmoc(self, record_id: str, label: str) -> None:
        """Withdraw one of the reviewer's configurations (a row with no sentences)."""
        with self.lock:
            append_rows(self.my_file("configurations"),
                        [{"record_id": record_id, "cmoc": label, "reviewer": self.reviewer}],
                        COLUMNS["configurations"])

    # --- conflicts -------------------------------------------------------------------
    def screening_conflicts(self) -> dict:
        table = latest_by_reviewer(self.decision_files.current())
        agreed = agreement(table)
        consensus = next((v for k, v in table.items() if k.lower() == CONSENSUS_REVIEWER), {})
        records = self.records()
        conflicts = []
        if agreed is not None:
            for record_id, views in agreed.conflicts.items():
                conflicts.append({"record_id": record_id,
                                  "title": (records.get(record_id) or {}).get("title", ""),
                                  "views": views, "consensus": consensus.get(record_id)})
        return {"agreement": agreed, "conflicts": conflicts}

    def coding_conflicts(self) -> dict:
        table = coding_table(self.coding_files.current())
        codings = {key: sentence_coding(rows) for key, rows in table.items()}
        conflicts = []
        for (record_id, number), rows in sorted(table.items()):
            coding = codings[(record_id, number)]
            if coding.conflict:
                conflicts.append({"record_id": record_id, "sentence": number,
                                  "text": next(iter(rows.values())).text or "",
                                  "views": coding.views, "consensus": coding.consensus})
        reviewers = {name for rows in table.values() for name in rows
                     if name.lower() != CONSENSUS_REVIEWER}
        return {"agreement": coding_agreement(codings.values()) if len(reviewers) > 1 else None,
                "conflicts": conflicts}

    def settle_screening(self, record_id: str, decision: str, reason: str) -> None:
        value = normalise_decision(decision or "")
        if value is None:
            raise WorkspaceError(f"decision {decision!r} is not include, exclude or maybe")
        if record_id not in self.records():
            raise WorkspaceError(f"no record {record_id!r}")
        with self.lock:
            append_rows(self.consensus_file("decisions"),
                        [{"record_id": record_id, "decision": value, "reason": reason.strip(),
                          "reviewer": CONSENSUS_REVIEWER}], COLUMNS["decisions"])

    def settle_coding(self, record_id: str, number: int, roles: Iterable[str]) -> None:
        rows = self.sentences().get(record_id, [])
        text = rows[number - 1]["text"] if 1 <= number <= len(rows) else ""
        known = {(c.record_id, c.sentence) for c in self.coding_files.current()}
        if (record_id, number) not in known:
            raise WorkspaceError(f"sentence {number} of {record_id} was not coded by anyone")
        with self.lock:
            append_rows(self.consensus_file("coding"),
                        [{"record_id": record_id, "sentence": number,
                          "roles": ";".join(r for r in ROLES if r in set(roles)) or "none",
                          "reviewer": CONSENSUS_REVIEWER, "text": text}], COLUMNS["coding"])

    # --- reruns ----------------------------------------------------------------------
    def start_run(self, label: str = "rerun") -> Job:
        """Run `cmosynth run` on the topic in the background: Snakemake reruns only the
        stages whose inputs changed (the reviewer files among them). One run at a time."""
        with self.lock:
            if self.job is not None and self.job.running:
                raise WorkspaceError("a run is already going; wait for it to end")
            log_path = self.folder / "logs" / "workspace-run.log"
            log_path.parent.mkdir(parents=True, exist_ok=True)
            command = [sys.executable, "-m", "cmosynth", "run", str(self.topic_path),
                       "--outputs", str(self.outputs)]
            with open(log_path, "w", encoding="utf-8") as handle:
                process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT,
                                           stdin=subprocess.DEVNULL)
            self.job = Job(command, log_path, process, label)
            return self.job

    # --- overview --------------------------------------------------------------------
    def overview(self) -> dict:
        from cmosynth.report.prisma import prisma_counts, prisma_csv_rows
        from cmosynth.runner import run_summary

        summary = run_summary(self.folder) if self.folder.exists() else {}
        prisma = []
        if (self.folder / "screen" / "screening.csv").exists():
            try:
                prisma = [r for r in prisma_csv_rows(prisma_counts(self.folder))
                          if r["data"] in ("duplicates", "excluded_automatic")
                          or r["data"] != "NA" and r["n"] not in (0, "0", "")]
            except InputError as error:
                log.warning("%s", error)
        mine = {}
        for kind in COLUMNS:
            try:
                mine[kind] = self.my_file(kind)
            except ConfigError as error:      # the topic names files, none of them yours
                mine[kind] = f"not writable here: {error}"
        report = self.folder / "report" / "index.html"
        return {"summary": summary, "prisma": prisma, "files": mine,
                "report": report if report.exists() else None, "job": self.job}


def record_links(record: dict) -> dict[str, str]:
    links = {}
    if record.get("pmid"):
        links["PubMed"] = f"https://pubmed.ncbi.nlm.nih.gov/{record['pmid']}/"
    if record.get("doi"):
        links["DOI"] = f"https://doi.org/{record['doi']}"
    return links


def _field_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    return str(value)


def _sentence_of(quote: str, rows: list[dict]) -> int | None:
    """The number of the sentence a coder's quote comes from."""
    if not quote:
        return None
    for row in rows:
        if quote in row["text"]:
            return int(row["sentence"])
    return None

