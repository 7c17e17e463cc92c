"""Blocking: which records are compared at all, so cost grows about linearly.

Each record gets a few keys; only records sharing a key are compared. Keys are tried
strongest first (identifiers, exact title), so most duplicates are already clustered
when the looser keys (title start, sorted title words, author+year+title word,
volume+page) are reached, and those then cost little.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from cmosynth.dedup.match import Features

#: Key kinds in the order blocks are processed.
KEY_ORDER = ("doi", "pmid", "title", "title_start", "title_end", "title_words",
             "author_year_word", "volume_page", "author_page")


def blocking_keys(f: Features) -> Iterable[tuple[str, str]]:
    """(kind, key) pairs for one record; a record is compared with those sharing one."""
    if f.doi:
        yield "doi", f.doi
    if f.pmid:
        yield "pmid", f.pmid
    words = f.title_words
    if words:
        yield "title", f.title
    if len(words) >= 4:
        yield "title_start", " ".join(words[:5])
        yield "title_end", " ".join(words[-5:])
        longest = sorted(set(words), key=lambda w: (-len(w), w))[:4]
        yield "title_words", " ".join(sorted(longest))
    first_author = f.surnames[0] if f.surnames else ""
    title_word = next((w for w in words if len(w) > 3), "")
    if first_author and f.year and title_word:
        yield "author_year_word", f"{first_author}|{f.year}|{title_word}"
    if f.volume and f.page:
        yield "volume_page", f"{f.volume}|{f.page}"
    if first_author and f.page:
        yield "author_page", f"{first_author}|{f.page}"


def build_blocks(all_features: list[Features]) -> dict[str, dict[str, list[int]]]:
    """{kind: {key: [record indices]}}, keeping only keys shared by two or more records."""
    blocks: dict[str, dict[str, list[int]]] = {kind: defaultdict(list) for kind in KEY_ORDER}
    for f in all_features:
        for kind, key in blocking_keys(f):
            blocks[kind][key].append(f.index)
    return {kind: {key: members for key, members in by_key.items() if len(members) > 1}
            for kind, by_key in blocks.items()}
