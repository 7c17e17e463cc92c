"""Realist synthesis: judge the codebook's programme theories against the extracted CMOCs.

Input is the CMO table of `cmosynth extract` (one row per context-mechanism-outcome
configuration, elements given as codebook concept ids and quotes; an element with a quote
and no concept is uncoded and counts for no theory), the records the CMOCs came from
and the codebook. Output is what a realist reviewer reads and publishes (RAMESES item
"synthesis"): configurations grouped by theory and concept triple with their strongest
quotes, a mechanism-by-outcome matrix, and a judgement on each programme theory.

Which CMOCs are evidence for a theory T. A CMOC counts for T when the extractor linked it
to T (`theory_id`), when it names one of T's mechanisms, or when it names both a context
and an outcome of T. A CMOC can so inform several theories. CMOCs that count for no
theory are listed at the end as material for new theories.

Signals a CMOC gives T (a CMOC may give several):
- supporting: at least two of its elements (context, mechanism, outcome) name concepts T
  names for that element, and it is not contrary;
- refining: it names T's mechanism together with a context or outcome T does not name
  (the new concepts are listed);
- contrary: T expects a positive outcome (one of its outcomes is not of negative
  polarity; no polarity counts as positive) and the CMOC either names a negative outcome
  T does not name, or names a positive outcome with a quote that negates it (one of the
  topic's `synthesis.contrary_cues`: "did not", "no improvement", "failed to",
  "barrier*", "tension*", "tokenis*", ...; matched case-insensitively on word
  boundaries, a trailing * matching any word ending).

Evidence is weighed. Each record is as relevant as the topic says it is: a record a
reviewer included counts fully; otherwise the topic's own PubMed query, evaluated on the
record (`screen.topicality`), decides: satisfied by title or abstract 1, only through
index terms or nearly 0.5, not at all 0. A CMOC weighs its extraction confidence times its
record's relevance. Records of relevance 0 (off the topic: a paper on another subject that
machine screening let through) are set aside: their CMOCs are listed but decide no status.

Status of T, in this order of precedence (every signal is listed as well):
1. `contested`: contrary evidence in at least `synthesis.min_contrary_records` records
   (default 2), or in one CMOC a reviewer coded, because contrary evidence is what most
   needs a reviewer's reading and may overturn the theory, and one machine-coded record is
   too little to call it so;
2. `refined`: its mechanism fires with contexts or outcomes it does not name, in at
   least one record, because the theory's wording must then change;
3. `supported`: supporting CMOCs in at least `synthesis.min_records` distinct records;
4. `no evidence`: none of the above (fewer supporting or contrary records than needed is
   said so in the reasons).
Every status gives its counts: records counted, CMOCs coded by the machine and confirmed
by a reviewer, and off-topic records set aside.

Everything is sorted (theories in codebook order, records by id, ties in quotes broken by
record id then CMOC id), so the same inputs give byte-identical files.
"""

from __future__ import annotations

import copy
import csv
import logging
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

from cmosynth.config import load_schema, validate
from cmosynth.errors import ConfigError, InputError
from cmosynth.extract import CMO_COLUMNS
from cmosynth.extract.codebook import (DEFAULT_CODEBOOK, Codebook, Theory, compile_cues,
                                       load_codebook)
from cmosynth.files import atomic_write
from cmosynth.records import read_records

#: The CMO table's columns a synthesis needs: `summary` (a reviewer's one line for a CMOC
#: they linked by hand) may be absent, as in tables written before it existed.
REQUIRED_CMO_COLUMNS = tuple(c for c in CMO_COLUMNS if c != "summary")

log = logging.getLogger("cmosynth.synthesis")

ROLES: tuple[str, ...] = ("context", "mechanism", "outcome")

SUPPORTED, REFINED, CONTESTED, NO_EVIDENCE = "supported", "refined", "contested", "no evidence"
#: Status precedence when a theory has several signals (see the module docstring).
STATUS_PRECEDENCE: tuple[str, ...] = (CONTESTED, REFINED, SUPPORTED)

SUMMARY_COLUMNS = ("theory_id", "context", "mechanism", "outcome", "labels", "n_cmocs",
                   "n_records", "records", "years", "year_list", "study_designs",
                   "top_quotes", "signals")
STATUS_COLUMNS = ("theory_id", "label", "status", "n_records", "supporting_records",
                  "refining_concepts", "contesting_records", "signals", "reasons",
                  "machine_cmocs", "reviewer_cmocs", "weight", "set_aside_records")
#: `method` of a CMOC whose elements a reviewer coded (all of them, or some: "...+reviewer").
REVIEWER_METHOD = "reviewer"
EVIDENCE_COLUMNS = ("theory_id", "cmoc_id", "record_id", "signals", "relevance", "weight",
                    "counted")
OUTPUT_FILES = ("cmoc_summary.csv", "matrix.csv", "theory_status.csv", "theory_evidence.csv",
                "programme_theories.md")


# --- the codebook ------------------------------------------------------------------------
def shares(theory: Theory, cmoc: "Cmoc", role: str) -> bool:
    """Whether the CMOC names, for `role`, a concept the theory names."""
    return not theory.named[role].isdisjoint(cmoc.concepts(role))


def load_theory_book(path: str | Path | None) -> Codebook:
    """Read a codebook file (default: the co-production codebook) for synthesis."""
    path = Path(path) if path else DEFAULT_CODEBOOK
    if not path.exists():
        where = "default codebook" if path == DEFAULT_CODEBOOK else "codebook"
        raise ConfigError(path, None, f"{where} not found; pass --codebook with the topic's "
                          "codebook (config/codebooks/<topic>.yaml)")
    return load_codebook(path)


# --- settings ----------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _settings_schema() -> dict:
    return load_schema("topic")["properties"]["synthesis"]


def synthesis_settings(settings: Mapping | None = None, path: str | Path = "topic") -> dict:
    """The topic's `synthesis` section with every default from the topic schema filled in."""
    return validate(copy.deepcopy(dict(settings or {})), _settings_schema(), path)


def cue_pattern(cues: Iterable[str]) -> re.Pattern | None:
    """One regex for cue phrases, with the codebook's cue rules (None when there are none)."""
    cues = list(cues)
    return compile_cues(cues) if cues else None


# --- CMOCs -------------------------------------------------------------------------------
#: Stands for an uncoded element (a quote naming no codebook concept) in a signature.
UNCODED = "(uncoded)"


@dataclass(frozen=True)
class Cmoc:
    """One row of the CMO table, its elements split into sorted concept-id tuples."""

    cmoc_id: str
    record_id: str
    theory_id: str
    context: tuple[str, ...]
    mechanism: tuple[str, ...]
    outcome: tuple[str, ...]
    context_quote: str
    mechanism_quote: str
    outcome_quote: str
    section: str
    confidence: float
    method: str

    def concepts(self, role: str) -> tuple[str, ...]:
        return getattr(self, role)

    @property
    def triple(self) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
        return self.context, self.mechanism, self.outcome

    @property
    def signature(self) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
        """The concept triple with each uncoded element (a quote naming no concept) as
        UNCODED: what configurations are grouped and labelled by."""
        quotes = (self.context_quote, self.mechanism_quote, self.outcome_quote)
        return tuple(ids or ((UNCODED,) if quote else ())  # type: ignore[return-value]
                     for ids, quote in zip(self.triple, quotes))

    @property
    def quote(self) -> str:
        return joined_quote(self.context_quote, self.mechanism_quote, self.outcome_quote)

    @property
    def strength_order(self) -> tuple:
        """Sort key: strongest (highest confidence) first, then by record and CMOC id."""
        return -self.confidence, self.record_id, self.cmoc_id

    @property
    def reviewer_coded(self) -> bool:
        return REVIEWER_METHOD in self.method.split("+")


def joined_quote(*quotes: str) -> str:
    """A CMOC's quotes (context, mechanism, outcome order) joined by " … ", each once: a
    quote within another (a clause of a sentence quoted whole) is left out."""
    distinct = list(dict.fromkeys(q for q in quotes if q))
    return " … ".join(q for q in distinct if not any(q != o and q in o for o in distinct))


def _split_ids(value: str | None) -> tuple[str, ...]:
    return tuple(sorted({part.strip() for part in (value or "").split(";") if part.strip()}))


def _text(value: Any) -> str:
    """A CSV cell as text; pandas-style NaN and None are empty."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value).strip()


class _RowError(ValueError):
    """A CMO table row breaks the contract; parse_cmocs adds the file and line."""


def parse_cmocs(rows: Sequence[Mapping], book: Codebook, records: Mapping[str, dict],
                source: str | Path = "CMO table", lines: Sequence[int] | None = None) -> list[Cmoc]:
    """Check CMO table rows against the codebook and the records; InputError names the line."""
    cmocs, seen = [], set()
    for index, row in enumerate(rows):
        try:
            cmoc = _parse_row(row, book, records)
            if cmoc.cmoc_id in seen:
                raise _RowError(f"cmoc_id '{cmoc.cmoc_id}' is repeated; every CMOC needs its own id")
        except _RowError as error:
            line = lines[index] if lines else index + 2  # line 1 is the header
            raise InputError(source, str(error), line=line) from None
        seen.add(cmoc.cmoc_id)
        cmocs.append(cmoc)
    return sorted(cmocs, key=lambda c: (c.record_id, c.cmoc_id))


def _parse_row(row: Mapping, book: Codebook, records: Mapping[str, dict]) -> Cmoc:
    missing = [c for c in REQUIRED_CMO_COLUMNS if c not in row]
    if missing:
        raise _RowError(f"missing columns {', '.join(missing)}; the CMO table needs "
                        f"{', '.join(REQUIRED_CMO_COLUMNS)}")
    cmoc_id, theory_id, record_id = (_text(row[k]) for k in ("cmoc_id", "theory_id", "record_id"))
    if not cmoc_id:
        raise _RowError("cmoc_id is empty; every CMOC needs its own id")
    if theory_id and theory_id not in {t.id for t in book.theories}:
        raise _RowError(f"theory_id '{theory_id}' is not a theory of codebook '{book.name}'")
    if record_id not in records:
        raise _RowError(f"record '{record_id}' is not in the records file; synthesise with the "
                        "records the CMOCs were extracted from")
    elements = _elements(row, book)
    return Cmoc(cmoc_id=cmoc_id, record_id=record_id, theory_id=theory_id,
                context=elements["context"], mechanism=elements["mechanism"],
                outcome=elements["outcome"], context_quote=_text(row["context_quote"]),
                mechanism_quote=_text(row["mechanism_quote"]),
                outcome_quote=_text(row["outcome_quote"]), section=_text(row["section"]),
                confidence=_confidence(row["confidence"]), method=_text(row["method"]))


def _elements(row: Mapping, book: Codebook) -> dict[str, tuple[str, ...]]:
    """Context, mechanism and outcome concept ids, each checked against the codebook."""
    elements = {role: _split_ids(_text(row[role])) for role in ROLES}
    for role, ids in elements.items():
        for concept_id in ids:
            concept = book.concepts_by_id.get(concept_id)
            if concept is None:
                raise _RowError(f"{role} '{concept_id}' is not a concept of codebook "
                                f"'{book.name}'; fix the id or use the codebook the table was "
                                "extracted with")
            if concept.role != role:
                raise _RowError(f"'{concept_id}' belongs in the {concept.role} column, "
                                f"not the {role} column")
    # An element is present when it names a concept or quotes the record (uncoded).
    if sum(bool(ids or _text(row[f"{role}_quote"])) for role, ids in elements.items()) < 2:
        raise _RowError("a CMOC needs at least two of context, mechanism and outcome, each "
                        "a concept id or a quote")
    return elements


def _confidence(value: Any) -> float:
    try:
        confidence = float(_text(value))
    except ValueError:
        raise _RowError(f"confidence '{_text(value)}' is not a number between 0 and 1") from None
    if not 0.0 <= confidence <= 1.0:
        raise _RowError(f"confidence {confidence} is outside [0, 1]")
    return confidence


# --- judging CMOCs against a theory -------------------------------------------------------
@dataclass(frozen=True)
class Evidence:
    """What one CMOC says about one theory."""

    cmoc: Cmoc
    supporting: bool
    new_concepts: tuple[str, ...]  # refining: concepts beside the theory's mechanism
    contrary: tuple[str, ...]      # why the CMOC is contrary (empty when it is not)

    @property
    def refining(self) -> bool:
        return bool(self.new_concepts)

    @property
    def signals(self) -> tuple[str, ...]:
        return tuple(name for name, on in (("supporting", self.supporting),
                                           ("refining", self.refining),
                                           ("contrary", bool(self.contrary))) if on)


def is_evidence_for(cmoc: Cmoc, theory: Theory) -> bool:
    """Linked by the extractor, names the theory's mechanism, or its context and outcome."""
    return (cmoc.theory_id == theory.id or shares(theory, cmoc, "mechanism")
            or (shares(theory, cmoc, "context") and shares(theory, cmoc, "outcome")))


def judge_cmoc(cmoc: Cmoc, theory: Theory, book: Codebook,
               contrary_cues: re.Pattern | None) -> Evidence:
    """Classify one CMOC as supporting, refining and/or contrary for a theory."""
    contrary = tuple(_contrary_reasons(cmoc, theory, book, contrary_cues))
    shared = sum(shares(theory, cmoc, role) for role in ROLES)
    new_concepts: tuple[str, ...] = ()
    if shares(theory, cmoc, "mechanism"):
        new_concepts = tuple(c for role in ("context", "outcome") for c in cmoc.concepts(role)
                             if c not in theory.named[role])
    return Evidence(cmoc=cmoc, supporting=shared >= 2 and not contrary,
                    new_concepts=new_concepts, contrary=contrary)


def _contrary_reasons(cmoc: Cmoc, theory: Theory, book: Codebook,
                      contrary_cues: re.Pattern | None) -> list[str]:
    expects_positive = any(book.concept(o).polarity != "negative" for o in theory.outcomes)
    reasons = [f"negative outcome '{book.label(o)}'" for o in cmoc.outcome
               if expects_positive and book.concept(o).polarity == "negative"
               and o not in theory.outcomes]
    names_positive = any(book.concept(o).polarity != "negative" for o in cmoc.outcome)
    if contrary_cues is not None and expects_positive and names_positive and cmoc.outcome_quote:
        match = contrary_cues.search(cmoc.outcome_quote)
        if match:
            reasons.append(f'outcome quote says "{match.group(0)}"')
    return reasons


# --- results -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Configuration:
    """CMOCs of one theory (or of none: theory_id "") with the same concept triple."""

    theory_id: str
    context: tuple[str, ...]
    mechanism: tuple[str, ...]
    outcome: tuple[str, ...]
    label: str
    cmocs: tuple[Cmoc, ...]
    records: tuple[str, ...]
    years: tuple[int, ...]
    study_designs: tuple[tuple[str, int], ...]
    top_quotes: tuple[Cmoc, ...]
    signals: tuple[str, ...]

    @property
    def year_range(self) -> str:
        if not self.years:
            return ""
        low, high = min(self.years), max(self.years)
        return str(low) if low == high else f"{low}-{high}"


@dataclass(frozen=True)
class TheoryJudgement:
    """A theory, the CMOCs that count for it, and the status they give it."""

    theory: Theory
    evidence: tuple[Evidence, ...]       # of counted records (relevance above 0)
    min_records: int
    min_contrary_records: int = 2
    set_aside: tuple[Evidence, ...] = ()  # of off-topic records: listed, deciding nothing
    relevance: Mapping[str, float] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)   # concept id -> label

    @cached_property
    def signals(self) -> tuple[str, ...]:
        """Every status the evidence calls for, in order of precedence."""
        contested = (len(self.contesting_records) >= self.min_contrary_records
                     or any(e.cmoc.reviewer_coded for e in self.contrary))
        on = {CONTESTED: contested, REFINED: bool(self.refining_concepts),
              SUPPORTED: len(self.supporting_records) >= self.min_records}
        return tuple(status for status in STATUS_PRECEDENCE if on[status])

    @cached_property
    def set_aside_records(self) -> tuple[str, ...]:
        return _distinct(e.cmoc.record_id for e in self.set_aside)

    @cached_property
    def weight(self) -> float:
        """The evidence's weight: confidence times the record's relevance, summed."""
        return round(sum(e.cmoc.confidence * self.relevance.get(e.cmoc.record_id, 1.0)
                         for e in self.evidence), 3)

    @cached_property
    def status(self) -> str:
        return self.signals[0] if self.signals else NO_EVIDENCE

    @cached_property
    def reasons(self) -> tuple[str, ...]:
        return tuple(_reasons(self))

    @cached_property
    def records(self) -> tuple[str, ...]:
        return _distinct(e.cmoc.record_id for e in self.evidence)

    @cached_property
    def supporting(self) -> tuple[Evidence, ...]:
        return tuple(e for e in self.evidence if e.supporting)

    @cached_property
    def refining(self) -> tuple[Evidence, ...]:
        return tuple(e for e in self.evidence if e.refining)

    @cached_property
    def contrary(self) -> tuple[Evidence, ...]:
        return tuple(e for e in self.evidence if e.contrary)

    @cached_property
    def supporting_records(self) -> tuple[str, ...]:
        return _distinct(e.cmoc.record_id for e in self.supporting)

    @cached_property
    def contesting_records(self) -> tuple[str, ...]:
        return _distinct(e.cmoc.record_id for e in self.contrary)

    @cached_property
    def refining_concepts(self) -> tuple[str, ...]:
        return _distinct(c for e in self.refining for c in e.new_concepts)


@dataclass(frozen=True)
class Synthesis:
    """Everything the synthesis files are written from."""

    book: Codebook
    settings: dict
    cmocs: tuple[Cmoc, ...]
    records: Mapping[str, dict]
    configurations: tuple[Configuration, ...]
    judgements: tuple[TheoryJudgement, ...]
    matrix: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def unmapped(self) -> tuple[Configuration, ...]:
        """Configurations that count for no theory: candidate new theories."""
        return tuple(c for c in self.configurations if not c.theory_id)


def _distinct(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(items)))


# --- synthesis ---------------------------------------------------------------------------
def synthesize(cmo_rows: Sequence[Mapping], records: Iterable[dict] | Mapping[str, dict],
               book: Codebook, settings: Mapping | None = None, *,
               source: str | Path = "CMO table", lines: Sequence[int] | None = None,
               relevance: Mapping[str, float] | None = None) -> Synthesis:
    """Group CMOCs, build the mechanism-by-outcome matrix and judge every programme theory.

    `cmo_rows` are CMO table rows (dicts of the contract columns), `records` the records
    they came from, `book` the codebook (`load_codebook`); `settings` the topic's `synthesis`
    section (defaults from the topic schema); `relevance` each record's relevance to the
    topic in [0, 1] (`record_relevance`; every record 1 when not given).
    """
    settings = synthesis_settings(settings)
    if not isinstance(records, Mapping):
        records = {r["record_id"]: r for r in records}
    cmocs = parse_cmocs(cmo_rows, book, records, source=source, lines=lines)
    contrary_cues = cue_pattern(settings["contrary_cues"])
    relevance = relevance if relevance is not None else {}
    judgements = tuple(judge_theory(t, cmocs, book, settings, contrary_cues, relevance)
                       for t in book.theories)
    configurations = group_configurations(judgements, cmocs, book, records, settings["top_quotes"])
    log.info("synthesised %d CMOCs from %d records against %d programme theories",
             len(cmocs), len({c.record_id for c in cmocs}), len(book.theories))
    return Synthesis(book=book, settings=settings, cmocs=tuple(cmocs), records=records,
                     configurations=configurations, judgements=judgements,
                     matrix=mechanism_outcome_matrix(cmocs, book))


def judge_theory(theory: Theory, cmocs: Iterable[Cmoc], book: Codebook, settings: Mapping,
                 contrary_cues: re.Pattern | None,
                 relevance: Mapping[str, float] | None = None) -> TheoryJudgement:
    """Collect the CMOCs that count for the theory and what each says about it; those of
    records off the topic (relevance 0) are set aside."""
    relevance = relevance or {}
    evidence = [judge_cmoc(c, theory, book, contrary_cues)
                for c in cmocs if is_evidence_for(c, theory)]
    counted = tuple(e for e in evidence if relevance.get(e.cmoc.record_id, 1.0) > 0)
    return TheoryJudgement(theory=theory, evidence=counted, min_records=settings["min_records"],
                           min_contrary_records=settings["min_contrary_records"],
                           set_aside=tuple(e for e in evidence if e not in counted),
                           relevance=relevance, labels={c.id: c.label for c in book.concepts})


def _reasons(judgement: TheoryJudgement) -> list[str]:
    """Plain-language reasons for a status, one per signal (or for its absence)."""
    reasons, min_records = [], judgement.min_records
    if judgement.contrary:
        why: dict[str, set[str]] = defaultdict(set)
        for evidence in judgement.contrary:
            why[evidence.cmoc.record_id].update(evidence.contrary)
        details = [f"{record_id}: {', '.join(sorted(why[record_id]))}" for record_id in sorted(why)]
        few = len(judgement.contesting_records) < judgement.min_contrary_records
        if CONTESTED not in judgement.signals:
            qualifier = (f", fewer than the {judgement.min_contrary_records} needed to call it "
                         "contested without a reviewer's coding")
        else:
            qualifier = " (coded by a reviewer)" if few else ""
        reasons.append(f"contrary evidence in {_count(judgement.contesting_records, 'record')}"
                       f"{qualifier}: " + "; ".join(details))
    if judgement.refining_concepts:
        concepts = ", ".join(judgement.labels.get(c, c) for c in judgement.refining_concepts)
        records = _distinct(e.cmoc.record_id for e in judgement.refining)
        reasons.append(f"its mechanism works with concepts it does not name, in "
                       f"{_count(records, 'record')}: {concepts}")
    n_support = len(judgement.supporting_records)
    if n_support >= min_records:
        reasons.append(f"CMOCs matching at least two of its elements in {_count(n_support, 'record')} "
                       f"(at least {min_records} needed)")
    elif n_support:
        reasons.append(f"CMOCs matching at least two of its elements in only "
                       f"{_count(n_support, 'record')}, fewer than the {min_records} needed "
                       "to call it supported")
    if judgement.set_aside:
        reasons.append(f"{_count(judgement.set_aside_records, 'record')} off the topic set "
                       f"aside (their CMOCs decide nothing): "
                       + ", ".join(judgement.set_aside_records))
    if not judgement.evidence:
        reasons.append("no CMOC of a record on the topic names its mechanism, both a context "
                       "and an outcome of it, or is linked to it by the extractor")
    elif not reasons:
        reasons.append(f"{_count(judgement.records, 'record')} with CMOCs about it, none "
                       "matching two of its elements, naming new concepts or contrary")
    return reasons


def _count(items: Sequence | int, noun: str) -> str:
    n = items if isinstance(items, int) else len(items)
    return f"{n} {noun}{'' if n == 1 else 's'}"


def group_configurations(judgements: Sequence[TheoryJudgement], cmocs: Sequence[Cmoc],
                         book: Codebook, records: Mapping[str, dict],
                         top_quotes: int) -> tuple[Configuration, ...]:
    """One configuration per theory x signature (concept triple, uncoded elements marked);
    CMOCs of no theory come last."""
    groups: dict[tuple, list[Evidence | Cmoc]] = defaultdict(list)
    order = {j.theory.id: i for i, j in enumerate(judgements)}
    mapped = set()
    for judgement in judgements:
        for evidence in judgement.evidence:
            groups[(judgement.theory.id, evidence.cmoc.signature)].append(evidence)
            mapped.add(evidence.cmoc.cmoc_id)
    for cmoc in cmocs:
        if cmoc.cmoc_id not in mapped:
            groups[("", cmoc.signature)].append(cmoc)
    configurations = [_configuration(theory_id, signature, members, book, records, top_quotes)
                      for (theory_id, signature), members in groups.items()]
    configurations.sort(key=lambda c: (order.get(c.theory_id, len(order)), -len(c.records),
                                       -len(c.cmocs), c.context, c.mechanism, c.outcome))
    return tuple(configurations)


def _configuration(theory_id: str, signature: tuple, members: Sequence[Evidence | Cmoc],
                   book: Codebook, records: Mapping[str, dict], top_quotes: int) -> Configuration:
    cmocs = sorted((m.cmoc if isinstance(m, Evidence) else m for m in members),
                   key=lambda c: (c.record_id, c.cmoc_id))
    signals = sorted({s for m in members if isinstance(m, Evidence) for s in m.signals})
    record_ids = _distinct(c.record_id for c in cmocs)
    years = tuple(sorted({records[r]["year"] for r in record_ids if records[r].get("year")}))
    designs = Counter(t for r in record_ids for t in (records[r].get("publication_types") or []))
    context, mechanism, outcome = (tuple(i for i in ids if i != UNCODED) for ids in signature)
    return Configuration(
        theory_id=theory_id, context=context, mechanism=mechanism, outcome=outcome,
        label=triple_label(signature, book), cmocs=tuple(cmocs), records=record_ids, years=years,
        study_designs=tuple(sorted(designs.items(), key=lambda kv: (-kv[1], kv[0]))),
        top_quotes=tuple(sorted(cmocs, key=lambda c: c.strength_order)[:top_quotes]),
        signals=tuple(signals))


def triple_label(triple: tuple, book: Codebook) -> str:
    """`C: label | M: label | O: label` from the codebook's labels (`uncoded` for
    UNCODED), absent elements left out."""
    parts = []
    for letter, ids in zip("CMO", triple):
        if ids:
            parts.append(f"{letter}: " + " & ".join(
                "uncoded" if i == UNCODED else book.label(i) for i in ids))
    return " | ".join(parts)


def mechanism_outcome_matrix(cmocs: Iterable[Cmoc], book: Codebook) -> dict[tuple[str, str], int]:
    """Distinct records per (mechanism, outcome) pair; every codebook pair present."""
    records: dict[tuple[str, str], set[str]] = {
        (m.id, o.id): set() for m in book.concepts_for("mechanism") for o in book.concepts_for("outcome")}
    for cmoc in cmocs:
        for mechanism in cmoc.mechanism:
            for outcome in cmoc.outcome:
                records[(mechanism, outcome)].add(cmoc.record_id)
    return {pair: len(ids) for pair, ids in records.items()}


# --- files -------------------------------------------------------------------------------
def read_cmo_table(path: str | Path) -> tuple[list[dict], list[int]]:
    """Rows of a CMO table CSV and the line each starts on; InputError for missing columns."""
    path = Path(path)
    try:
        handle = open(path, encoding="utf-8-sig", newline="")
    except FileNotFoundError:
        raise InputError(path, "file not found; run `cmosynth extract` first") from None
    with handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames
        if not header:
            raise InputError(path, f"empty file; a CMO table starts with the header "
                             f"{','.join(CMO_COLUMNS)}", line=1)
        missing = [c for c in REQUIRED_CMO_COLUMNS if c not in header]
        if missing:
            raise InputError(path, f"missing columns {', '.join(missing)}; the CMO table needs "
                             f"{', '.join(REQUIRED_CMO_COLUMNS)}", line=1)
        rows, lines, previous = [], [], reader.line_num
        for row in reader:
            if None in row:
                raise InputError(path, "more cells than header columns; quote cells that "
                                 "contain commas", line=previous + 1)
            rows.append(row)
            lines.append(previous + 1)
            previous = reader.line_num
    return rows, lines


#: Relevance of a record by what the topic's query says of it (`screen.topicality`).
RELEVANCE = {"on topic": 1.0, "cannot tell": 0.5, "off topic": 0.0}


def record_relevance(records: Iterable[dict], query: str | None,
                     reviewer_included: Iterable[str] = ()) -> dict[str, float]:
    """Each record's relevance to the topic: 1 for a record a reviewer included, else by
    the topic's query evaluated on it (1 on topic, 0.5 cannot tell, 0 off topic); 1 for
    every record when there is no query to judge by."""
    from cmosynth.screen.topicality import parse_query, topicality

    reviewer_included = set(reviewer_included)
    tree = parse_query(query) if query else None
    out = {}
    for record in records:
        rid = record["record_id"]
        if rid in reviewer_included or tree is None:
            out[rid] = 1.0
        else:
            out[rid] = RELEVANCE[topicality(tree, record).verdict]
    return out


def reviewer_included_ids(screening: str | Path | None) -> set[str]:
    """Record ids a reviewer included, from screen/screening.csv (none without it)."""
    if not screening or not Path(screening).exists():
        return set()
    with open(screening, encoding="utf-8", newline="") as handle:
        return {row["record_id"] for row in csv.DictReader(handle)
                if row.get("decided_by") == "reviewer" and row.get("decision") == "include"}


def synthesize_files(cmo: str | Path, records: str | Path, codebook: str | Path | None = None,
                     output_dir: str | Path = "synthesis", settings: Mapping | None = None,
                     query: str | None = None, screening: str | Path | None = None) -> Synthesis:
    """Read the CMO table, records and codebook; write the synthesis files atomically.
    `query` (the topic's PubMed query) and `screening` (screen/screening.csv) say how
    relevant each record is (`record_relevance`)."""
    book = load_theory_book(codebook)
    record_map = {r["record_id"]: r for r in read_records(records)}
    rows, lines = read_cmo_table(cmo)
    relevance = record_relevance(record_map.values(), query, reviewer_included_ids(screening))
    off_topic = sorted(r for r, weight in relevance.items() if weight == 0)
    if off_topic:
        log.info("%d included record(s) do not satisfy the topic's query and were included by "
                 "no reviewer: their CMOCs are set aside (%s)", len(off_topic),
                 ", ".join(off_topic[:10]) + (" ..." if len(off_topic) > 10 else ""))
    result = synthesize(rows, record_map, book, settings, source=cmo, lines=lines,
                        relevance=relevance)
    write_synthesis(result, output_dir)
    return result


def write_synthesis(result: Synthesis, output_dir: str | Path) -> None:
    """Write cmoc_summary.csv, matrix.csv, theory_status.csv, theory_evidence.csv and
    programme_theories.md."""
    output_dir = Path(output_dir)
    _write_csv(output_dir / "cmoc_summary.csv", SUMMARY_COLUMNS, summary_rows(result))
    header, rows = matrix_rows(result)
    _write_csv(output_dir / "matrix.csv", header, rows)
    _write_csv(output_dir / "theory_status.csv", STATUS_COLUMNS, status_rows(result))
    _write_csv(output_dir / "theory_evidence.csv", EVIDENCE_COLUMNS, evidence_rows(result))
    with atomic_write(output_dir / "programme_theories.md") as handle:
        handle.write(render_programme_theories(result))
    log.info("wrote %s to %s", ", ".join(OUTPUT_FILES), output_dir)


def _write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence]) -> None:
    with atomic_write(path, newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def summary_rows(result: Synthesis) -> list[list]:
    return [[c.theory_id, ";".join(c.context), ";".join(c.mechanism), ";".join(c.outcome),
             c.label, len(c.cmocs), len(c.records), ";".join(c.records), c.year_range,
             ";".join(map(str, c.years)), "; ".join(f"{d}: {n}" for d, n in c.study_designs),
             " | ".join(f'{q.record_id}: "{q.quote}"' for q in c.top_quotes),
             ";".join(c.signals)]
            for c in result.configurations]


def matrix_rows(result: Synthesis) -> tuple[list[str], list[list]]:
    """Header and rows of the mechanism x outcome matrix (distinct records per cell)."""
    outcomes = [o.id for o in result.book.concepts_for("outcome")]
    rows = [[m.id, m.label, m.kind or "", *(result.matrix[(m.id, o)] for o in outcomes)]
            for m in result.book.concepts_for("mechanism")]
    return ["mechanism", "label", "kind", *outcomes], rows


def evidence_rows(result: Synthesis) -> list[list]:
    """Every CMOC that counts for a theory, or would but for its record being off the
    topic (`counted` no), with what it signals and its weight."""
    rows = []
    for judgement in result.judgements:
        for evidence, counted in sorted(
                [(e, True) for e in judgement.evidence] + [(e, False) for e in judgement.set_aside],
                key=lambda pair: (pair[0].cmoc.record_id, pair[0].cmoc.cmoc_id)):
            relevance = judgement.relevance.get(evidence.cmoc.record_id, 1.0)
            rows.append([judgement.theory.id, evidence.cmoc.cmoc_id, evidence.cmoc.record_id,
                         ";".join(evidence.signals), f"{relevance:g}",
                         f"{evidence.cmoc.confidence * relevance:.3f}",
                         "yes" if counted else "no"])
    return rows


def status_rows(result: Synthesis) -> list[list]:
    return [[j.theory.id, j.theory.label, j.status, len(j.records), ";".join(j.supporting_records),
             ";".join(j.refining_concepts), ";".join(j.contesting_records), ";".join(j.signals),
             " / ".join(j.reasons), sum(not e.cmoc.reviewer_coded for e in j.evidence),
             sum(e.cmoc.reviewer_coded for e in j.evidence), f"{j.weight:.3f}",
             ";".join(j.set_aside_records)]
            for j in result.judgements]


# --- programme_theories.md ---------------------------------------------------------------
def cite(record: Mapping) -> str:
    """`PMID 123 (2020, Journal)`, else the DOI, else the record id."""
    if record.get("pmid"):
        ident = f"PMID {record['pmid']}"
    elif record.get("doi"):
        ident = f"DOI {record['doi']}"
    else:
        ident = record["record_id"]
    details = ", ".join(str(x) for x in (record.get("year"), record.get("journal")) if x)
    return f"{ident} ({details})" if details else ident


def _md(text: str) -> str:
    """Escape characters that Markdown would read as markup inside running text."""
    return re.sub(r"([\\`*_\[\]|<>])", r"\\\1", text)


def _quoted_cmoc(cmoc: Cmoc, records: Mapping[str, dict], note: str = "") -> str:
    """A nested list item: the quote, its citation, section and confidence."""
    text = (f'  - "{_md(cmoc.quote)}" — {cite(records[cmoc.record_id])}; '
            f"{cmoc.section or 'section not given'}, confidence {cmoc.confidence:.2f}")
    return text + (f"; {_md(note)}" if note else "")


def evidence_block(cmocs: Iterable[Cmoc], book: Codebook, records: Mapping[str, dict],
                   top_quotes: int, notes: Mapping[str, str] | None = None) -> list[str]:
    """CMOCs grouped by concept triple: counts, years and designs, the strongest quotes,
    and every other record cited, so a large review stays readable without losing sources."""
    by_triple: dict[tuple, list[Cmoc]] = defaultdict(list)
    for cmoc in cmocs:
        by_triple[cmoc.signature].append(cmoc)
    if not by_triple:
        return ["None."]
    lines = []
    for triple, members in sorted(by_triple.items(),
                                  key=lambda kv: (-len({c.record_id for c in kv[1]}), kv[0])):
        members.sort(key=lambda c: c.strength_order)
        record_ids = _distinct(c.record_id for c in members)
        years = sorted({records[r]["year"] for r in record_ids if records[r].get("year")})
        span = f"{years[0]}-{years[-1]}" if years and years[0] != years[-1] else (
            str(years[0]) if years else "years unknown")
        lines.append(f"- **{_md(triple_label(triple, book))}**: "
                     f"{_count(len(members), 'CMOC')} in {_count(record_ids, 'record')} ({span})")
        quoted = members[:top_quotes]
        lines += [_quoted_cmoc(c, records, (notes or {}).get(c.cmoc_id, "")) for c in quoted]
        others = [r for r in record_ids if r not in {c.record_id for c in quoted}]
        if others:
            lines.append("  - Also in: " + "; ".join(cite(records[r]) for r in others))
    return lines


def render_programme_theories(result: Synthesis) -> str:
    """The programme theories with their status, reasons and quoted evidence, as Markdown."""
    book, records = result.book, result.records
    lines = [f"# Programme theories: {_md(book.title)}", "",
             f"Codebook `{book.name}` version {book.version}. "
             f"{_count(len(result.cmocs), 'CMOC')} from "
             f"{_count(len({c.record_id for c in result.cmocs}), 'record')}.", ""]
    if not result.cmocs:
        lines += ["No CMOCs were extracted, so no programme theory has evidence yet.", ""]
    lines += _rules_section(result.settings)
    lines += ["| Theory | Label | Status | Records |", "| --- | --- | --- | --- |"]
    lines += [f"| {j.theory.id} | {_md(j.theory.label)} | {j.status} | {len(j.records)} |"
              for j in result.judgements]
    lines.append("")
    for judgement in result.judgements:
        lines += _theory_section(judgement, book, records, result.settings["top_quotes"])
    lines += _unmapped_section(result)
    return "\n".join(lines).rstrip("\n") + "\n"


def _rules_section(settings: Mapping) -> list[str]:
    cues = ", ".join(f'"{c}"' for c in settings["contrary_cues"])
    return [
        "## How theories are judged", "",
        "A CMOC counts for a theory when the extractor linked it to the theory, when it names "
        "the theory's mechanism, or when it names both a context and an outcome of the theory. "
        "An element whose quote names no codebook concept is *uncoded*: it counts for no "
        "theory until a reviewer codes it, and configurations show it as `uncoded`.",
        "",
        "- **contested**: a CMOC names a negative outcome the theory does not expect, or its "
        f"outcome quote negates a positive outcome ({_md(cues)}).",
        "- **refined**: a CMOC names the theory's mechanism with a context or outcome the theory "
        "does not name.",
        "- **supported**: CMOCs matching at least two of the theory's context, mechanism and "
        f"outcome concepts, in at least {settings['min_records']} distinct records.",
        "- **no evidence**: none of these.", "",
        "When several apply, the status is the first of contested, refined, supported; every "
        f"signal is listed under the theory. Each configuration shows its {settings['top_quotes']} "
        "strongest quotes (highest extraction confidence) and cites every other record.", "",
    ]


def _theory_section(judgement: TheoryJudgement, book: Codebook, records: Mapping[str, dict],
                    top_quotes: int) -> list[str]:
    theory = judgement.theory
    elements = triple_label((theory.contexts, theory.mechanisms, theory.outcomes), book)
    lines = [f"## {theory.id}: {_md(theory.label)}", "", f"> {_md(theory.statement)}", "",
             f"Elements: {_md(elements)}", "",
             "Seed sources: " + "; ".join(_md(book.citation(s)) for s in theory.sources), "",
             f"**Status: {judgement.status}.** Signals: {', '.join(judgement.signals) or 'none'}.", ""]
    lines += [f"- {_md(reason)}" for reason in judgement.reasons]
    lines += ["", "### Supporting evidence", ""]
    lines += evidence_block((e.cmoc for e in judgement.supporting), book, records, top_quotes)
    lines += ["", "### Refinements", ""]
    for concept in judgement.refining_concepts:
        cited = _distinct(e.cmoc.record_id for e in judgement.refining if concept in e.new_concepts)
        lines.append(f"- New {book.concept(concept).role} `{concept}` ({_md(book.label(concept))}) "
                     f"in {_count(cited, 'record')}")
    if judgement.refining_concepts:
        lines.append("")
    lines += evidence_block((e.cmoc for e in judgement.refining), book, records, top_quotes)
    lines += ["", "### Contested evidence", ""]
    notes = {e.cmoc.cmoc_id: "contrary: " + "; ".join(e.contrary) for e in judgement.contrary}
    lines += evidence_block((e.cmoc for e in judgement.contrary), book, records, top_quotes, notes)
    lines.append("")
    return lines


def _unmapped_section(result: Synthesis) -> list[str]:
    lines = ["## CMOCs that map to no theory (candidate new theories)", ""]
    unmapped = [c for configuration in result.unmapped for c in configuration.cmocs]
    if not unmapped:
        return lines + ["None: every CMOC counts for at least one programme theory."]
    return lines + evidence_block(unmapped, result.book, result.records,
                                  result.settings["top_quotes"])
