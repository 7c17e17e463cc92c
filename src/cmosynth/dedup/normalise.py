"""Normalising the fields that decide whether two records are the same publication.

Exports from different databases write the same article differently (case, HTML,
language tags, accents, Greek letters, author and journal abbreviations, abbreviated
page ranges). Every normaliser here is idempotent and ignores case and punctuation, so
two spellings of one field compare equal as plain strings.
"""

from __future__ import annotations

import html
import re
import unicodedata
from functools import lru_cache

from cmosynth.records import normalise_doi

__all__ = [
    "normalise_doi", "normalise_text", "normalise_title", "normalise_authors",
    "author_key", "normalise_journal", "journals_match", "normalise_pages", "first_page",
    "normalise_volume", "normalise_year",
]

_GREEK = {
    "α": "alpha", "β": "beta", "γ": "gamma", "δ": "delta", "ε": "epsilon", "ζ": "zeta",
    "η": "eta", "θ": "theta", "ι": "iota", "κ": "kappa", "λ": "lambda", "μ": "mu",
    "ν": "nu", "ξ": "xi", "ο": "omicron", "π": "pi", "ρ": "rho", "σ": "sigma", "ς": "sigma",
    "τ": "tau", "υ": "upsilon", "φ": "phi", "χ": "chi", "ψ": "psi", "ω": "omega",
    "ϵ": "epsilon", "ϑ": "theta", "ϕ": "phi", "µ": "mu",
}
_GREEK_RE = re.compile("|".join(map(re.escape, _GREEK)))
_TAG_RE = re.compile(r"<[^<>]{0,200}>")
_NON_WORD = re.compile(r"[^a-z0-9]+")
_NON_ASCII_SEPARATOR = re.compile(
    "[" + "".join(chr(c) for c in range(0x80, 0x3000)
                  if unicodedata.category(chr(c))[0] in "PZ") + "]")
_LANGUAGES = (
    "chinese|japanese|german|french|spanish|italian|portuguese|russian|dutch|polish|czech|"
    "danish|swedish|norwegian|finnish|hungarian|turkish|korean|hebrew|greek|persian|arabic|"
    "croatian|serbian|slovak|slovenian|romanian|bulgarian|ukrainian|lithuanian|estonian|"
    "latvian|icelandic|catalan|english|thai|vietnamese|indonesian|malay"
)
#: Language notes databases append to translated titles: "[Chinese]", "[Article in German]".
_LANGUAGE_TAG = re.compile(
    rf"[\[(]\s*(?:(?:article|text|abstract)\s+in\s+)?(?:{_LANGUAGES})"
    rf"(?:\s*(?:,|and|&|with)\s*(?:english\s+)?(?:abstract|{_LANGUAGES}))*\s*[\])]",
    re.IGNORECASE,
)


#: Notes databases append to an article's title that are not part of it:
#: "[Review] [45 refs]", "(Provisional abstract)", "[Erratum appears in ...]" (the note
#: on the article, not the erratum itself), "[see comments]", also when cut off.
_NOTE_WORDS = (
    r"review|\d+\s+refs?|provisional abstract|structured abstract|abstract only|"
    r"corrected|see (?:comments?|editorial)|"
    r"(?:published erratum|erratum|errata|comment|comments|retraction|retracted|update|"
    r"updated|corrected and republished|republished|expression of concern|"
    r"summary for patients|reprint)\s+(?:appears\s+)?(?:in|of|from|to|with)\b")
_TITLE_NOTES = re.compile(
    rf"\[\s*(?:{_NOTE_WORDS})[^\]]*(?:\]|$)|\(\s*(?:{_NOTE_WORDS})[^)]*(?:\)|$)",
    re.IGNORECASE)


def strip_title_notes(title: str) -> str:
    """The title without database notes ("[Review] [45 refs]", "[Erratum appears in ...]")
    or language tags ("[Chinese]")."""
    text = _TITLE_NOTES.sub(" ", title)
    return _LANGUAGE_TAG.sub(" ", text)


def normalise_text(text: str | None) -> str:
    """Lower-case ASCII words separated by single spaces: no HTML, accents or punctuation.

    Greek letters are spelled out ("β-blocker" = "beta-blocker") and "&" reads "and".
    """
    if not text:
        return ""
    text = str(text)
    if "&" in text:
        text = html.unescape(html.unescape(text)).replace("&", " and ")
    if "<" in text:
        text = _TAG_RE.sub(" ", text)
    text = text.lower()
    if not text.isascii():
        text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u02bc", "'")
        text = _GREEK_RE.sub(lambda m: f" {_GREEK[m.group(0)]} ", text)
        text = text.replace("ß", "ss").replace("æ", "ae").replace("ø", "o")
        # Dashes, other punctuation and spaces outside ASCII separate words, as "-" does:
        # "hemolytic–uremic" = "hemolytic-uremic", not "hemolyticuremic".
        text = _NON_ASCII_SEPARATOR.sub(" ", text)
        text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    # "Sjogren's" = "Sjogrens": an apostrophe joins, never splits, a word.
    return _NON_WORD.sub(" ", text.replace("'", "")).strip()


@lru_cache(maxsize=65536)
def normalise_title(title: str | None) -> str:
    """A title as comparable words: language tags such as "[Chinese]" dropped, and a
    title a database wrapped in brackets (a translation) unwrapped."""
    if not title:
        return ""
    text = html.unescape(html.unescape(str(title)))
    text = _TAG_RE.sub(" ", text)
    return normalise_text(strip_title_notes(text))


_INITIALS_ONLY = re.compile(r"^[A-Z]{1,4}$")


def _split_name(name: str) -> tuple[str, str]:
    """(surname, given names) from "Last, First", "Last FM", "Last F. M." or "First Last"."""
    name = " ".join(name.split()).strip(" ,;")
    if "," in name:
        surname, _, given = name.partition(",")
        return surname, given
    parts = name.split(" ")
    initials = []
    while len(parts) > 1 and _INITIALS_ONLY.match(parts[-1].replace(".", "")):
        initials.insert(0, parts.pop())
    if initials:
        return " ".join(parts), " ".join(initials)
    return parts[-1], " ".join(parts[:-1])


def _initials(given: str) -> str:
    """Initials of given names: "Qing-Jun" and "Q. J." and "QJ" all give "QJ"."""
    plain = unicodedata.normalize("NFKD", given).encode("ascii", "ignore").decode("ascii")
    words = re.findall(r"[A-Za-z]+", plain)
    if len(words) == 1 and words[0].isupper() and len(words[0]) <= 4:
        return words[0]
    return "".join(w[0] for w in words).upper()


@lru_cache(maxsize=1 << 18)
def author_key(name: str) -> str:
    """One author as "surname INITIALS": "Zhai, Q. J." = "Zhai QJ" = "Qing-Jun Zhai"."""
    surname, given = _split_name(str(name))
    surname = normalise_text(surname).replace(" ", "")
    initials = _initials(given)
    return f"{surname} {initials}".strip()


_CORPORATE = re.compile(
    r"\b(?:group|study|studies|consortium|collaborat\w*|investigators|committee|network|"
    r"trialists|trial|society|association|organi[sz]ation|working party|task force|"
    r"centre|center|institute|foundation|council)\b", re.IGNORECASE)


def is_corporate_author(name: str) -> bool:
    """A group author ("ALTS Group", "Cochrane Collaboration"): not a person's name, and
    exports often drop it or replace it with the chair's name."""
    return bool(_CORPORATE.search(str(name)))


#: What exports put in place of the authors they cut: "et al.", "and others", "...".
_TRUNCATION = re.compile(r"^\W*(?:et\.?\s*al\.?|and\s+others|others|\.\.\.|\u2026)\W*$",
                         re.IGNORECASE)


def normalise_authors(authors) -> tuple[str, ...]:
    """Personal authors as "surname INITIALS" keys, from a list or an "A and B" string;
    group authors and the "et al." of a truncated list are left out."""
    if not authors:
        return ()
    if isinstance(authors, str):
        authors = re.split(r"\s+and\s+|;\s*", authors)
    keys = (_person_key(str(a)) for a in authors if a and not _TRUNCATION.match(str(a)))
    return tuple(k for k in keys if k)


@lru_cache(maxsize=1 << 18)
def _person_key(name: str) -> str:
    """author_key of a person; empty for a group author or a blank name."""
    return "" if not name.strip() or is_corporate_author(name) else author_key(name)


_JOURNAL_STOP = {"the", "of", "and", "in", "for", "on", "de", "la", "du", "des", "der",
                 "und", "a", "an"}


@lru_cache(maxsize=65536)
def normalise_journal(journal: str | None) -> str:
    """A journal title as words without "The", "&"/"and", case or punctuation."""
    words = normalise_text(journal).split()
    return " ".join(w for w in words if w not in _JOURNAL_STOP)


@lru_cache(maxsize=65536)
def journals_match(a: str, b: str) -> bool:
    """Whether two normalised journal titles name the same journal, allowing ISO/MEDLINE
    abbreviations ("j clin med" = "journal clinical medicine") and dropped subtitles."""
    if not a or not b:
        return False
    if a == b:
        return True
    wa, wb = a.split(), b.split()
    if len(wa) > len(wb):
        wa, wb = wb, wa
    # Abbreviations keep word order and each word's start; a subtitle or trailing
    # qualifier ("stroke; a journal of cerebral circulation") may be missing.
    if len(wa) == len(wb):
        return all(x.startswith(y) or y.startswith(x) for x, y in zip(wa, wb))
    if wb[:len(wa)] == wa:
        return True
    return _abbreviation_of(wa, wb)


def _abbreviation_of(short: list[str], long: list[str]) -> bool:
    """Every short word is the start of a long word, in order, and the words of `long`
    left over are few (an abbreviation may drop "journal of" but not half the title)."""
    at = 0
    for word in short:
        while at < len(long) and not long[at].startswith(word):
            at += 1
        if at == len(long):
            return False
        at += 1
    return len(long) - len(short) <= 1 and len(short) >= 2


#: Hyphen, non-breaking hyphen, figure dash, en and em dash, minus: all read as "-".
_DASHES = re.compile("[\u2010\u2011\u2012\u2013\u2014\u2212\ufe63\uff0d]")
_PAGE_PART = re.compile(r"^([a-z]*)(\d+)([a-z]*)$")


@lru_cache(maxsize=65536)
def normalise_pages(pages: str | None) -> str:
    """Page range written out: "73-6" = "73-76", "S12-4" = "s12-s14", "e123" kept."""
    if not pages:
        return ""
    text = normalise_text(_DASHES.sub("-", str(pages)))
    parts = text.split()
    if not parts:
        return ""
    start = parts[0]
    if len(parts) == 1:
        return start
    end = parts[1]
    ms, me = _PAGE_PART.match(start), _PAGE_PART.match(end)
    if ms and me:
        prefix, digits, suffix = ms.groups()
        eprefix, edigits, esuffix = me.groups()
        if len(edigits) < len(digits):
            edigits = digits[: len(digits) - len(edigits)] + edigits
        end = f"{eprefix or prefix}{edigits}{esuffix}"
    return start if end == start else f"{start}-{end}"


_PAGE_COUNT = re.compile(r"\d+\s*pp?|pp?\s*\d+")


@lru_cache(maxsize=65536)
def first_page(pages: str | None) -> str:
    """The first page of a range without leading zeros ("0073-76" -> "73"); empty when
    the field holds no page ("Suppl-29", "215 p", a page count)."""
    text = normalise_pages(pages)
    if _PAGE_COUNT.fullmatch(normalise_text(pages)):
        return ""
    match = _PAGE_PART.match(text.split("-")[0])
    if not match:
        return ""
    prefix, digits, suffix = match.groups()
    return f"{prefix}{int(digits)}{suffix}"


_VOLUME_WORD = re.compile(r"^(?:vol|volume|no|issue)\s+")
_LEADING_NUMBER = re.compile(r"^0*(\d+)")
_YEAR = re.compile(r"(1[5-9]\d\d|20\d\d)")


@lru_cache(maxsize=65536)
def normalise_volume(volume) -> str:
    """A volume or issue as its leading number ("Vol. 12" = "12"); empty when it holds
    no number ("(Jul)", "Ph.D.") so that such text never counts as a disagreement."""
    text = normalise_text(str(volume)) if volume is not None else ""
    text = _VOLUME_WORD.sub("", text)
    match = _LEADING_NUMBER.match(text)
    return match.group(1) if match else ""


def normalise_year(year) -> int | None:
    """A four-digit year from an int or text ("2010", "2010 Mar", "2010a"), else None."""
    if year is None:
        return None
    if isinstance(year, int):
        return year if 1500 <= year <= 2099 else None
    match = _YEAR.search(str(year))
    return int(match.group(1)) if match else None
