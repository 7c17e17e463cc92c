"""Sentences of a record, each a verbatim span of its title, abstract or full text.

Structured-abstract labels ("RESULTS: ...") start a new section and are kept out of the
sentence text; abbreviations (e.g., i.e., et al., Dr., Fig.), initials and numbers
(0.05, p < .05) do not end a sentence. Offsets are kept so that every quote taken from a
sentence is a substring of the text it came from.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

#: Words that end in a full stop without ending the sentence (lower case, no final dot).
ABBREVIATIONS = frozenset({
    "e.g", "i.e", "et al", "al", "cf", "vs", "viz", "approx", "ca", "dr", "mr", "mrs", "ms",
    "prof", "fig", "figs", "no", "nos", "vol", "vols", "pp", "p", "eq", "eqs", "ref", "refs",
    "resp", "incl", "esp", "st", "jr", "sr", "dept", "univ", "inc", "ltd", "co", "corp",
    "n.b", "u.s", "u.k", "e.u", "ph.d", "m.d", "b.sc", "m.sc", "jan", "feb", "mar", "apr",
    "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "min", "max", "sd", "approx",
})

# A candidate end: terminal punctuation, optional closing quotes/brackets, then space.
_END = re.compile(r"[.!?]+[\"'”’)\]]*\s+")
#: A sentence starts with a capital or a digit, or with a word like eHealth or mHealth.
_NEXT_STARTS_SENTENCE = re.compile(r"[\"'“‘(\[]?(?:[A-Z0-9]|[a-z][A-Z])")
#: A full stop with no space before a capitalised word ("manage pain.To test"): abstracts
#: whose headings a publisher stripped run their sentences together like this.
_GLUED_END = re.compile(r"(?<=[A-Za-z0-9)\]%])[.!?](?=[A-Z][a-z])")
_GLUED_WORD = re.compile(r"(?:^|[\s(\[])([A-Za-z]+|[0-9]+%?)[)\]]*$")
_WORD_BEFORE = re.compile(r"(\S+?)[.!?]+[\"'”’)\]]*$")

#: "LABEL: " at the start of the text, of a line or after a sentence end; the label is in
#: capitals (BACKGROUND, AIMS AND OBJECTIVES, PATIENT OR PUBLIC CONTRIBUTION).
_LABEL = re.compile(r"(?:^|(?<=\n)|(?<=[.!?]\s)|(?<=[.!?][\"'”’)\]]\s))"
                    r"\s*([A-Z][A-Z0-9 ,&/()\-]{2,60}?):\s+")

#: Headings of structured abstracts as publishers print them without a colon, in title
#: case or capitals, often glued to the text ("BackgroundThere is", "health.MethodsThis"):
#: a closed list, longest first, since a free pattern would cut ordinary sentences.
_HEADINGS = sorted((
    "Background", "Introduction", "Context", "Rationale", "Objective", "Objectives", "Aim",
    "Aims", "Aims and objectives", "Purpose", "Methods", "Method", "Materials and methods",
    "Methods and analysis", "Methods and procedures", "Methods and procedure", "Design",
    "Design, setting, and participants", "Setting", "Participants", "Interventions",
    "Exposures", "Main outcomes and measures", "Results", "Findings", "Results and discussion",
    "Discussion", "Conclusion", "Conclusions", "Conclusions and relevance", "Implications",
    "Limitations", "Importance", "Outcomes and results", "Ethics and dissemination", "Approach",
    "Interpretation", "Lay abstract", "Lay summary", "Scientific abstract",
    "Trial registration", "Funding", "Keywords", "Patient or public contribution",
    "Methods/design", "Methods/Design", "Method/design", "Trial design", "Study design",
    "Summary", "Main text", "Main body", "Main abstract", "Plain language summary",
    "Clinical relevance", "Trial registration number", "Trials registration",
    "Trial funding", "Preliminary conclusions", "Registration",
    "International Registered Report Identifier (IRRID)",
), key=len, reverse=True)
#: The headings, for other stages that show quotes (the report strips one left at an edge).
STRUCTURED_HEADINGS: tuple[str, ...] = tuple(_HEADINGS)
#: A heading at the start of the text or right after a sentence end, optionally after
#: "Abstract", then a capital or digit opening the first sentence (with or without space).
_HEADING = re.compile(
    r"(?:^|(?<=[.!?])|(?<=[.!?]\s)|(?<=[.!?][\"'”’)\]])|(?<=[.!?][\"'”’)\]]\s))"
    r"\s*(?:Abstract\s*)?((?=[A-Z])(?i:"
    + "|".join(re.escape(h).replace(r"\ ", r"\s+").replace("/", r"/\s*") for h in _HEADINGS)
    + r"))(?::\s*|\.\s+(?=[A-Z0-9])|\s*(?=[A-Z0-9]))")
#: "Abstract" alone before the text: a heading of nothing.
_ABSTRACT_WORD = re.compile(r"^\s*Abstract(?::\s*|\s+(?=[A-Z])|(?=[A-Z][a-z]))")

#: Map structured-abstract labels to NLM categories, for the role priors.
_CATEGORY_WORDS = (
    ("BACKGROUND", ("BACKGROUND", "INTRODUCTION", "CONTEXT", "RATIONALE", "PROBLEM")),
    ("OBJECTIVE", ("OBJECTIVE", "AIM", "PURPOSE", "GOAL", "QUESTION", "HYPOTHES")),
    ("METHODS", ("METHOD", "DESIGN", "SETTING", "PARTICIPANT", "SAMPLE", "INTERVENTION",
                 "MEASURE", "ANALYS", "PROCEDURE", "DATA", "SUBJECTS", "APPROACH",
                 "PATIENT OR PUBLIC", "PUBLIC CONTRIBUTION", "INVOLVEMENT")),
    ("ADMIN", ("REGISTRATION", "FUNDING", "ETHICS", "COPYRIGHT", "CONFLICT", "COMPETING")),
    ("RESULTS", ("RESULT", "FINDING", "OUTCOME")),
    ("CONCLUSIONS", ("CONCLUSION", "DISCUSSION", "IMPLICATION", "INTERPRETATION",
                     "LESSONS", "RELEVANCE", "SIGNIFICANCE", "SUMMARY", "LAY ABSTRACT")),
)
_NLM_CATEGORIES = {"BACKGROUND", "OBJECTIVE", "METHODS", "RESULTS", "CONCLUSIONS"}


@dataclass(frozen=True)
class Sentence:
    """One sentence: its verbatim text, where it starts in `source_text`, and its section."""

    text: str
    start: int
    section: str            # title, abstract, abstract:RESULTS, fulltext:discussion
    label: str | None       # structured-abstract label as printed, or None
    category: str | None    # BACKGROUND, OBJECTIVE, METHODS, RESULTS, CONCLUSIONS, ADMIN or None
    source_text: str        # the whole text the sentence is a span of

    @property
    def end(self) -> int:
        return self.start + len(self.text)


def label_category(label: str | None) -> str | None:
    """NLM category of a structured-abstract label ("Aims and objectives" -> OBJECTIVE)."""
    if not label:
        return None
    upper = label.upper()
    if upper in {"RESULTS", "METHODS", "BACKGROUND", "OBJECTIVE", "CONCLUSIONS"}:
        return upper
    for category, words in _CATEGORY_WORDS:
        if any(word in upper for word in words):
            return category
    return None


def _is_sentence_end(text: str, match: re.Match) -> bool:
    after = text[match.end():]
    if not after or not _NEXT_STARTS_SENTENCE.match(after):
        return False
    if "\n" in match.group():
        return True
    word = _WORD_BEFORE.search(text[max(0, match.start() - 40):match.end()].rstrip())
    if word is None:
        return True
    token = word.group(1).lower().lstrip("(\"'“‘[")
    if token in ABBREVIATIONS or token.rstrip(".") in ABBREVIATIONS:
        return False
    # An initial ("A. Smith") or a dotted abbreviation ("U.K.") rarely ends a sentence.
    return not re.fullmatch(r"[a-z]|(?:[a-z]\.)+[a-z]?", token)


def _is_glued_end(text: str, position: int) -> bool:
    """Whether the full stop at `position`, with a capitalised word right after it, ends
    a sentence: the word before it is an ordinary word, not an abbreviation, an initial
    or part of a web address."""
    before = text[max(0, position - 40):position]
    word = _GLUED_WORD.search(before)
    if word is None or (len(word.group(1)) < 2 and not word.group(1).isdigit()):
        return False
    token = before.split()[-1] if before.split() else ""
    return (word.group(1).lower() not in ABBREVIATIONS and "/" not in token
            and "@" not in token and "www" not in token.lower())


def split_spans(text: str, offset: int = 0) -> list[tuple[int, int]]:
    """(start, end) spans of the sentences of `text`, stripped of surrounding space."""
    spans: list[tuple[int, int]] = []
    start = 0
    ends = [(m.start() + len(m.group().rstrip()), m.end()) for m in _END.finditer(text)
            if _is_sentence_end(text, m)]
    ends += [(m.end(), m.end()) for m in _GLUED_END.finditer(text)
             if _is_glued_end(text, m.start())]
    for end, next_start in sorted(ends):
        if end > start:
            spans.append((start, end))
            start = next_start
    spans.append((start, len(text)))
    out = []
    for begin, end in spans:
        chunk = text[begin:end]
        stripped = chunk.strip()
        if stripped:
            lead = len(chunk) - len(chunk.lstrip())
            out.append((offset + begin + lead, offset + begin + lead + len(stripped)))
    return out


def split_sentences(text: str) -> list[str]:
    """The sentences of a plain text, verbatim."""
    return [text[a:b] for a, b in split_spans(text)]


def labelled_blocks(text: str, labels: list[str] | None = None) -> list[tuple[str | None, int, int]]:
    """Split an abstract into (label, start, end) blocks at "LABEL: " markers.

    `labels` (from a record's abstract_sections) lets mixed-case labels such as
    "Patient or Public Contribution:" be found too; capitalised labels are always found.
    """
    markers = [(m.start(), m.end(), m.group(1).strip()) for m in _LABEL.finditer(text)]
    for m in _HEADING.finditer(text):
        if not any(a <= m.start(1) < b for a, b, _ in markers):
            markers.append((m.start(), m.end(), re.sub(r"\s+", " ", m.group(1))))
    if not markers and (word := _ABSTRACT_WORD.match(text)):
        markers.append((word.start(), word.end(), None))
    for label in labels or ():
        for m in re.finditer(rf"(?:^|(?<=\s)){re.escape(label)}:\s+", text):
            if not any(a <= m.start() < b for a, b, _ in markers):
                markers.append((m.start(), m.end(), label))
    markers.sort()
    if not markers:
        return [(None, 0, len(text))]
    blocks = [(None, 0, markers[0][0])] if markers[0][0] > 0 else []
    for index, (_, body_start, label) in enumerate(markers):
        end = markers[index + 1][0] if index + 1 < len(markers) else len(text)
        blocks.append((label, body_start, end))
    return [b for b in blocks if text[b[1]:b[2]].strip()]


def text_sentences(text: str, prefix: str, labels: list[str] | None = None,
                   categories: dict[str, str] | None = None) -> Iterator[Sentence]:
    """Sentences of one text (an abstract or a full-text section), with their sections.
    `categories` maps labels to NLM categories where the record has them."""
    for label, start, end in labelled_blocks(text, labels):
        section = f"{prefix}:{label}" if label else prefix
        category = (categories or {}).get(label) or label_category(label)
        for a, b in split_spans(text[start:end], offset=start):
            yield Sentence(text[a:b], a, section, label, category, text)


def record_sentences(record: dict) -> list[Sentence]:
    """Title and abstract sentences of a record, in reading order."""
    sentences: list[Sentence] = []
    title = record.get("title") or ""
    if title.strip():
        lead = len(title) - len(title.lstrip())
        sentences.append(Sentence(title.strip(), lead, "title", None, "TITLE", title))
    abstract = record.get("abstract") or ""
    parts = [s for s in record.get("abstract_sections") or [] if s.get("label")]
    categories = {s["label"]: s["nlm_category"].upper() for s in parts
                  if (s.get("nlm_category") or "").upper() in _NLM_CATEGORIES}
    sentences.extend(text_sentences(abstract, "abstract", [s["label"] for s in parts], categories))
    return sentences
