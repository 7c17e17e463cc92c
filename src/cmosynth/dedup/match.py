"""Deciding whether two records are the same publication: guards first, then named rules.

A pair is a duplicate only when a named rule accepts it (its name goes into
`dup_rule`) and no guard objects. Guards protect against the false merges reviewers
fear most: an erratum, comment or retraction notice merged into the article it is
about, a conference abstract into the full paper, a protocol into the results, part 1
into part 2, or two "Editorial"s of one journal. A guarded pair whose titles are
otherwise alike goes to the reviewer instead.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from rapidfuzz import fuzz

from cmosynth.dedup.normalise import (first_page, journals_match, normalise_authors,
                                      normalise_journal, normalise_pages, normalise_text,
                                      normalise_title, normalise_volume, normalise_year,
                                      strip_title_notes)

DUPLICATE, REVIEW, DISTINCT = "duplicate", "review", "distinct"


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The similarities the rules ask for. The defaults are bench/dedup.py's choice on
    every labelled set (no false merge, best mean sensitivity, then the strictest); the
    figures it reports for each set come from a choice made without that set."""

    #: Title similarity (0-1) from which a pair with no other evidence goes to review.
    review: float = 0.85
    #: A shared DOI or PMID identifies one work only when the titles are this alike.
    identifier_title: float = 0.95
    #: Titles this alike count as the same title for the strict rules.
    same_title: float = 0.99
    #: Titles this alike may join records that agree on authors, journal, year and page.
    fuzzy_title: float = 0.90
    #: Share of the shorter author list found in the other for authors to agree.
    author_overlap: float = 0.67
    #: Titles less alike than this are different papers: no chain of links may put
    #: them in one cluster.
    different_title: float = 0.6


DEFAULT_THRESHOLDS = Thresholds()

#: What agreed when each rule linked a pair, for the report and the log.
RULE_DESCRIPTIONS = {
    "pmid": "same PMID, titles alike",
    "doi": "same DOI, titles alike",
    "title+year+pages": "same title, year and first page",
    "title+authors+journal": "same title, authors and journal",
    "fuzzy_title+authors+journal": "near title; same authors, journal, year and page or volume",
    "title+authors+year": "same title, authors and year",
    "title+journal+volume": "same title, journal, year and volume; no authors to compare",
    "title_start+journal+volume+pages": "one title the other's start; same authors, journal, "
                                        "volume and page",
    "title+authors+journal_issue": "same title and authors in one journal issue; a page typo",
    "long_title+journal+year": "same long title, journal and year; no authors to compare",
    "reviewer": "a reviewer's decision",
}
REVIEW_SIMILARITY = DEFAULT_THRESHOLDS.review

#: What may follow a notice's lead word: "Erratum:", "Correction to", "Reply - ".
def _after_lead(words: str) -> str:
    """What may follow a notice's lead word: punctuation ("Erratum:", "Reply - "), one of
    `words` ("Correction to"), or the end of the title."""
    return rf"\b\s*(?:[:\-\u2013\u2014.]|(?:{words})\b|$)"

_NOTICE_PATTERNS = {
    "erratum": re.compile(
        r"\b(?:errat(?:um|a)|corrigend(?:um|a))\b|[\[(](?:correction|erratum)[\])]"
        r"|^\W*(?:correction|corrections|published erratum|author correction|"
        r"publisher correction)" + _after_lead("to|for|in|notice")),
    "retraction": re.compile(
        r"^\W*(?:notice of retraction|retraction notice|retraction|expression of concern)"
        + _after_lead("to|of|for|notice") + r"|[\[(]retraction[\])]|\bretraction notice\b"),
    "comment": re.compile(
        r"^\W*(?:responses?|authors'? response)\s*(?:[:\-\u2013\u2014.]|$)"
        r"|^\W*(?:comments?|commentary|re|letter|letters|reply|replies|"
        r"in reply|author'?s'? reply|authors'? reply|rebuttal|"
        r"letter to the editor|editorial comment|invited commentary)"
        + _after_lead("to|on|regarding|from|re")
        + r"|\b(?:comment on|reply to|response to the letter|letter to the editor|"
        r"in response to)\b"),
    "protocol": re.compile(
        r"\b(?:study protocol|trial protocol|protocol for|protocol of|a protocol|the protocol"
        r"|rationale and design|design and rationale|rationale, design|protocol and "
        r"statistical analysis plan|statistical analysis plan)\b"),
    "follow_up": re.compile(
        r"\b(?:long[- ]term follow[- ]up|follow[- ]up (?:study|results|report|analysis)|"
        r"extension study|post[- ]hoc analysis|secondary analysis|subgroup analysis|"
        r"\d+[- ](?:year|month|week)s? (?:follow[- ]up|results|outcomes))\b"),
}
_TYPE_KINDS = {
    "published erratum": "erratum", "erratum": "erratum", "correction": "erratum",
    "retraction of publication": "retraction", "retraction notice": "retraction",
    "comment": "comment", "letter": "comment", "editorial": "comment",
    "congress": "conference", "meeting abstract": "conference",
    "conference abstract": "conference", "conference paper": "conference",
    "conference review": "conference", "clinical trial protocol": "protocol",
}
#: Journal-field words of meeting abstracts and theses, matched by their first letters so
#: that abbreviated journal titles ("Diss Abst Int", "Conf Proc") are flagged alike.
_CONFERENCE_JOURNAL = re.compile(r"\b(?:abst|meet|congr|conf|symp)")
_GENERIC_TITLES = {
    "editorial", "introduction", "reply", "in reply", "response", "authors reply",
    "author reply", "letter", "letter to the editor", "letters to the editor", "comment",
    "commentary", "erratum", "errata", "correction", "corrigendum", "preface", "foreword",
    "in memoriam", "obituary", "book review", "book reviews", "news", "abstracts",
    "abstract", "index", "contents", "table of contents", "discussion", "conclusion",
    "conclusions", "summary", "announcement", "announcements", "acknowledgements",
    "acknowledgments", "highlights", "case report", "untitled", "no title",
    "editors note", "editor s note", "guest editorial", "retraction", "notice of retraction",
    "expression of concern", "retraction notice", "reviewers", "thank you to our reviewers",
}
#: Titles shorter than this many words need more than a title to be merged.
_SHORT_TITLE_WORDS = 4
_NUMBER_WORDS = {"one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
                 "seven": "7", "eight": "8", "nine": "9", "ten": "10", "twelve": "12"}
_ROMAN = {"i": "1", "ii": "2", "iii": "3", "iv": "4", "v": "5", "vi": "6", "vii": "7",
          "viii": "8", "ix": "9", "x": "10"}
_SERIES_WORDS = {"part", "phase", "type", "stage", "grade", "series", "study", "trial",
                 "section", "chapter", "paper", "report"}


@dataclass(slots=True)
class Features:
    """What the matcher compares for one record, computed once."""

    index: int
    record_id: str
    pmid: str
    doi: str
    title: str
    surnames: tuple[str, ...]
    authors: list
    journal: str
    year: int | None
    volume: str
    issue: str
    page: str
    pages: str
    kinds: frozenset[str]
    type_kinds: frozenset[str] | None
    numbers: frozenset[str]
    generic: bool


#: Words without which no notice pattern can match: most titles skip the patterns.
_NOTICE_HINT = re.compile(
    r"errat|corrig|correct|retract|concern|comment|\bre\b|letter|repl|respons|rebuttal|"
    r"protocol|rationale|analysis plan|follow|extension|post[- ]hoc|secondary|subgroup")


def _kinds(raw_title: str, journal: str) -> frozenset[str]:
    """Notice kinds the title or journal field shows (erratum, comment, conference...)."""
    kinds = set()
    if _NOTICE_HINT.search(raw_title):
        kinds = {kind for kind, pattern in _NOTICE_PATTERNS.items()
                 if pattern.search(raw_title)}
    if _CONFERENCE_JOURNAL.search(journal):
        kinds.add("conference")
    return frozenset(kinds)


def _type_kinds(publication_types) -> frozenset[str] | None:
    """Notice kinds the publication types show; None when the export gives no types, so
    that only two records that both carry types are compared on them."""
    if not publication_types:
        return None
    return frozenset(kind for ptype in publication_types
                     if (kind := _TYPE_KINDS.get(str(ptype).strip().lower())))


_DIGITS = re.compile(r"\d+")
_NUMBER_HINT = re.compile(r"\b(?:" + "|".join(sorted(_NUMBER_WORDS) + sorted(_SERIES_WORDS))
                          + r")\b")


def _title_numbers(words: tuple[str, ...]) -> frozenset[str]:
    """Numbers a title carries ("Part II", "phase 3", "5-year", "two"), as digits.

    Digit runs are read with the spaces removed, so "CO 2" = "CO2" and "2,916" = "2916".
    """
    found = {str(int(run)) for run in _DIGITS.findall("".join(words))}
    if not _NUMBER_HINT.search(" ".join(words)):
        return frozenset(found)
    for at, word in enumerate(words):
        if word in _NUMBER_WORDS:
            found.add(_NUMBER_WORDS[word])
        elif at and words[at - 1] in _SERIES_WORDS and word in _ROMAN:
            found.add(_ROMAN[word])
        elif at and words[at - 1] in _SERIES_WORDS and len(word) == 1:
            found.add(word)
    return frozenset(found)


def features(index: int, record: dict) -> Features:
    """Normalise one record's matching fields."""
    raw = strip_title_notes(html.unescape(str(record.get("title") or ""))).lower().strip()
    title = normalise_title(record.get("title"))
    words = tuple(title.split())
    journal = normalise_journal(record.get("journal"))
    generic = title in _GENERIC_TITLES or len(words) < _SHORT_TITLE_WORDS
    authors = normalise_authors(record.get("authors"))
    return Features(
        index=index, record_id=record["record_id"], pmid=str(record.get("pmid") or ""),
        doi=str(record.get("doi") or ""), title=title,
        surnames=tuple(a.split(" ")[0] for a in authors),
        authors=record.get("authors") or [], journal=journal,
        year=normalise_year(record.get("year")), volume=normalise_volume(record.get("volume")),
        issue=normalise_volume(record.get("issue")), page=first_page(record.get("pages")),
        pages=normalise_pages(record.get("pages")),
        kinds=_kinds(raw, journal), type_kinds=_type_kinds(record.get("publication_types")),
        numbers=_title_numbers(words), generic=generic,
    )


def author_words(authors) -> frozenset[str]:
    """Every name word of every author, whole surnames and adjacent words joined, so a
    surname is found even when an export put it in the given-name place ("Ching-yi,
    Wu") or split it ("ASCUS-LSIL")."""
    if isinstance(authors, str):
        authors = [authors]
    words = set()
    for name in authors or ():
        for part in str(name).split(","):
            part_words = [w for w in normalise_text(part).split() if len(w) > 1]
            words.update(part_words)
            words.update(x + y for x, y in zip(part_words, part_words[1:]))
    return frozenset(words)


@dataclass(slots=True, frozen=True)
class Verdict:
    """The outcome for one pair: a decision, the rule or guard behind it, and a score."""

    decision: str
    rule: str
    score: float
    reason: str = ""


def title_similarity(a: Features, b: Features) -> float:
    """0-1: the better of token-sort and plain edit similarity of the normalised titles;
    a title that is the other's start (a dropped subtitle) counts as 0.95."""
    if not a.title or not b.title:
        return 0.0
    if a.title == b.title:
        return 1.0
    score = max(fuzz.token_sort_ratio(a.title, b.title), fuzz.ratio(a.title, b.title)) / 100
    short, long = sorted((a.title.split(), b.title.split()), key=len)
    if len(short) >= 6 and long[:len(short)] == short:
        score = max(score, 0.95)
    return score


def author_overlap(a: Features, b: Features) -> float | None:
    """Share of the shorter author list whose surnames appear among the other's names;
    None if either list is missing."""
    if not a.surnames or not b.surnames:
        return None
    if len(a.surnames) > len(b.surnames):
        a, b = b, a
    others = set(b.surnames)
    overlap = sum(1 for s in a.surnames if s in others) / len(a.surnames)
    if overlap >= 0.5:
        return overlap
    # Exports that swap or split names: look surnames up among all the other's name words.
    words_a, words_b = author_words(a.authors), author_words(b.authors)
    found_a = sum(1 for s in a.surnames if s in words_b)
    found_b = sum(1 for s in b.surnames if s in words_a)
    return max(overlap, min(max(found_a, found_b) / len(a.surnames), 1.0))


def _page_shape(page: str) -> str:
    return page.rstrip("0123456789")[:1] if page[:1].isalpha() else ""


def pages_conflict(a: Features, b: Features) -> bool:
    """Both give a first page of the same kind and they differ. An article number
    ("e12724", "a1754") and a printed page ("1") are not comparable, and a single page
    inside the other's range ("569" vs "567-569": the last page exported) agrees."""
    if not (a.page and b.page and a.page != b.page):
        return False
    if _page_shape(a.page) != _page_shape(b.page):
        return False
    return not (_page_in_range(a, b) or _page_in_range(b, a))


def _page_in_range(single: Features, ranged: Features) -> bool:
    if "-" in single.pages or "-" not in ranged.pages:
        return False
    start, _, end = ranged.pages.partition("-")
    digits = [re.sub(r"\D", "", x) for x in (single.pages, start, end)]
    if not all(digits):
        return False
    page, low, high = map(int, digits)
    return low <= page <= high


def _field_conflicts(a: Features, b: Features, similarity: float = 0.0) -> list[str]:
    """Bibliographic details that both records give and that disagree."""
    conflicts = []
    if a.year and b.year and abs(a.year - b.year) > 1:
        conflicts.append(f"years differ ({a.year} vs {b.year})")
    if a.volume and b.volume and a.volume != b.volume:
        conflicts.append(f"volumes differ ({a.volume} vs {b.volume})")
    if pages_conflict(a, b) and not _same_issue_same_work(a, b, similarity):
        conflicts.append(f"first pages differ ({a.page} vs {b.page})")
    overlap = author_overlap(a, b)
    if overlap is not None and overlap == 0:
        conflicts.append("no author in common")
    return conflicts


def _same_issue_same_work(a: Features, b: Features, similarity: float) -> bool:
    """Near-identical title and authors in the same journal issue: a page typo, since
    one issue never prints one work twice under different pages."""
    overlap = author_overlap(a, b)
    return bool(similarity >= 0.98 and overlap is not None and overlap >= 0.8
                and a.issue and a.issue == b.issue and a.volume and a.volume == b.volume
                and a.year and a.year == b.year and journals_match(a.journal, b.journal))


def _kind_guard(a: Features, b: Features) -> str:
    differing = a.kinds ^ b.kinds
    if a.type_kinds is not None and b.type_kinds is not None:
        differing |= a.type_kinds ^ b.type_kinds
    if "conference" in differing and (_same_printed_item(a, b)
                                      or not (a.journal and b.journal)):
        # One export names the meeting in the journal field and the other does not, or
        # one has no journal field to tell.
        differing = differing - {"conference"}
    if not differing:
        return ""
    kind = sorted(differing)[0]
    labels = {"erratum": "erratum", "retraction": "retraction notice",
              "comment": "comment/reply/letter", "conference": "conference abstract",
              "protocol": "protocol", "follow_up": "follow-up or secondary analysis"}
    return f"{labels[kind]} vs a record that is not one"


def _guards(a: Features, b: Features, ids_match: bool, similarity: float) -> list[str]:
    """Reasons this pair must not be merged automatically."""
    reasons = []
    kind = _kind_guard(a, b)
    if kind:
        reasons.append(kind)
    # A DOI or PMID shared by a title and its own longer form (a subtitle, or subject
    # codes an export appended) identifies one work whatever numbers the tail carries.
    if a.numbers != b.numbers and a.title and b.title and not (
            ids_match and _title_is_start_of_other(a, b)):
        reasons.append("titles carry different numbers (part, phase, type or count)")
    if ids_match:
        return reasons
    reasons += _field_conflicts(a, b, similarity)
    if a.year and b.year and abs(a.year - b.year) == 1 and not _same_printed_item(a, b):
        reasons.append(f"years differ by one ({a.year} vs {b.year}) without matching "
                       "journal, volume and pages")
    if similarity < 1.0 and not _same_volume_and_page(a, b):
        word = _unmatched_word(a, b)
        if word:
            reasons.append(f"titles differ by the word {word!r} without matching volume "
                           "and page")
    if (a.generic or b.generic) and not _same_issue_and_authors(a, b):
        reasons.append("short or generic title without matching journal, year, volume, "
                       "page and first author")
    return reasons


_TITLE_STOP_WORDS = frozenset(
    "a an the of in on at to for and or with by from as is are was were be vs versus "
    "its their this that".split())


def _same_volume_and_page(a: Features, b: Features) -> bool:
    return bool(a.volume and a.volume == b.volume and a.page and a.page == b.page)


def _unmatched_word(a: Features, b: Features) -> str:
    """A content word of one title with no look-alike in the other ("men" vs "women",
    "adults" vs "children"): such titles name different studies however similar the rest.
    Typos, spelling variants, joined or split words and a dropped subtitle are matched."""
    words_a, words_b = a.title.split(), b.title.split()
    short, long = sorted((words_a, words_b), key=len)
    if long[:len(short)] == short:
        return ""
    only_a = set(words_a) - set(words_b) - _TITLE_STOP_WORDS
    only_b = set(words_b) - set(words_a) - _TITLE_STOP_WORDS
    joined_a, joined_b = "".join(words_a), "".join(words_b)
    for word, others, joined in [(w, only_b, joined_b) for w in sorted(only_a)] + \
            [(w, only_a, joined_a) for w in sorted(only_b)]:
        if word in joined or any(fuzz.ratio(word, other) >= 80 for other in others):
            continue
        return word
    return ""


def _same_printed_item(a: Features, b: Features) -> bool:
    """Same journal and volume, and first pages that agree (or one is missing): the
    same printed item even if the year (online vs print) or a meeting note differs."""
    return bool(a.volume and a.volume == b.volume and (a.page or b.page)
                and not pages_conflict(a, b) and journals_match(a.journal, b.journal))


def _same_issue_and_authors(a: Features, b: Features) -> bool:
    """Enough to merge a short or generic title: same journal, year and first author,
    the same volume or first page, and no disagreeing volume, issue or page."""
    return bool(a.journal and journals_match(a.journal, b.journal) and a.year == b.year
                and a.surnames and b.surnames and a.surnames[0] == b.surnames[0]
                and ((a.volume and a.volume == b.volume) or (a.page and a.page == b.page))
                and not (a.volume and b.volume and a.volume != b.volume)
                and not (a.issue and b.issue and a.issue != b.issue)
                and not pages_conflict(a, b))


def titles_disagree(a: Features, b: Features, floor: float,
                    similarity: float | None = None) -> bool:
    """Both records have a title, and the titles are less alike than `floor` without one
    being the other's start: whatever else agrees, they name different papers."""
    if not (a.title and b.title):
        return False
    if similarity is None:
        similarity = title_similarity(a, b)
    return similarity < floor and not _title_is_start_of_other(a, b)


def compare(a: Features, b: Features, thresholds: Thresholds = DEFAULT_THRESHOLDS) -> Verdict:
    """Decide one pair: duplicate under a named rule, review with a reason, or distinct."""
    similarity = title_similarity(a, b)
    if (a.pmid and b.pmid and a.pmid != b.pmid) or (a.doi and b.doi and a.doi != b.doi):
        if similarity >= thresholds.review and not _field_conflicts(a, b):
            which = "PMIDs" if a.pmid and b.pmid and a.pmid != b.pmid else "DOIs"
            return Verdict(REVIEW, "different_identifiers", similarity,
                           f"different {which} but similar records")
        return Verdict(DISTINCT, "different_identifiers", similarity)
    id_rule = "pmid" if a.pmid and a.pmid == b.pmid else "doi" if a.doi and a.doi == b.doi else ""
    if not id_rule and similarity < thresholds.review and not _title_is_start_of_other(a, b):
        return Verdict(DISTINCT, "", similarity)
    # A shared identifier is strong evidence only when the titles agree too: a
    # supplement's DOI or a mistyped PMID joins different papers.
    if id_rule and titles_disagree(a, b, thresholds.identifier_title, similarity):
        return Verdict(REVIEW, id_rule, similarity,
                       f"same {id_rule.upper()} but different titles")
    guards = _guards(a, b, bool(id_rule), similarity)
    if guards:
        if similarity >= thresholds.review or id_rule:
            return Verdict(REVIEW, id_rule or "guard", similarity, "; ".join(guards))
        return Verdict(DISTINCT, "guard", similarity, "; ".join(guards))
    if id_rule:
        return Verdict(DUPLICATE, id_rule, 1.0)
    rule = _matching_rule(a, b, similarity, thresholds)
    if rule:
        return Verdict(DUPLICATE, rule, similarity)
    if similarity >= thresholds.review:
        return Verdict(REVIEW, "similar_title", similarity,
                       "similar titles but too little agreement in other fields")
    return Verdict(DISTINCT, "", similarity)


#: Words from which an identical title with nothing but year and journal to go on is one
#: paper's: short titles recur ("Annual report 2019"), long ones do not.
_LONG_TITLE_WORDS = 8


def _matching_rule(a: Features, b: Features, similarity: float,
                   thresholds: Thresholds = DEFAULT_THRESHOLDS) -> str:
    """The first named rule that accepts the pair (no guard objected), or ""."""
    same_year = a.year is not None and a.year == b.year
    same_page = bool(a.page) and a.page == b.page
    same_volume = bool(a.volume) and a.volume == b.volume
    journal_ok = journals_match(a.journal, b.journal)
    overlap = author_overlap(a, b)
    authors_ok = overlap is not None and overlap >= thresholds.author_overlap
    same_title = similarity >= thresholds.same_title
    if pages_conflict(a, b):
        return "title+authors+journal_issue" if _same_issue_same_work(a, b, similarity) else ""
    if same_title and same_year and same_page and (authors_ok or journal_ok):
        return "title+year+pages"
    if similarity >= 0.95 and authors_ok and journal_ok and (same_year or same_volume):
        return "title+authors+journal"
    if similarity >= thresholds.fuzzy_title and authors_ok and journal_ok and same_year \
            and (same_page or same_volume):
        return "fuzzy_title+authors+journal"
    journal_unknown = not (a.journal and b.journal)
    if same_title and overlap is not None and overlap >= 0.8 and same_year and (
            same_page or same_volume or journal_unknown):
        return "title+authors+year"
    if same_title and overlap is None and same_year and same_volume and journal_ok:
        return "title+journal+volume"
    if _title_is_start_of_other(a, b) and authors_ok and same_page and same_volume \
            and journal_ok:
        return "title_start+journal+volume+pages"
    if a.title == b.title and len(a.title.split()) >= _LONG_TITLE_WORDS and same_year \
            and journal_ok and overlap is None and not _field_conflicts(a, b):
        return "long_title+journal+year"
    return ""


def _title_is_start_of_other(a: Features, b: Features) -> bool:
    """One title is the other's opening words (a subtitle dropped), three words at least."""
    short, long = sorted((a.title.split(), b.title.split()), key=len)
    return len(short) >= 3 and long[:len(short)] == short
