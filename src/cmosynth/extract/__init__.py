"""CMO extraction: context-mechanism-outcome configurations with verbatim evidence.

`extract_file(records.jsonl, output=cmo.csv)` reads records, splits titles, abstracts and
(optionally) PMC full texts into sentences, gives each sentence its realist roles, links
coded elements into CMOCs, maps each to its best programme theory and writes the CMO table
(DESIGN.md: `extract/cmo.csv`), sorted and byte-identical on rerun. With `sentences=`, it
also writes every sentence with the roles it was given and their confidences: the coding
audit trail a reviewer checks (and what a sentence-level evaluation scores). With
`coding=`, sentences reviewers have coded keep the reviewers' roles and teach the coder,
and their agreement and conflicts are written beside (`cmosynth.extract.coding`). With
`configurations=`, the CMOCs reviewers linked by hand replace the coder's for their records
(`cmosynth.extract.configurations`).
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cmosynth.console import track
from cmosynth.extract.codebook import ROLES, Codebook, load_codebook
from cmosynth.extract.coding import (CONFLICT_COLUMNS, REVIEWER_METHOD, SHEET_COLUMNS,
                                     SentenceCoding, coding_agreement, coding_sheet,
                                     check_concepts, conflict_rows, cross_fitted_agreement,
                                     match_coding, read_coding)
from cmosynth.extract.configurations import configuration_rows, read_configurations
from cmosynth.extract.link import CodedSentence, Configuration, best_theory, link_configurations
from cmosynth.extract.roles import CODERS, RoleCoder, gather_evidence, position_category
from cmosynth.extract.sentences import Sentence, record_sentences, split_spans
from cmosynth.errors import InputError
from cmosynth.files import atomic_write, read_reviewer_csv, write_json
from cmosynth.records import read_records

log = logging.getLogger("cmosynth.extract")

CMO_COLUMNS: tuple[str, ...] = (
    "cmoc_id", "record_id", "pmid", "doi", "theory_id", "context", "mechanism", "outcome",
    "context_quote", "mechanism_quote", "outcome_quote", "section", "confidence", "method",
    "summary",
)

#: The sentence table: every sentence coded, in reading order, with or without a role.
SENTENCE_COLUMNS: tuple[str, ...] = (
    "record_id", "sentence", "section", "start", "end", "roles", "context_confidence",
    "mechanism_confidence", "outcome_confidence", "concepts", "method", "text",
)

__all__ = ["CMO_COLUMNS", "CONFLICT_COLUMNS", "SENTENCE_COLUMNS", "Extraction", "ExtractOptions",
           "extract_all", "extract_file", "extract_records", "load_codebook",
           "write_coding_sheet"]


@dataclass(frozen=True)
class ExtractOptions:
    """Choices of one extraction run (topic `extract` section)."""

    full_text_dir: Path | None = None
    embeddings: bool = False
    llm: bool = False
    approach: str | None = None     # None: the shipped default (roles.DEFAULT_APPROACH)
    coding: tuple[Path, ...] = ()   # the reviewer's coding CSVs (topic extract.coding)
    #: CMOCs reviewers linked by hand (topic extract.configurations)
    configurations: tuple[Path, ...] = ()


@dataclass(frozen=True)
class Extraction:
    """What one extraction run produced: CMO table rows, sentence table rows, and the
    reviewers' coding: their agreement (`coding.coding_agreement`) and the conflicts
    left to settle (rows of `coding.CONFLICT_COLUMNS`)."""

    configurations: list[dict]
    sentences: list[dict]
    agreement: dict
    conflicts: list[dict]


def extract_file(input: str | Path, output: str | Path, codebook: str | Path | None = None,
                 full_text_dir: str | Path | None = None, embeddings: bool = False,
                 llm: bool = False, sentences: str | Path | None = None,
                 coding: Iterable[str | Path] = (), agreement: str | Path | None = None,
                 conflicts: str | Path | None = None, coder: str = "transformer",
                 configurations: Iterable[str | Path] = ()) -> int:
    """Extract CMOCs from a records JSONL into a CMO table CSV (and, with `sentences`,
    every coded sentence into a sentence table CSV); returns the CMOC count. `coding`:
    the reviewers' coding CSVs (`cmosynth.extract.coding`); `configurations`: the CMOCs
    they linked by hand (`cmosynth.extract.configurations`); `agreement` (JSON) and
    `conflicts` (CSV) receive how they agree and what they coded differently."""
    book = load_codebook(codebook)
    records = list(read_records(input))
    options = ExtractOptions(Path(full_text_dir) if full_text_dir else None, embeddings, llm,
                             approach=CODERS[coder], coding=tuple(Path(c) for c in coding),
                             configurations=tuple(Path(c) for c in configurations))
    result = extract_all(records, book, options)
    write_table(output, CMO_COLUMNS, result.configurations)
    if sentences is not None:
        write_table(sentences, SENTENCE_COLUMNS, result.sentences)
    if agreement is not None:
        write_json(agreement, result.agreement)
    if conflicts is not None:
        write_table(conflicts, CONFLICT_COLUMNS, result.conflicts)
    if result.conflicts:
        log.warning("%d sentence(s) coded differently by reviewers carry every role any of "
                    "them gave until a consensus row settles them%s", len(result.conflicts),
                    f" (listed in {conflicts})" if conflicts else "")
    log.info("%d CMOCs from %d records written to %s", len(result.configurations),
             len(records), output)
    return len(result.configurations)


def write_coding_sheet(sentences: str | Path, output: str | Path, records: int | None = None,
                       seed: int = 1, blind: bool = False, reviewer: str = "") -> int:
    """Write a coding sheet (`coding.coding_sheet`) drawn from a sentence table; returns
    the number of records in it. The sheet becomes a reviewer's file, so an existing
    file is never overwritten."""
    output = Path(output)
    if output.exists():
        raise InputError(output, "already exists and may hold a reviewer's coding; choose "
                                 "another name, or delete it first")
    rows = [row for _, row in read_reviewer_csv(
        sentences, ("record_id", "sentence", "roles", "text"),
        not_found="sentence table not found; extraction writes it (extract/sentences.csv)",
        header="give the sentence table extraction writes (extract/sentences.csv)")]
    sheet = coding_sheet(rows, records, seed, blind, reviewer)
    write_table(output, SHEET_COLUMNS, sheet)
    chosen = len({row["record_id"] for row in sheet})
    log.info("%d sentence(s) of %d record(s) to code written to %s%s", len(sheet), chosen,
             output, " (blind: every roles cell is '?')" if blind else "")
    return chosen


def extract_records(records: Iterable[dict], codebook: Codebook,
                    options: ExtractOptions = ExtractOptions()) -> list[dict]:
    """CMO table rows for `records`, sorted by record_id then cmoc_id."""
    return extract_all(records, codebook, options).configurations


def extract_all(records: Iterable[dict], codebook: Codebook,
                options: ExtractOptions = ExtractOptions(),
                coder: RoleCoder | None = None) -> Extraction:
    """CMO table rows (sorted by record_id then cmoc_id) and sentence table rows (by
    record_id, then reading order) for `records`; `coder` replaces the one the options
    would train (bench/extract.py passes one trained on dev alone). Sentences in the
    reviewers' coding (`options.coding`) get the reviewers' roles, and the coder the
    options train learns from them too."""
    from cmosynth.extract.roles import DEFAULT_APPROACH

    coding = read_coding(options.coding)     # first: a bad file stops before any work
    check_concepts(coding, codebook.concepts_by_id)
    linked_by_hand = read_configurations(options.configurations, codebook)
    records = unique_records(records)
    suggester = None
    if options.llm:
        from cmosynth.extract.llm import LlmSuggester

        suggester = LlmSuggester.from_environment(codebook)
    groups = [(record, group, group_evidence(group, codebook, record.get("title") or ""))
              for record in track(records, "reading sentences", total=len(records))
              for group in sentence_groups(record, options.full_text_dir)]
    flat_evidence = [e for _, _, evidence in groups for e in evidence]
    reviewed = match_coding(((record["record_id"], s.text) for record, group, _ in groups
                             for s in group), coding) if coding else [None] * len(flat_evidence)
    fallback = None
    if options.embeddings:
        from cmosynth.extract.embeddings import EmbeddingConcepts

        fallback = EmbeddingConcepts(codebook)
    agreement = coding_agreement(reviewed)
    if coder is None:
        approach = options.approach or DEFAULT_APPROACH
        coder = RoleCoder(codebook, approach,
                          reviewed=[(e, set(r.roles)) for e, r in zip(flat_evidence, reviewed)
                                    if r is not None])
        if coding:
            agreement["coder"] = cross_fitted_agreement(
                flat_evidence, reviewed,
                [record["record_id"] for record, group, _ in groups for _ in group],
                lambda part: RoleCoder(codebook, approach, fine_tuned=coder.encoder,
                                       reviewed=part))
    method = coder.method if fallback is None else f"{coder.method}+{fallback.method}"
    # One call of the coder for all sentences: a model is much faster in one batch. The
    # reviewer's roles replace the coder's where there are any.
    roles = iter([mine.roles if mine is not None else theirs
                  for mine, theirs in zip(reviewed, coder.code(flat_evidence))])
    codings = iter(reviewed)
    by_record: dict[str, list[tuple[Configuration, str]]] = {}
    sentence_rows: dict[str, list[dict]] = {}
    coded_rows: list[tuple[dict, SentenceCoding]] = []   # a sentence row, its reviewers' coding
    for record, group, evidence in groups:
        mine = [next(codings) for _ in group]
        coded = [CodedSentence(s, next(roles), concepts=m.concepts if m is not None else None)
                 for s, m in zip(group, mine)]
        by_reviewer = {k for k, c in enumerate(mine) if c is not None}
        by_record.setdefault(record["record_id"], []).extend(
            (c, configuration_method(c, by_reviewer, method))
            for c in link_configurations(coded, codebook, fallback))
        numbered = sentence_rows.setdefault(record["record_id"], [])
        new_rows = [sentence_row(record, len(numbered) + k, c, e,
                                 m.method if m is not None else coder.method)
                    for k, (c, e, m) in enumerate(zip(coded, evidence, mine), start=1)]
        numbered += new_rows
        coded_rows += [(row, m) for row, m in zip(new_rows, mine) if m is not None]
    strays = sorted({k for k, v in linked_by_hand.items() if v} - {r["record_id"] for r in records})
    if strays:
        log.warning("%d record(s) with CMOCs linked by hand are not among the records "
                    "extracted (e.g. %s, no longer included?); their CMOCs are left out",
                    len(strays), strays[0])
    rows: list[dict] = []
    for record in track(records, "linking CMOCs", total=len(records)):
        if linked_by_hand.get(record["record_id"]):
            record_rows = [_with_theory(row, codebook) for row in configuration_rows(
                record, linked_by_hand[record["record_id"]],
                sentence_rows.get(record["record_id"], []))]
        else:
            record_rows = [cmo_row(record, c, codebook, m)
                           for c, m in by_record.get(record["record_id"], [])]
        if suggester is not None:
            record_rows += suggester.suggest(record, record_texts(record, options.full_text_dir))
        for number, row in enumerate(sorted(record_rows, key=_row_order), start=1):
            row["cmoc_id"] = f"{record['record_id']}#{number:03d}"
        rows.extend(record_rows)
    linked = [c for pairs in by_record.values() for c, _ in pairs]
    log.info("%d of %d CMOCs take two elements from one sentence, each its own clause; "
             "every other element quotes a sentence of its own",
             sum(c.shares_a_sentence for c in linked), len(linked))
    return Extraction(sorted(rows, key=lambda r: (r["record_id"], r["cmoc_id"])),
                      [row for key in sorted(sentence_rows) for row in sentence_rows[key]],
                      agreement,
                      conflict_rows(sorted(((row["record_id"], row["sentence"], row["text"], m)
                                            for row, m in coded_rows), key=lambda t: t[:2])))


def _with_theory(row: dict, codebook: Codebook) -> dict:
    """A reviewer's configuration without a theory gets the best-matching one."""
    if not row["theory_id"]:
        concepts = frozenset(c for role in ROLES for c in row[role].split(";") if c)
        theory = best_theory(concepts, codebook.theories)
        row["theory_id"] = theory.id if theory else ""
    return row


def configuration_method(configuration: Configuration, by_reviewer: set[int], method: str
                         ) -> str:
    """`reviewer` when a reviewer coded every element's sentence, the coder's method when
    none, both joined when some."""
    checked = [e.sentence_index in by_reviewer for e in configuration.elements.values()]
    if all(checked):
        return REVIEWER_METHOD
    return f"{method}+{REVIEWER_METHOD}" if any(checked) else method


def unique_records(records: Iterable[dict]) -> list[dict]:
    """Records to extract from: duplicates (`duplicate_of` set) and repeated record_ids are
    left out, so that no study's evidence is counted twice."""
    seen: set[str] = set()
    kept = []
    for record in records:
        if record.get("duplicate_of") or record["record_id"] in seen:
            continue
        seen.add(record["record_id"])
        kept.append(record)
    if len(seen) < sum(1 for _ in records):
        log.info("left out %d duplicate records", sum(1 for _ in records) - len(seen))
    return kept


def record_texts(record: dict, full_text_dir: Path | None) -> list[str]:
    """Every text a quote of this record may come from: title, abstract, full-text paragraphs."""
    texts = [record.get("title") or "", record.get("abstract") or ""]
    texts += [s.source_text for s in full_text_sentences(record, full_text_dir)]
    return [t for t in texts if t]


def group_evidence(group: list[Sentence], codebook: Codebook, title: str = "") -> list:
    """Role evidence for the sentences of one text, with positional sections when the
    text has no structured labels, each sentence's place and the record's title."""
    return [gather_evidence(s.text, position_category(s.category, i, len(group)), codebook,
                            index=i, count=len(group), title=title)
            for i, s in enumerate(group)]


def sentence_groups(record: dict, full_text_dir: Path | None) -> list[list[Sentence]]:
    """Sentences grouped by the text they belong to (title, abstract, each paragraph)."""
    sentences = record_sentences(record)
    groups = [[s for s in sentences if s.section == "title"],
              [s for s in sentences if s.section != "title"]]
    paragraphs: dict[int, list[Sentence]] = {}
    for sentence in full_text_sentences(record, full_text_dir):
        paragraphs.setdefault(id(sentence.source_text), []).append(sentence)
    return [g for g in groups + list(paragraphs.values()) if g]


def full_text_sentences(record: dict, full_text_dir: Path | None) -> list[Sentence]:
    """Sentences of the record's stored full text (results, discussion, conclusions)."""
    if full_text_dir is None:
        return []
    from cmosynth.extract.fulltext import full_text_path, read_full_text

    path = full_text_path(full_text_dir, record.get("pmcid"))
    if path is None or not path.exists():
        return []
    sentences = []
    for paragraph in read_full_text(path):
        category = {"results": "RESULTS", "body": None}.get(paragraph.kind, "CONCLUSIONS")
        for a, b in split_spans(paragraph.text):
            sentences.append(Sentence(paragraph.text[a:b], a, f"fulltext:{paragraph.kind}", None,
                                      category, paragraph.text))
    return sentences


def cmo_row(record: dict, configuration: Configuration, codebook: Codebook, method: str) -> dict:
    """One row of the CMO table (cmoc_id is numbered later, in reading order)."""
    theory = best_theory(configuration.concept_ids(), codebook.theories)
    row = {"cmoc_id": "", "record_id": record["record_id"], "pmid": record.get("pmid") or "",
           "doi": record.get("doi") or "", "theory_id": theory.id if theory else ""}
    for role in ROLES:
        element = configuration.elements.get(role)
        row[role] = ";".join(element.concepts) if element else ""
    for role in ROLES:
        element = configuration.elements.get(role)
        row[f"{role}_quote"] = element.quote if element else ""
    row.update(section=configuration.section, confidence=f"{configuration.confidence:.3f}",
               method=method, summary="")
    return row


def sentence_row(record: dict, number: int, coded: CodedSentence, evidence, method: str) -> dict:
    """One row of the sentence table: where the sentence is, the roles the coder gave it
    (with confidences) and the codebook concepts its cues name."""
    sentence = coded.sentence
    row = {"record_id": record["record_id"], "sentence": number, "section": sentence.section,
           "start": sentence.start, "end": sentence.end,
           "roles": ";".join(r for r in ROLES if r in coded.roles)}
    for role in ROLES:
        confidence = coded.roles.get(role)
        row[f"{role}_confidence"] = f"{confidence:.3f}" if confidence is not None else ""
    if coded.concepts is not None:   # the reviewer's concepts replace the cues'
        concepts = dict.fromkeys(sorted(coded.concepts))
    else:
        concepts = dict.fromkeys(c for role in ROLES for c in evidence.concepts.get(role, ()))
    row.update(concepts=";".join(concepts), method=method, text=sentence.text)
    return row


def _row_order(row: dict) -> tuple:
    """Title first, then abstract, then full text, then LLM suggestions; ties by content."""
    order = 0 if row["section"] == "title" else 2 if row["section"].startswith("fulltext") else 1
    return (order, row["method"].startswith("llm"), row["section"],
            tuple(row.get(c, "") for c in CMO_COLUMNS[5:]))


def write_table(path: str | Path, columns: tuple[str, ...], rows: list[dict]) -> None:
    """Write a table atomically: UTF-8, header first, Unix line ends."""
    with atomic_write(path, newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
