"""Cold start: what the topic is about, before any reviewer decision exists.

The topic profile is a handful of pseudo-relevant documents: the PubMed query's terms
(field tags, booleans and brackets stripped) and, if the codebook exists, one document
per concept made of its label, definition and cues. Records are ranked by their
similarity to the closest profile document.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from pathlib import Path

from cmosynth.config import read_yaml

log = logging.getLogger("cmosynth.screen.profile")

_FIELD_TAG = re.compile(r"\[[^\]]*\]")
_BOOLEAN = re.compile(r"\b(?:AND|OR|NOT)\b")
_TERM = re.compile(r'"([^"]+)"|([^\s()"]+)')
_WORD = re.compile(r"\w[\w-]*\w|\w")


def query_terms(query: str) -> list[str]:
    """The words and phrases of a PubMed query, without field tags, booleans or brackets.

    Truncated terms keep their `*` so they can be expanded against the records' words.
    """
    text = _BOOLEAN.sub(" ", _FIELD_TAG.sub(" ", query))
    terms = []
    for quoted, bare in _TERM.findall(text):
        term = (quoted or bare).strip()
        if term and term not in terms:
            terms.append(term)
    return terms


def expand_truncations(terms: Iterable[str], words: set[str]) -> list[str]:
    """Replace `stem*` by the records' own words that start with the stem (lower case)."""
    expanded = []
    for term in terms:
        if not term.endswith("*"):
            expanded.append(term)
            continue
        stem = term.rstrip("*").lower()
        matches = sorted(w for w in words if w.startswith(stem))
        expanded.extend(matches or [stem])
    return list(dict.fromkeys(expanded))


def codebook_documents(path: str | Path | None) -> list[str]:
    """One text per codebook concept (label, definition and cues); none if no codebook."""
    if not path or not Path(path).exists():
        log.info("no codebook at %s: cold start uses the query terms only", path)
        return []
    data = read_yaml(path) or {}
    documents = []
    for concept in data.get("concepts") or []:
        if not isinstance(concept, dict):
            continue
        parts = [concept.get("label") or "", concept.get("definition") or "",
                 *[str(c) for c in concept.get("cues") or []]]
        text = " ".join(p for p in parts if p).strip()
        if text:
            documents.append(text)
    return documents


def record_words(texts: Iterable[str]) -> set[str]:
    """Every lower-case word of the records, for expanding truncated query terms."""
    words: set[str] = set()
    for text in texts:
        words.update(w.lower() for w in _WORD.findall(text))
    return words


def topic_profile(topic: dict, texts: list[str]) -> list[str]:
    """Pseudo-relevant documents for the cold start: the query, then each codebook concept."""
    query = topic.get("search", {}).get("pubmed", {}).get("query", "")
    terms = expand_truncations(query_terms(query), record_words(texts))
    documents = [" ".join(terms)] if terms else []
    return documents + codebook_documents(topic.get("codebook"))
