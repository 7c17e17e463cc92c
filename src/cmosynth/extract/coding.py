"""Reviewer coding: sentence roles reviewers have checked, in CSV files the reviewers own.

The pipeline reads them and never writes them. A reviewer copies the rows of
`extract/sentences.csv` they have checked into a file of their own (or draws a sample
of records with `cmosynth coding-sheet`) and corrects the `roles` cell: roles among
context, mechanism and outcome, separated by `;` (or `,`), empty or `none` for none, `?`
for not coded yet (the row is skipped). Columns `record_id`, `sentence` and `roles` are needed;
`text`, when present, is compared with the sentence as it is now, so that a row whose
record has changed since (a corrected abstract, a full text added) is not applied to
another sentence. `reviewer` names who coded the row (the file's name when the column is
absent or empty, as for screening decisions). Other columns are ignored. A reviewer's
later row for a sentence replaces their earlier one, and files are read in the order given.

Extraction then gives those sentences exactly the reviewers' roles (method `reviewer`),
and the role model learns from them beside the project's labelled abstracts, so the rest
of the review is coded more like the reviewers code: `bench/extract.py` measures that
on abstracts nothing was tuned on.

Double coding: where two or more reviewers coded a sentence, their agreement is measured
(per role Cohen's kappa and F1, the measures of the project's own labels), and a sentence
they coded differently is a conflict. A row from the reviewer named `consensus` settles
it. Until then the sentence carries every role any of them gave, each with the share of
reviewers who gave it as its confidence, and the method `reviewers-disagree`; that is
how the project's own doubly labelled abstracts train the coder too (`roles.union_labels`).
`coding_conflicts.csv` lists the conflicts as rows ready to settle in a consensus file.

For a reliability sample, `coding_sheet` draws whole records at random (seeded, so that
two reviewers given the same seed code the same records), blind if asked: every `roles`
cell `?`, so that neither the coder's roles nor another reviewer's anchor the coding.
"""

from __future__ import annotations

import itertools
import logging
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sklearn.metrics import cohen_kappa_score

from cmosynth.errors import InputError
from cmosynth.extract.codebook import ROLES
from cmosynth.files import read_reviewer_csv
from cmosynth.screen.decisions import CONSENSUS_REVIEWER

log = logging.getLogger("cmosynth.extract.coding")

REVIEWER_METHOD = "reviewer"
#: The method of a sentence two reviewers coded differently and no consensus row settled.
CONFLICT_METHOD = "reviewers-disagree"
REQUIRED_COLUMNS = ("record_id", "sentence", "roles")
#: A `roles` cell not coded yet: the row is skipped (blind sheets and conflicts start so).
NOT_CODED = "?"
#: A sentence number as written in sentences.csv: ASCII digits ("²" is a digit to Python).
_NUMBER = re.compile(r"[0-9]+")
#: The coding sheet: the columns a reviewer needs to code a sentence in place.
SHEET_COLUMNS = ("record_id", "sentence", "section", "roles", "reviewer", "text")
#: The conflict worklist: each conflict as a row of a consensus coding file (roles to be
#: filled in), then each reviewer's roles and where they were read.
CONFLICT_COLUMNS = ("record_id", "sentence", "roles", "reviewer", "text", "coded_by")

#: (record_id, sentence number) -> reviewer -> that reviewer's last row for the sentence.
CodingTable = dict[tuple[str, int], dict[str, "CodedByReviewer"]]


@dataclass(frozen=True)
class CodedByReviewer:
    """A reviewer's roles for one sentence, with where they were read from."""

    record_id: str
    sentence: int           # the sentence's number in sentences.csv (1, 2, ...)
    roles: frozenset[str]
    text: str | None        # the sentence as the reviewer saw it, if the file has `text`
    path: str
    line: int
    reviewer: str = ""
    #: Codebook concept ids the reviewer gave the sentence; None: the cues decide.
    concepts: frozenset[str] | None = None

    def matches(self, text: str) -> bool:
        """Whether the sentence is still the one the reviewer coded."""
        return self.text is None or _normalised(self.text) == _normalised(text)


@dataclass(frozen=True)
class SentenceCoding:
    """The reviewers' coding of one sentence: each reviewer's roles and the consensus row,
    if any."""

    views: Mapping[str, CodedByReviewer]     # reviewer -> row, consensus left out
    consensus: CodedByReviewer | None = None

    @property
    def conflict(self) -> bool:
        """Whether reviewers gave different roles (settled or not)."""
        return len({row.roles for row in self.views.values()}) > 1

    @property
    def settled(self) -> bool:
        return self.conflict and self.consensus is not None

    @property
    def unsettled(self) -> bool:
        """A conflict no consensus row has settled yet."""
        return self.conflict and self.consensus is None

    @property
    def roles(self) -> dict[str, float]:
        """role -> confidence: the consensus's or the agreed roles at 1; in an unsettled
        conflict, every role any reviewer gave, at the share of reviewers who gave it."""
        if self.consensus is not None:
            return dict.fromkeys(sorted(self.consensus.roles, key=ROLES.index), 1.0)
        rows = list(self.views.values())
        return {role: sum(role in row.roles for row in rows) / len(rows)
                for role in ROLES if any(role in row.roles for row in rows)}

    @property
    def method(self) -> str:
        return CONFLICT_METHOD if self.unsettled else REVIEWER_METHOD

    @property
    def concepts(self) -> frozenset[str] | None:
        """The consensus's concepts, else those every reviewer who gave concepts agrees
        on; None (the codebook's cues decide) when none gave any or they differ."""
        if self.consensus is not None and self.consensus.concepts is not None:
            return self.consensus.concepts
        given = {row.concepts for row in self.views.values() if row.concepts is not None}
        return next(iter(given)) if len(given) == 1 else None


def parse_roles(value: str, path: Path, line: int) -> frozenset[str]:
    """The roles of a `roles` cell ('context;outcome', 'none', empty)."""
    words = [w for w in re.split(r"[;,\s]+", value.strip().lower()) if w]
    if not words or words == ["none"] or words == ["-"]:
        return frozenset()
    unknown = [w for w in words if w not in ROLES]
    if unknown:
        raise InputError(path, f"role {unknown[0]!r} is not one of {', '.join(ROLES)} "
                               "(separate roles with ';', leave empty for none)", line=line)
    return frozenset(words)


def parse_concepts(value: str) -> frozenset[str] | None:
    """Concept ids of a `concepts` cell; None for an empty cell (the cues decide), no
    concepts for `none`."""
    words = [w for w in re.split(r"[;,\s]+", value.strip()) if w]
    if not words:
        return None
    return frozenset() if [w.lower() for w in words] in (["none"], ["-"]) else frozenset(words)


def check_concepts(coding: CodingTable, known: Iterable[str]) -> None:
    """Every concept a reviewer gave is one of the codebook's (InputError naming the row)."""
    known = set(known)
    for rows in coding.values():
        for row in rows.values():
            unknown = sorted((row.concepts or frozenset()) - known)
            if unknown:
                raise InputError(row.path, f"concept {unknown[0]!r} is not in the codebook; "
                                           "use the concept ids of the topic's codebook",
                                 line=row.line)


def read_coding_file(path: str | Path) -> list[CodedByReviewer]:
    """The rows of one reviewer coding file, in file order (`read_coding` keeps a
    reviewer's later row for a sentence). Unknown roles, sentence numbers that are not
    numbers and rows without a record_id are InputErrors naming the line."""
    path = Path(path)
    rows = []
    for line, row in read_reviewer_csv(
            path, REQUIRED_COLUMNS,
            not_found="reviewer coding file not found; check extract.coding in the topic file",
            header="copy rows with the header of extract/sentences.csv"):
        record_id, number = row["record_id"], row["sentence"]
        if not record_id and not number:
            continue
        if row["roles"] == NOT_CODED:
            continue
        if not _NUMBER.fullmatch(number) or int(number) < 1:
            raise InputError(path, f"sentence {number!r} must be the sentence's number in "
                                   "extract/sentences.csv (1, 2, ...)", line=line)
        if not record_id:
            raise InputError(path, "record_id is empty; copy the row again from "
                                   "extract/sentences.csv", line=line)
        rows.append(CodedByReviewer(record_id, int(number), parse_roles(row["roles"], path, line),
                                    row.get("text"), str(path), line,
                                    row.get("reviewer") or path.stem,
                                    parse_concepts(row.get("concepts", ""))))
    return rows


def read_coding(paths: Iterable[str | Path]) -> CodingTable:
    """(record_id, sentence number) -> reviewer -> the reviewer's last coding of it."""
    return coding_table(row for path in paths for row in read_coding_file(path))


def coding_table(rows: Iterable[CodedByReviewer]) -> CodingTable:
    """The same table from rows already read, in reading order (later rows win)."""
    coding: CodingTable = {}
    for row in rows:
        coding.setdefault((row.record_id, row.sentence), {})[row.reviewer] = row
    return coding


def match_coding(texts: Iterable[tuple[str, str]], coding: CodingTable
                 ) -> list[SentenceCoding | None]:
    """The reviewers' coding of each sentence, given as (record_id, text) in the order of
    sentences.csv (each record's sentences together, numbered from 1), None where no
    reviewer has coded it. Rows naming a sentence that is not there, or no longer the one
    the reviewer saw, are left out with a warning."""
    numbers: dict[str, int] = {}
    matched: list[SentenceCoding | None] = []
    used: set[tuple[str, int]] = set()
    for record_id, text in texts:
        numbers[record_id] = numbers.get(record_id, 0) + 1
        key = (record_id, numbers[record_id])
        current = {}
        for reviewer, row in coding.get(key, {}).items():
            if row.matches(text):
                current[reviewer] = row
            else:
                log.warning("%s:%d: sentence %d of %s now reads %r, not what was coded; "
                            "copy its row again from extract/sentences.csv", row.path,
                            row.line, row.sentence, record_id, _shorten(text))
        if current:
            used.add(key)
        matched.append(sentence_coding(current) if current else None)
    unused = [row for key, rows in coding.items() if key not in used
              and (key[0] not in numbers or key[1] > numbers[key[0]]) for row in rows.values()]
    if unused:
        log.warning("%d coded sentence(s) are not among the records extracted (e.g. %s:%d, "
                    "%s sentence %d); left out", len(unused), unused[0].path, unused[0].line,
                    unused[0].record_id, unused[0].sentence)
    log.info("reviewer coding applied to %d sentence(s) of %d record(s)", len(used),
             len({key[0] for key in used}))
    return matched


def sentence_coding(rows: Mapping[str, CodedByReviewer]) -> SentenceCoding:
    """One sentence's coding from each reviewer's row (reviewer -> row), consensus apart."""
    consensus = next((row for name, row in rows.items() if _is_consensus(name)), None)
    return SentenceCoding({name: row for name, row in rows.items() if not _is_consensus(name)},
                          consensus)


def _is_consensus(reviewer: str) -> bool:
    return reviewer.lower() == CONSENSUS_REVIEWER


def role_agreement(first: Sequence[Iterable[str]], second: Sequence[Iterable[str]],
                   kappa: bool = True) -> dict:
    """How two codings of the same sentences agree: per role the count each gave, the
    count both gave, precision, recall and F1 of `second` against `first` (F1 is
    symmetric; None where neither gave the role), and Cohen's kappa (None where neither
    varies, or not asked for); then the macro F1 over the roles either gave and the share
    of sentences given identical role sets."""
    first, second = [set(r) for r in first], [set(r) for r in second]
    result: dict = {"sentences": len(first), "roles": {}}
    for role in ROLES:
        a = [int(role in r) for r in first]
        b = [int(role in r) for r in second]
        both = sum(x and y for x, y in zip(a, b))
        precision = both / sum(b) if sum(b) else 0.0
        recall = both / sum(a) if sum(a) else 0.0
        f1 = (2 * precision * recall / (precision + recall) if precision + recall else 0.0) \
            if sum(a) + sum(b) else None
        result["roles"][role] = {
            "first": sum(a), "second": sum(b), "both": both, "precision": precision,
            "recall": recall, "f1": f1,
            "cohen_kappa": float(cohen_kappa_score(a, b))
            if kappa and len(set(a) | set(b)) > 1 else None}
    f1s = [r["f1"] for r in result["roles"].values() if r["f1"] is not None]
    result["macro_f1"] = sum(f1s) / len(f1s) if f1s else None
    result["identical"] = (sum(x == y for x, y in zip(first, second)) / len(first)
                           if first else None)
    return result


def coding_agreement(codings: Iterable[SentenceCoding | None]) -> dict:
    """The double coding of a review: reviewers, the sentences coded, for every pair of
    reviewers their agreement on the sentences both coded (`role_agreement`, rounded),
    and the conflicts, settled by consensus or not. `coder` is left for extraction to
    fill: the coder's agreement with the reviewers (`cross_fitted_agreement`)."""
    coded = [c for c in codings if c is not None]
    reviewers = sorted({name for c in coded for name in c.views})
    pairs = []
    for first, second in itertools.combinations(reviewers, 2):
        both = [c for c in coded if first in c.views and second in c.views]
        if not both:
            continue
        agreed = role_agreement([c.views[first].roles for c in both],
                                [c.views[second].roles for c in both])
        pairs.append({"reviewers": [first, second], "sentences_both_coded": len(both),
                      "identical": round(agreed["identical"], 4),
                      "macro_f1": _rounded(agreed["macro_f1"]),
                      "cohen_kappa": {role: _rounded(v["cohen_kappa"])
                                      for role, v in agreed["roles"].items()},
                      "f1": {role: _rounded(v["f1"]) for role, v in agreed["roles"].items()}})
    return {"reviewers": reviewers, "sentences_coded": len(coded),
            "by_consensus": sum(c.consensus is not None for c in coded),
            "pairs": pairs, "conflicts": sum(c.conflict for c in coded),
            "conflicts_settled_by_consensus": sum(c.settled for c in coded),
            "coder": None}


def cross_fitted_agreement(evidence: Sequence, codings: Sequence[SentenceCoding | None],
                           record_ids: Sequence[str], make_coder, folds: int = 5
                           ) -> dict | None:
    """How the coder agrees with the reviewers on the sentences they coded, each sentence
    coded by a coder that learnt from the reviewers' other records only (`folds` folds of
    records; `make_coder(reviewed)` trains one on (evidence, roles) pairs): the review's
    own estimate of how well the coder codes the sentences nobody checked. Sentences in
    an unsettled conflict are learnt from but not scored. None with fewer than two
    coded records."""
    coded = [k for k, c in enumerate(codings) if c is not None]
    records = sorted({record_ids[k] for k in coded})
    if len(records) < 2:
        return None
    count = min(folds, len(records))
    fold_of = {r: i % count for i, r in enumerate(random.Random(0).sample(records, len(records)))}
    by_record: dict[str, list[tuple[set[str], set[str]]]] = {}     # (reviewers', coder's)
    for fold in range(count):
        coder = make_coder([(evidence[k], set(codings[k].roles)) for k in coded
                            if fold_of[record_ids[k]] != fold])
        held = [k for k in coded if fold_of[record_ids[k]] == fold
                and not codings[k].unsettled]
        for k, roles in zip(held, coder.code([evidence[k] for k in held])):
            by_record.setdefault(record_ids[k], []).append((set(codings[k].roles), set(roles)))
    pairs = [pair for record in sorted(by_record) for pair in by_record[record]]
    agreed = role_agreement([g for g, _ in pairs], [p for _, p in pairs])
    return {"records": len(records), "sentences": len(pairs), "folds": count,
            "macro_f1": _rounded(agreed["macro_f1"]),
            "macro_f1_95": _bootstrap_interval(list(by_record.values())),
            **{measure: {role: _rounded(v[measure]) for role, v in agreed["roles"].items()}
               for measure in ("precision", "recall", "f1")}}


def _bootstrap_interval(records: list[list[tuple[set[str], set[str]]]],
                        resamples: int = 1000) -> list[float] | None:
    """A 95 % percentile interval of macro F1, resampling records (their sentences are
    not independent), seeded so that reruns agree."""
    if len(records) < 2:
        return None
    draw = random.Random(0)
    values = []
    for _ in range(resamples):
        pairs = [pair for record in draw.choices(records, k=len(records)) for pair in record]
        value = role_agreement([g for g, _ in pairs], [p for _, p in pairs],
                               kappa=False)["macro_f1"]
        values.append(0.0 if value is None else value)
    values.sort()
    return [round(values[int(0.025 * resamples)], 4), round(values[int(0.975 * resamples) - 1], 4)]


def conflict_rows(sentences: Iterable[tuple[str, int, str, SentenceCoding | None]]
                  ) -> list[dict]:
    """Rows of the conflict worklist for the sentences (record_id, number, text, coding)
    that reviewers coded differently and no consensus row settled yet: each ready to be
    copied into a consensus coding file once its `roles` cell is filled in."""
    rows = []
    for record_id, number, text, coding in sentences:
        if coding is None or not coding.unsettled:
            continue
        views = "; ".join(f"{name}: {_roles_cell(row.roles) or 'none'} ({Path(row.path).name}:"
                          f"{row.line})" for name, row in sorted(coding.views.items()))
        rows.append({"record_id": record_id, "sentence": number, "roles": NOT_CODED,
                     "reviewer": CONSENSUS_REVIEWER, "text": text, "coded_by": views})
    return rows


def coding_sheet(sentences: Sequence[Mapping[str, str]], records: int | None = None,
                 seed: int = 1, blind: bool = False, reviewer: str = "") -> list[dict]:
    """Rows of the sentence table (`SHEET_COLUMNS`) for a reviewer to code: every sentence
    of `records` records drawn at random with `seed` (all records when None), in the
    table's order; each `roles` cell the coder's roles to correct, or `?` with `blind`."""
    ids = list(dict.fromkeys(row["record_id"] for row in sentences))
    chosen = set(ids if records is None or records >= len(ids)
                 else random.Random(seed).sample(ids, records))
    return [{"record_id": row["record_id"], "sentence": row["sentence"],
             "section": row.get("section", ""),
             "roles": NOT_CODED if blind else row["roles"], "reviewer": reviewer,
             "text": row["text"]}
            for row in sentences if row["record_id"] in chosen]


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _roles_cell(roles: Iterable[str]) -> str:
    return ";".join(r for r in ROLES if r in roles)


def _shorten(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[:width - 3] + "..."


def _normalised(text: str) -> str:
    return " ".join(text.split())
