"""Linking duplicate records: the engine behind `cmosynth dedup`.

Order of decisions, each one unable to undo the ones before it:
1. records sharing a record_id (the same PMID or DOI from two exports, or twice in
   one): the later gets a source-scoped id, and the pair is compared like any other;
2. reviewer overrides: `duplicates` are joined, `not_duplicates` become cannot-links;
3. an earlier run's clusters are restored and frozen (incremental runs);
4. a DOI that records with different titles share is a container's (a supplement's,
   a proceedings volume's), not a paper's: it is set aside for matching;
5. blocked pairs are compared and joined under named rules (see `match`), unless the
   join would put two records whose titles disagree into one cluster.
Every input record is kept; duplicates point at their cluster's kept record.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

from cmosynth.console import Progress, track
from cmosynth.dedup.block import BLOCKING_KEYS, blocks
from cmosynth.dedup.cluster import Clusters, completeness, fill_from_duplicates
from cmosynth.dedup.match import (DEFAULT_THRESHOLDS, DUPLICATE, REVIEW, Features,
                                  Thresholds, Verdict, compare, features,
                                  titles_disagree)

log = logging.getLogger("cmosynth.dedup")

#: Members of a cluster a new record is compared with inside one block.
_REPRESENTATIVES = 3
#: Members of each cluster whose titles are checked before two clusters join.
_TITLE_CHECK_MEMBERS = 12
#: Blocks larger than this (generic keys such as a common first page) are skipped.
MAX_BLOCK = 5000

DEDUP_FIELDS = ("duplicate_of", "dup_rule", "dup_score", "dup_group", "merged_from")


@dataclass
class Override:
    """One reviewer decision on a pair, from the overrides CSV."""

    record_id_a: str
    record_id_b: str
    duplicates: bool
    reviewer: str = ""
    reason: str = ""


@dataclass
class DedupResult:
    """Deduplicated records, pairs for review and counts for the log and the report."""

    records: list[dict]
    review_pairs: list[dict]
    counts: Counter = field(default_factory=Counter)


def make_ids_unique(records: list[dict]) -> list[tuple[int, int]]:
    """Give records whose record_id is already taken a source-scoped id; returns
    (first, later) index pairs, to be compared as any pair is."""
    seen: dict[str, int] = {}
    links = []
    for index, record in enumerate(records):
        rid = record["record_id"]
        if rid in seen:
            source_id = record.get("source_id") or f"{index + 1}"
            new_id = f"{record.get('source') or 'import'}:{source_id}"
            suffix = 2
            while new_id in seen:
                new_id = f"{record.get('source') or 'import'}:{source_id}#{suffix}"
                suffix += 1
            record["record_id"] = new_id
            links.append((seen[rid], index))
            rid = new_id
        seen[rid] = index
    return links


class _Linker:
    """Holds the clusters and the evidence for each link while pairs are decided."""

    def __init__(self, records: list[dict], thresholds: Thresholds = DEFAULT_THRESHOLDS):
        self.records = records
        self.thresholds = thresholds
        self.features: list[Features] = []
        self.clusters = Clusters(len(records))
        self.links: dict[int, tuple[str, float]] = {}
        self.review: dict[tuple[int, int], Verdict] = {}
        self.decided: set[tuple[int, int]] = set()
        self.frozen: set[int] = set()
        self.counts: Counter = Counter()

    def link(self, a: int, b: int, rule: str, score: float, *, respect_anchors=True) -> bool:
        if not self.clusters.union(a, b, respect_anchors=respect_anchors):
            return False
        self.links.setdefault(b, (rule, score))
        self.links.setdefault(a, (rule, score))
        return True

    def title_clash(self, a: int, b: int) -> tuple[int, int] | None:
        """Two records, one from each cluster, whose titles disagree: joining the
        clusters would make different papers one through a chain of links."""
        find = self.clusters.find
        if find(a) == find(b):
            return None
        floor = self.thresholds.different_title
        members_b = self.clusters.members(b)[:_TITLE_CHECK_MEMBERS]
        for x in self.clusters.members(a)[:_TITLE_CHECK_MEMBERS]:
            fx = self.features[x]
            for y in members_b:
                fy = self.features[y]
                if fx.title != fy.title and titles_disagree(fx, fy, floor):
                    return x, y
        return None

    def compare_block(self, members: list[int], all_features: list[Features]) -> None:
        """Compare each member with a few representatives of every other cluster seen
        earlier in the block; join on a duplicate verdict, note review verdicts."""
        find = self.clusters.find
        representatives: dict[int, list[int]] = {}
        for member in members:
            for root, reps in list(representatives.items()):
                if find(root) == find(member):
                    continue
                for rep in reps:
                    if self._decide(rep, member, all_features):
                        break
            own = representatives.setdefault(find(member), [])
            if len(own) < _REPRESENTATIVES:
                own.append(member)

    def _decide(self, a: int, b: int, all_features: list[Features]) -> bool:
        """Compare one pair; True if they end up in one cluster. Pairs of an earlier run
        are compared again so that their uncertain pairs stay on the review list."""
        pair = (a, b) if a < b else (b, a)
        if pair in self.decided:
            return False
        self.counts["pairs compared"] += 1
        verdict = compare(all_features[a], all_features[b], self.thresholds)
        if verdict.decision == DUPLICATE:
            clash = self.title_clash(a, b)
            if clash is None and self.link(a, b, verdict.rule, verdict.score):
                return True
            if clash is not None:
                self.decided.add(pair)
                self.counts["links refused: titles in the clusters disagree"] += 1
                x, y = (self.records[i]["record_id"] for i in clash)
                self.review[pair] = Verdict(
                    REVIEW, verdict.rule, verdict.score,
                    f"alike under {verdict.rule}, but joining them would put {x} and {y}, "
                    "whose titles differ, in one cluster")
                return False
            verdict = Verdict(REVIEW, verdict.rule, verdict.score,
                              "kept apart by a reviewer decision or an earlier run")
            if a in self.frozen or b in self.frozen:
                verdict = Verdict(REVIEW, verdict.rule, verdict.score,
                                  "would join two clusters an earlier run kept apart")
        self.decided.add(pair)
        if verdict.decision == REVIEW:
            self.review[pair] = verdict
        return False


def dedup_records(records: list[dict], overrides: list[Override] = (),
                  previous: dict[str, dict] | None = None,
                  thresholds: Thresholds = DEFAULT_THRESHOLDS) -> DedupResult:
    """Link duplicates among `records` (modified in place and returned, nothing dropped).

    `previous` maps record_id to an earlier run's decision ({duplicate_of, dup_rule,
    dup_score}); those records keep their clusters and kept status.
    """
    linker = _Linker(records, thresholds)
    shared_id_pairs = make_ids_unique(records)
    renamed = {later for _, later in shared_id_pairs}
    linker.counts["records sharing an identifier"] = len(renamed)
    index_of = {record["record_id"]: i for i, record in enumerate(records)}
    _apply_overrides(linker, overrides, index_of)
    _restore_previous(linker, previous or {}, index_of)

    all_features = [features(i, record) for i, record in
                    enumerate(track(records, "deduplicating: records normalised",
                                    total=len(records)))]
    linker.features = all_features
    _set_aside_container_dois(linker, all_features)
    for first, later in shared_id_pairs:
        linker.compare_block([first, later], all_features)
    with Progress("deduplicating: blocking keys compared", total=len(BLOCKING_KEYS),
                  unit="keys") as progress:
        for kind in BLOCKING_KEYS:
            for members in blocks(all_features, kind):
                if len(members) > MAX_BLOCK:
                    log.warning("skipped a block of %d records sharing one %s key",
                                len(members), kind)
                else:
                    linker.compare_block(members, all_features)
            progress.advance()
    review = _review_rows(linker, all_features)
    _write_decisions(linker, index_of, renamed)
    return DedupResult(records, review, linker.counts)


#: Records with different titles from which a shared DOI is a container's, not a
#: paper's. Two records might be one paper under a translated title: they go to review.
_CONTAINER_DOI_RECORDS = 3


def _set_aside_container_dois(linker: _Linker, all_features: list[Features]) -> None:
    """Blank, for matching only, every DOI that three or more records share while their
    titles disagree: a supplement's or proceedings volume's DOI, which identifies no one
    paper. The records keep the DOI; pairs among them are judged on their other fields."""
    by_doi: dict[str, list[Features]] = {}
    for f in all_features:
        if f.doi:
            by_doi.setdefault(f.doi, []).append(f)
    floor = linker.thresholds.identifier_title
    containers = []
    for doi, sharing in by_doi.items():
        if len(sharing) < _CONTAINER_DOI_RECORDS:
            continue
        titles = {f.title: f for f in sharing if f.title}
        distinct = list(titles.values())[:_TITLE_CHECK_MEMBERS]
        if any(titles_disagree(x, y, floor) for i, x in enumerate(distinct)
               for y in distinct[i + 1:]):
            containers.append((doi, len(sharing)))
            for f in sharing:
                f.doi = ""
    linker.counts["container DOIs set aside"] = len(containers)
    for doi, count in sorted(containers):
        log.info("DOI %s is shared by %d records with different titles (a supplement's or "
                 "volume's DOI): matched on their other fields", doi, count)


def _apply_overrides(linker: _Linker, overrides, index_of: dict[str, int]) -> None:
    known = [o for o in overrides if o.record_id_a in index_of and o.record_id_b in index_of]
    if len(known) < len(overrides):
        log.warning("%d reviewer override(s) name records not in this run; they wait for "
                    "those records", len(overrides) - len(known))
    for o in known:
        if not o.duplicates:
            a, b = index_of[o.record_id_a], index_of[o.record_id_b]
            linker.clusters.forbid(a, b)
            linker.decided.add((min(a, b), max(a, b)))
    for o in known:
        if o.duplicates:
            a, b = index_of[o.record_id_a], index_of[o.record_id_b]
            linker.link(a, b, "reviewer", 1.0, respect_anchors=False)
            linker.decided.add((min(a, b), max(a, b)))
    linker.counts["reviewer overrides applied"] = len(known)


def _restore_previous(linker: _Linker, previous: dict[str, dict],
                      index_of: dict[str, int]) -> None:
    """Rejoin an earlier run's clusters and freeze them: each is anchored to its kept
    record, so it joins no other earlier cluster and keeps that record as kept."""
    kept_index = {}
    for rid, decision in previous.items():
        if rid not in index_of:
            continue
        index = index_of[rid]
        linker.frozen.add(index)
        target = decision.get("duplicate_of")
        if target and target in index_of:
            linker.link(index_of[target], index, decision.get("dup_rule") or "previous",
                        decision.get("dup_score") or 1.0)
            linker.links[index] = (decision.get("dup_rule") or "previous",
                                   decision.get("dup_score") or 1.0)
        elif not target:
            kept_index[rid] = index
    for rid, index in kept_index.items():
        linker.clusters.set_anchor(index, rid)
    linker.counts["records from an earlier run"] = len(linker.frozen)


def _write_decisions(linker: _Linker, index_of: dict[str, int], renamed: set[int]) -> None:
    """Set duplicate_of, dup_rule, dup_score, dup_group and merged_from on every record.

    The kept record is the earlier run's, else the most complete one that holds its
    natural id (a copy renamed for sharing an id points at the record that has it)."""
    records = linker.records
    for record in records:
        record.update(duplicate_of=None, dup_rule=None, dup_score=None,
                      dup_group=record["record_id"], merged_from={})
    for group in linker.clusters.groups():
        root = linker.clusters.find(group[0])
        ordered = [records[i] for i in sorted(group, key=lambda i: (
            i in renamed, completeness(records[i])))]
        anchor = linker.clusters.anchor.get(root)
        kept = records[index_of[anchor]] if anchor else ordered[0]
        duplicates = [r for r in ordered if r is not kept]
        kept["merged_from"] = fill_from_duplicates(kept, duplicates)
        kept_id = kept["record_id"]
        by_id = {id(records[i]): i for i in group}
        for record in duplicates:
            rule, score = linker.links.get(by_id[id(record)], ("linked", 1.0))
            record.update(duplicate_of=kept_id, dup_rule=rule, dup_score=round(score, 3))
            linker.counts[f"linked by {rule}"] += 1
        for record in (kept, *duplicates):
            record["dup_group"] = kept_id
    linker.counts["clusters of duplicates"] = len(linker.clusters.groups())


REVIEW_COLUMNS = ("record_id_a", "record_id_b", "score", "rule", "title_a", "title_b",
                  "year_a", "year_b", "journal_a", "journal_b", "reason")


def _review_rows(linker: _Linker, all_features: list[Features]) -> list[dict]:
    """Uncertain pairs, one row each, sorted by the two record ids."""
    rows = []
    records = linker.records
    for (a, b), verdict in linker.review.items():
        ra, rb = sorted((records[a], records[b]), key=lambda r: r["record_id"])
        rows.append({
            "record_id_a": ra["record_id"], "record_id_b": rb["record_id"],
            "score": f"{verdict.score:.3f}", "rule": verdict.rule,
            "title_a": ra.get("title") or "", "title_b": rb.get("title") or "",
            "year_a": ra.get("year") or "", "year_b": rb.get("year") or "",
            "journal_a": ra.get("journal") or "", "journal_b": rb.get("journal") or "",
            "reason": verdict.reason,
        })
    rows.sort(key=lambda row: (row["record_id_a"], row["record_id_b"]))
    return rows
