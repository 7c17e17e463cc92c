"""Linking coded sentences of one record into CMO configurations (CMOCs).

Every role the coder gives a sentence is an element, named by the codebook concepts its
quote mentions or, when it mentions none, *uncoded* (no concept ids, the quote kept): the
reviewer codes it, or it points to a concept the codebook lacks. Each element anchors a
configuration with the nearest element of each other role in the same text (title,
abstract, or one full-text paragraph); the farther apart, the lower the configuration's
confidence. So every coded sentence is evidence in at least one CMOC whenever its text
holds a second role. Where a causal connective splits a sentence ("X enabled Y", "Y
through X", "When X, Y"), each element quotes its own clause, and one sentence may stand
for two elements of a CMOC. Otherwise one quote stands for one element only: a sentence
given two roles without clauses to tell them apart is the element of its most confident
role, and the CMOC's other elements come from other sentences. Every quote is a verbatim substring of the record's title, abstract or full
text: this is checked here, and a quote that fails the check is never emitted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from cmosynth.extract.codebook import ROLES, Codebook, Theory
from cmosynth.extract.roles import (BACKWARD_CAUSAL, CONDITIONAL_OPENING, FORWARD_CAUSAL,
                                    STRONG_FORWARD)
from cmosynth.extract.sentences import Sentence

#: How fast a configuration's confidence falls with the distance (in sentences) between
#: its elements: it is divided by 1 + DISTANCE_PENALTY x the distance. Elements of one
#: abstract may be far apart (a context stated in the background, the outcome it shapes in
#: the results), so distance lowers confidence but never rules a link out.
DISTANCE_PENALTY = 0.15


@dataclass(frozen=True)
class Element:
    """One element: a role, its concept ids (none: uncoded) and its verbatim quote."""

    role: str
    concepts: tuple[str, ...]
    quote: str
    sentence_index: int
    section: str
    confidence: float
    span: tuple[int, int] = (0, 0)      # where the quote stands in its sentence


@dataclass
class CodedSentence:
    """A sentence with its roles (role -> confidence) and the concepts found in it."""

    sentence: Sentence
    roles: dict[str, float]
    elements: dict[str, Element] = field(default_factory=dict)
    #: Concept ids a reviewer gave the sentence; None: the codebook's cues decide.
    concepts: frozenset[str] | None = None


def clause_spans(text: str) -> dict[str, tuple[int, int]]:
    """Clauses of a sentence by role, where a connective makes the split clear.

    "When X, Y"      -> context X, rest Y (mechanism and outcome then split further)
    "X enabled Y"    -> mechanism X, outcome Y (in a chain "X built Y, which led to Z"
                        the last explicit link splits: mechanism "X built Y", outcome Z)
    "Y through X"    -> outcome Y, mechanism X
    """
    spans: dict[str, tuple[int, int]] = {}
    start = 0
    opening = CONDITIONAL_OPENING.match(text)
    if opening:
        spans["context"] = (0, opening.end() - 1)
        start = opening.end()
    rest = text[start:]
    explicit = list(STRONG_FORWARD.finditer(rest))
    forward = explicit[-1] if explicit else FORWARD_CAUSAL.search(rest)
    backward = BACKWARD_CAUSAL.search(rest)
    if forward and (not backward or forward.start() <= backward.start()) and forward.start() > 3:
        spans["mechanism"] = (start, start + forward.start())
        spans["outcome"] = (start + forward.start(), len(text))
    elif backward and backward.start() > 3:
        spans["outcome"] = (start, start + backward.start())
        spans["mechanism"] = (start + backward.start(), len(text))
    trimmed = {role: _trim(text, a, b) for role, (a, b) in spans.items()}
    return {role: span for role, span in trimmed.items() if span}


#: Words that carry no content of their own: a clause made mostly of them ("Despite this",
#: "This is achieved") points elsewhere and cannot stand as evidence alone.
FUNCTION_WORDS = frozenset(
    "a an the this that these those it its they them their there here such which who whom "
    "is are was were be been being has have had do does did can could may might will would "
    "of in on at to for from with by as and or but not no despite although though during "
    "when where while whereas if unless given among amongst within".split())
#: What a clause needs to be quoted instead of its whole sentence.
MIN_CLAUSE_WORDS = 4
MIN_CLAUSE_CONTENT_WORDS = 2
_WORD = re.compile(r"[\w'’-]+")


def _trim(text: str, a: int, b: int) -> tuple[int, int] | None:
    """The clause text[a:b] without its edge punctuation, or None when it is too slight to
    quote alone (the whole sentence is quoted then)."""
    chunk = text[a:b]
    left = len(chunk) - len(chunk.lstrip(" ,;:–—-"))
    right = len(chunk.rstrip(" ,;:–—-."))
    words = _WORD.findall(chunk)
    content = [w for w in words if w.lower() not in FUNCTION_WORDS]
    if right - left < 12 or len(words) < MIN_CLAUSE_WORDS \
            or len(content) < MIN_CLAUSE_CONTENT_WORDS:
        return None
    return a + left, a + right


#: Finds concepts of a role in a text when no cue matches (e.g. by embedding similarity).
ConceptFallback = Callable[[str, str], tuple[str, ...]]


def code_elements(coded: CodedSentence, index: int, codebook: Codebook,
                  fallback: ConceptFallback | None = None) -> dict[str, Element]:
    """The elements of one sentence, one per role it was given: the clause quoting the
    role (or the whole sentence) and the codebook concepts found there. A clause is
    quoted when it names the role's concepts, or when the sentence names none (an
    uncoded element then quotes no more than it must)."""
    text = coded.sentence.text
    clauses = clause_spans(text) if len(coded.roles) > 1 else {}
    elements = {}
    for role, confidence in coded.roles.items():
        span = (0, len(text))
        if coded.concepts is not None:   # the reviewer's concepts: the role's clause quoted
            span = clauses.get(role, span)
            concepts = tuple(c.id for c in codebook.concepts_for(role) if c.id in coded.concepts)
            elements[role] = Element(role, concepts, text[span[0]:span[1]], index,
                                     coded.sentence.section, confidence, span)
            continue
        concepts = _concepts_in(text, role, codebook)
        if not concepts and fallback is not None:
            concepts = fallback(text, role)
        if role in clauses:
            a, b = clauses[role]
            in_clause = _concepts_in(text[a:b], role, codebook)
            if in_clause or not concepts:
                span, concepts = (a, b), in_clause
        if len(coded.roles) > 1 and concepts:
            span = _contrasted_part(text, span, role, codebook) or span
        quote = text[span[0]:span[1]]
        assert_verbatim(quote, coded.sentence.source_text)
        elements[role] = Element(role, concepts, quote, index, coded.sentence.section, confidence,
                                 span)
    return elements


#: "X, but Y", "X; however, Y", "X, whereas Y": two parts that may carry different roles.
CONTRAST = re.compile(r"[,;]\s+(?:but|yet|whereas|while|although|though|however,?)\s+",
                      re.IGNORECASE)


def _contrasted_part(text: str, span: tuple[int, int], role: str, codebook: Codebook
                     ) -> tuple[int, int] | None:
    """Within a quote that a contrast splits ("Institutional risk aversion slowed the
    work, but a shared purpose ... helped"), the one part naming the role's concepts."""
    a, b = span
    match = CONTRAST.search(text, a, b)
    if match is None:
        return None
    parts = [p for p in (_trim(text, a, match.start()), _trim(text, match.end(), b)) if p]
    naming = [p for p in parts if _concepts_in(text[p[0]:p[1]], role, codebook)]
    return naming[0] if len(naming) == 1 else None


def _concepts_in(text: str, role: str, codebook: Codebook) -> tuple[str, ...]:
    return tuple(c.id for c in codebook.concepts_for(role) if c.mentioned_in(text))


def assert_verbatim(quote: str, source_text: str) -> None:
    """The evidence guarantee: a quote must be a substring of the text it came from."""
    if not quote or quote not in source_text:
        raise AssertionError(f"quote is not verbatim in its source text: {quote[:80]!r}")


@dataclass(frozen=True)
class Configuration:
    """A CMOC: at least two of context, mechanism and outcome."""

    elements: dict[str, Element]
    confidence: float

    @property
    def section(self) -> str:
        anchor = self.elements.get("outcome") or self.elements.get("mechanism") \
            or self.elements["context"]
        return anchor.section

    def concept_ids(self) -> frozenset[str]:
        return frozenset(c for e in self.elements.values() for c in e.concepts)

    @property
    def shares_a_sentence(self) -> bool:
        """Whether two of its elements are clauses of one sentence."""
        indices = [e.sentence_index for e in self.elements.values()]
        return len(set(indices)) < len(indices)

    def key(self) -> tuple:
        return tuple((r, self.elements[r].quote if r in self.elements else "") for r in ROLES)


def link_configurations(coded: list[CodedSentence], codebook: Codebook,
                        fallback: ConceptFallback | None = None) -> list[Configuration]:
    """CMOCs of one text: each sentence's elements joined with the nearest element of
    every other role in the same text (title, abstract or full-text paragraph), when that
    makes two or more elements; configurations with the same quotes are given once."""
    for index, item in enumerate(coded):
        item.elements = code_elements(item, index, codebook, fallback)
    configurations: dict[tuple, Configuration] = {}
    for index, item in enumerate(coded):
        if not item.elements:
            continue
        elements: dict[str, Element] = {}
        for role, element in sorted(item.elements.items(),
                                    key=lambda pair: (-pair[1].confidence, ROLES.index(pair[0]))):
            if _separate(element, elements.values()):
                elements[role] = element
        for role in ROLES:
            if role not in elements:
                nearest = next((e for e in _by_distance(coded, index, role)
                                if _separate(e, elements.values())), None)
                if nearest is not None:
                    elements[role] = nearest
        if len(elements) >= 2:
            config = Configuration(elements, _confidence(elements, index))
            configurations.setdefault(config.key(), config)
    return list(configurations.values())


def _separate(element: Element, taken: Iterable[Element]) -> bool:
    """Whether `element` may join a CMOC beside `taken`: from another sentence, or from the
    same sentence as a clause apart from theirs (the quotes do not overlap)."""
    a, b = element.span
    return all(other.sentence_index != element.sentence_index
               or b <= other.span[0] or other.span[1] <= a
               for other in taken)


def _by_distance(coded: list[CodedSentence], index: int, role: str) -> Iterator[Element]:
    """Elements of `role` in the same text, closest first, earlier sentences first at
    equal distance (contexts and mechanisms are usually stated before the outcomes they
    explain)."""
    source = coded[index].sentence.source_text
    for distance in range(1, len(coded)):
        for other in (index - distance, index + distance):
            if 0 <= other < len(coded) and coded[other].sentence.source_text is source:
                element = coded[other].elements.get(role)
                if element is not None:
                    yield element


def _confidence(elements: dict[str, Element], anchor: int) -> float:
    mean = sum(e.confidence for e in elements.values()) / len(elements)
    spread = max(abs(e.sentence_index - anchor) for e in elements.values())
    completeness = 1.0 if len(elements) == 3 else 0.9
    return round(max(0.0, min(1.0, mean * completeness / (1 + DISTANCE_PENALTY * spread))), 3)


def best_theory(concepts: frozenset[str], theories: tuple[Theory, ...]) -> Theory | None:
    """The programme theory sharing most concepts with a configuration (ties: the one whose
    concepts are most covered, then the first listed); None if fewer than two are shared."""
    best, best_key = None, (0, 0.0)
    for theory in theories:
        shared = len(concepts & theory.concept_ids)
        key = (shared, shared / len(theory.concept_ids))
        if shared >= 2 and key > best_key:
            best, best_key = theory, key
    return best
