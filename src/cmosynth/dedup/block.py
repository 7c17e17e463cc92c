"""Blocking: which records are compared at all, so cost grows about linearly.

Each record gets a few keys; only records sharing a key are compared. Keys are tried
strongest first (identifiers, exact title), so most duplicates are already clustered
when the looser keys (title start, sorted title words, author+year+title word,
volume+page) are reached, and those then cost little.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator

from cmosynth.dedup.match import Features


def _title_start(f: Features) -> str | None:
    words = f.title.split()
    return " ".join(words[:5]) if len(words) >= 4 else None


def _title_end(f: Features) -> str | None:
    words = f.title.split()
    return " ".join(words[-5:]) if len(words) >= 4 else None


def _title_words(f: Features) -> str | None:
    """The four longest distinct title words, sorted: survives reordering and typos
    in the short words."""
    words = set(f.title.split())
    if len(words) < 4:
        return None
    return " ".join(sorted(sorted(words, key=lambda w: (-len(w), w))[:4]))


def _author_year_word(f: Features) -> str | None:
    word = next((w for w in f.title.split() if len(w) > 3), "")
    if f.surnames and f.year and word:
        return f"{f.surnames[0]}|{f.year}|{word}"
    return None


def _volume_page(f: Features) -> str | None:
    return f"{f.volume}|{f.page}" if f.volume and f.page else None


def _author_page(f: Features) -> str | None:
    return f"{f.surnames[0]}|{f.page}" if f.surnames and f.page else None


#: Blocking keys, in the order their blocks are processed (strongest first).
BLOCKING_KEYS: dict[str, Callable[[Features], str | None]] = {
    "doi": lambda f: f.doi or None,
    "pmid": lambda f: f.pmid or None,
    "title": lambda f: f.title or None,
    "title_start": _title_start,
    "title_end": _title_end,
    "title_words": _title_words,
    "author_year_word": _author_year_word,
    "volume_page": _volume_page,
    "author_page": _author_page,
}


def blocks(all_features: list[Features], kind: str) -> Iterator[list[int]]:
    """Groups of record indices sharing the `kind` key, two records or more, built one
    kind at a time so only one key table is in memory."""
    key_of = BLOCKING_KEYS[kind]
    table: dict[str, list[int]] = defaultdict(list)
    for f in all_features:
        key = key_of(f)
        if key is not None:
            table[key].append(f.index)
    for members in table.values():
        if len(members) > 1:
            yield members
