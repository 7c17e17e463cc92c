"""Duplicate clusters: union-find with cannot-links, one kept record per cluster.

Cannot-links come from reviewers (`not_duplicates`) and from earlier runs (two
clusters an earlier run kept apart stay apart), so a chain of automatic links can never
join what a person or an earlier decision separated.
"""

from __future__ import annotations

from collections import defaultdict

from cmosynth.records import RECORD_FIELDS


class Clusters:
    """Union-find over record indices that refuses unions forbidden by cannot-links."""

    def __init__(self, size: int):
        self.parent = list(range(size))
        self.size = [1] * size
        self.forbidden: dict[int, set[int]] = {}
        self.anchor: dict[int, str] = {}
        self._members: dict[int, list[int]] = {}

    def find(self, item: int) -> int:
        parent = self.parent
        root = item
        while parent[root] != root:
            root = parent[root]
        while parent[item] != root:
            parent[item], item = root, parent[item]
        return root

    def forbid(self, a: int, b: int) -> None:
        """Never let the clusters of `a` and `b` join (a reviewer said they differ)."""
        self.forbidden.setdefault(self.find(a), set()).add(b)
        self.forbidden.setdefault(self.find(b), set()).add(a)

    def set_anchor(self, item: int, anchor: str) -> None:
        """Mark the cluster of `item` as decided by an earlier run: it joins no other."""
        self.anchor[self.find(item)] = anchor

    def can_join(self, a: int, b: int, *, respect_anchors: bool = True) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return True
        if any(self.find(x) == rb for x in self.forbidden.get(ra, ())):
            return False
        if any(self.find(x) == ra for x in self.forbidden.get(rb, ())):
            return False
        anchor_a, anchor_b = self.anchor.get(ra), self.anchor.get(rb)
        return not (respect_anchors and anchor_a and anchor_b and anchor_a != anchor_b)

    def union(self, a: int, b: int, *, respect_anchors: bool = True) -> bool:
        """Join the clusters of `a` and `b`; False if a cannot-link forbids it."""
        if not self.can_join(a, b, respect_anchors=respect_anchors):
            return False
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return True
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]
        # Smaller list into the larger: each item moves O(log n) times in all.
        merged = self._members.pop(ra, None) or [ra]
        merged.extend(self._members.pop(rb, None) or [rb])
        self._members[ra] = merged
        if rb in self.forbidden:
            self.forbidden.setdefault(ra, set()).update(self.forbidden.pop(rb))
        if rb in self.anchor:
            self.anchor.setdefault(ra, self.anchor.pop(rb))
        return True

    def members(self, item: int) -> list[int]:
        """Every item in the cluster of `item`, in the order they joined."""
        return self._members.get(self.find(item)) or [item]

    def groups(self) -> list[list[int]]:
        """Clusters of two or more records, each sorted, in order of their first member."""
        members = defaultdict(list)
        for item in range(len(self.parent)):
            members[self.find(item)].append(item)
        return [group for group in members.values() if len(group) > 1]


def _filled(value) -> bool:
    return value not in (None, "", [], {})


def completeness(record: dict) -> tuple:
    """Sort key: records with an abstract, DOI, PMID and more fields first; then by
    record_id so the choice never depends on input order."""
    filled = sum(1 for name in RECORD_FIELDS if _filled(record.get(name)))
    return (not _filled(record.get("abstract")), not _filled(record.get("doi")),
            not _filled(record.get("pmid")), -filled, record["record_id"])


#: Fields never copied from a duplicate: they identify the record itself.
_OWN_FIELDS = {"record_id", "source", "source_id"}


def fill_from_duplicates(kept: dict, duplicates: list[dict]) -> dict[str, str]:
    """Fill the kept record's empty fields from its duplicates, most complete first;
    returns {field: record_id it came from} for `merged_from`."""
    merged_from = {}
    for name in RECORD_FIELDS:
        if name in _OWN_FIELDS or _filled(kept.get(name)):
            continue
        for duplicate in duplicates:
            if _filled(duplicate.get(name)):
                kept[name] = duplicate[name]
                merged_from[name] = duplicate["record_id"]
                break
    return merged_from
