"""Realist roles of sentences: context, mechanism, outcome (several allowed, usually none).

Each sentence is described by the evidence a realist reviewer looks for: codebook concept
cues, the structured-abstract section it sits in (aims and methods rarely carry roles;
results and conclusions often do), causal and conditional language ("enabled",
"led to", "through", "when", "among") and aim or method phrasing. Rules weigh that
evidence (`rules-v1`). The lexical model (`model-v3`) is a logistic regression per role
over the sentence's word and character n-grams, that evidence (as pseudo-words) and its
place in the abstract, its probabilities blended with the rules'; it is trained at run
time, deterministically, on the project's labelled sentences (package data; where an
abstract was labelled twice, a role either annotator gave counts) and on the reviewer's
own coding. The shipped coder (`transformer`, the default) blends it with the fine-tuned
MiniLM shipped as ONNX (`encoder.EncoderRoles`), at the share and threshold that
bench/train_coder.py chose leaving one kind of text out: sentence-role macro F1 0.47 on a
kind of text it was not trained on (lexical 0.41), 0.54 on kinds it knows.
"""

from __future__ import annotations

import copy
import logging
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from cmosynth.extract.codebook import ROLES, Codebook
from cmosynth.extract.sentences import label_category
from cmosynth.files import read_jsonl

log = logging.getLogger("cmosynth.extract.roles")

RULES_METHOD = "rules-v1"
#: In `method` when the model also learnt from the reviewer's coding (with its sentence count).
REVIEWER_TRAINED = "reviewer-trained"

_WORDS = lambda *words: re.compile(r"(?<![\w-])(?:" + "|".join(words) + r")", re.IGNORECASE)  # noqa: E731

#: "X led to Y", "X enabled Y": explicit causal links, the cause before the effect.
STRONG_FORWARD = _WORDS(
    r"led to", r"leads? to", r"lead(?:ing)? to", r"result(?:ed|s|ing)? in", r"enabl(?:ed|es|ing)",
    r"facilitat(?:ed|es|ing)", r"help(?:ed|s|ing)\b", r"help(?= \w+ to| to)", r"contribut(?:ed|es|ing) to",
    r"made (?:it )?(?:possible|easier|smoother)", r"allow(?:ed|s|ing)",
)
#: The same and verbs of change ("X improved Y", "X built Y").
FORWARD_CAUSAL = _WORDS(
    r"led to", r"leads? to", r"lead(?:ing)? to", r"result(?:ed|s|ing)? in", r"enabl(?:ed|es|ing)",
    r"facilitat(?:ed|es|ing)", r"help(?:ed|s|ing)\b", r"help(?= \w+ to| to)", r"contribut(?:ed|es|ing) to",
    r"made (?:it )?(?:possible|easier|smoother)", r"allow(?:ed|s|ing)", r"foster(?:ed|s|ing)",
    r"promot(?:ed|es|ing)", r"gave", r"give[sn]?", r"encourag(?:ed|es|ing)",
    r"increas(?:ed|es|ing)", r"improv(?:ed|es|ing)", r"reduc(?:ed|es|ing)",
    r"strengthen(?:ed|s|ing)", r"built", r"build(?:s|ing)?", r"support(?:ed|s|ing)",
    r"shap(?:ed|es|ing)", r"influenc(?:ed|es|ing)", r"hinder(?:ed|s|ing)", r"prevent(?:ed|s|ing)",
    r"impede[ds]?", r"undermin(?:ed|es|ing)", r"drove", r"driv(?:es|en|ing)",
)
#: "Y through X", "Y because of X": the effect before the cause.
BACKWARD_CAUSAL = _WORDS(
    r"because(?: of)?", r"due to", r"through", r"via", r"by (?=\w+ing\b)", r"as a result of",
    r"owing to", r"thanks to", r"by means of", r"mediated by", r"attributed to",
)
#: "When X, Y", "Among X, Y", "In settings with X, Y": the circumstances first.
CONDITIONAL_OPENING = re.compile(
    r"^(?:when|where|whenever|if|unless|among|amongst|given(?: that)?|despite|although|"
    r"though|whereas|while|for (?:people|those|patients|families|adults|children|"
    r"participants|staff)|in (?:settings?|contexts?|areas?|services?|places|organi[sz]ations?|"
    r"the context of|the absence of|the presence of|the face of|times of|a context)|"
    r"within|during)\b[^,;]{3,}?[,;]", re.IGNORECASE)
CONDITIONAL = _WORDS(r"when", r"where", r"whenever", r"if", r"unless", r"among", r"amongst",
                     r"in the context of", r"in settings? with", r"in the absence of",
                     r"despite", r"depend(?:s|ed|ing|ent)? on", r"given that")

#: Phrasing of aims and methods, which the guideline says carry no role.
AIM_OR_METHOD = _WORDS(
    r"(?:we|this (?:study|paper|article|review|protocol)|the (?:present )?(?:study|paper|review)"
    r"|our (?:study|aim))\s+(?:aim|aims|aimed|seek|seeks|sought|explore[sd]?|examine[sd]?|"
    r"investigate[sd]?|assess(?:es|ed)?|describe[sd]?|report(?:s|ed)? on|evaluate[sd]?|"
    r"will|present[s]?|propose[sd]?|conducted|used|recruited|interviewed|analy[sz]ed|"
    r"surveyed|performed|developed|identif(?:y|ied))",
    r"(?:the|our|this) (?:aim|objective|purpose|goal)s? (?:of|was|is|were)",
    r"to (?:explore|examine|investigate|assess|describe|evaluate|determine|understand|"
    r"identify|compare)\b", r"were (?:recruited|interviewed|analy[sz]ed|collected|conducted|"
    r"surveyed|randomi[sz]ed|included|enrolled|coded)", r"was (?:conducted|used|performed|"
    r"carried out|analy[sz]ed|collected|applied)", r"semi-?structured", r"thematic analysis",
    r"focus groups? (?:were|was)", r"cross-sectional", r"systematic(?:ally)? (?:review|search)",
    r"(?:n|N) ?= ?\d", r"questionnaire", r"regression", r"randomi[sz]ed",
    r"data (?:were|was)", r"participants (?:were|completed)", r"(?:in|this) protocol",
    r"©", r"copyright", r"published by", r"registration", r"registered", r"trial regist",
    r"ethical approval", r"clinicaltrials\.gov",
    r"(?:in this (?:paper|report|article|review)|here),? we", r"we (?:ultimately |also )?(?:explore|"
    r"map(?:ped)?|summari[sz]ed|compared|outline)", r"this (?:paper|article|commentary|report|"
    r"white paper|review|study) (?:identifies|is intended|draws)",
    r"this (?:paper|article|commentary) (?:describes|"
    r"provides|presents|reports|discusses|summari[sz]es|reviews|outlines|highlights)",
)
#: Recommendations that state what works ("services should...", "X is needed to..."):
#: rule 8 of the guideline gives them mechanism and outcome.
RECOMMENDATION = _WORDS(r"should", r"must", r"need(?:s|ed)? to", r"(?:is|are) needed",
                        r"requires?", r"call(?:s|ed)? for", r"recommend", r"it is (?:essential|"
                        r"important|crucial|vital)", r"(?:is|are) (?:essential|crucial|key) (?:to|for)")
#: Statements of findings ("we found", "results showed", "participants reported").
FINDING = _WORDS(r"(?:we )?found", r"show(?:ed|s|n)", r"reveal(?:ed|s)", r"indicat(?:ed|es)",
                 r"demonstrat(?:ed|es)", r"reported", r"identified", r"emerged", r"highlight(?:ed|s)",
                 r"suggest(?:ed|s)", r"were (?:more|less) likely", r"(?:was|were) associated")
#: Funding, registration and copyright statements: never evidence of a configuration.
ADMINISTRATIVE = re.compile(r"^\s*(?:funding|trial registration|registration|registered (?:at|with|on)|"
                            r"copyright|conflicts? of interest|competing interests?|"
                            r"clinical trial registration)\b|©|\ball rights reserved\b",
                            re.IGNORECASE)
FUTURE = _WORDS(r"will (?:be|examine|include|assess|investigate|offer|contribute|provide|"
                r"receive|take)", r"(?:is|are) expected to")

#: Generic realist vocabulary, beyond any one codebook: the words in which abstracts
#: state circumstances, resources and responses, and results.
GENERIC = {
    "context": _WORDS(
        r"lack(?:s|ed|ing)? (?:of|access)", r"limited (?:access|resources|capacity|time|"
        r"knowledge|services|support|funding|availability)", r"shortage", r"barrier", r"stigma",
        r"waiting (?:lists?|times?)", r"wait(?:ing)? (?:for|times?)", r"pandemic", r"covid",
        r"lockdown", r"fragment", r"under-?resourc", r"underserved", r"disparit", r"inequalit",
        r"low-income", r"rural", r"deprived", r"marginali[sz]", r"discriminat", r"poverty",
        r"culture", r"cultural", r"policy", r"policies", r"legislation", r"system-level",
        r"existing", r"pre-existing", r"prior", r"history of", r"face[sd]? ", r"facing",
        r"experienc(?:e|es|ed) (?:high|higher|greater|more|poor|barriers|difficult)",
        r"less likely", r"more likely", r"at (?:higher|greater|increased) risk", r"exclu",
        r"despite", r"although", r"however", r"challeng", r"difficult", r"complex", r"controvers",
        r"debated", r"var(?:y|ies|ied)", r"heterogene", r"in recent years", r"historically",
        r"poorly", r"(?:very )?few", r"norms?\b", r"lacking", r"gaps?\b", r"increasing(?:ly)?",
        r"declining", r"regulat", r"rights?\b", r"(?:the|a) need for",
        r"isolat", r"unmet need", r"(?:are|is|remain[s]?) (?:often|frequently|rarely|poorly|"
        r"under|not|largely|still)", r"little is known", r"gap[s]? in (?:services|care|provision)",
        r"no (?:access|services|pathway)", r"access to (?:care|services|support|health)",
    ),
    "mechanism": _WORDS(
        r"trust", r"confiden", r"feel(?:s|ing)?", r"felt", r"sense of", r"motivat", r"ownership",
        r"valued", r"listened", r"heard", r"empower", r"understand(?:ing)?", r"relationship",
        r"rapport", r"support(?:ed|ive)?", r"training", r"peer", r"mentor", r"facilitat",
        r"involv", r"engag", r"partnership", r"collaborat", r"co-?produc", r"co-?design",
        r"participatory", r"dialogue", r"feedback", r"communicat", r"adjustment",
        r"accommodat", r"tailor", r"flexib", r"continuity", r"personali[sz]", r"shared",
        r"through", r"by (?=\w+ing\b)", r"enabl", r"helped", r"fear", r"anxiet", r"stress",
        r"reassur", r"acceptance", r"belief", r"perceiv", r"perception", r"attitude",
        r"expectation", r"knowledge", r"awareness", r"recogni[sz]",
    ),
    "outcome": _WORDS(
        r"improv", r"increas", r"reduc", r"decreas", r"higher", r"lower", r"better", r"worse",
        r"poorer", r"greater", r"fewer", r"more (?:likely|often)", r"less (?:likely|often)",
        r"associated with", r"predict", r"led to", r"result(?:ed|s)? in", r"outcome",
        r"effective", r"benefi", r"enhanc", r"satisf", r"wellbeing", r"well-being",
        r"quality of life", r"mental health", r"access", r"uptake", r"engagement", r"adherence",
        r"significant", r"experienced", r"reported", r"found", r"showed", r"demonstrat",
        r"achiev", r"success", r"impact", r"change[sd]?", r"unmet", r"tension", r"difficult",
        r"challeng", r"harm", r"burden", r"exclusion", r"delay", r"relevan", r"useful",
        r"acceptab", r"feasib", r"valued", r"appreciat", r"helpful",
    ),
}

#: Section priors (added to role scores): aims and methods rarely carry roles, results
#: and conclusions often do; background holds most contexts.
SECTION_PRIOR = {
    "context":   {"TITLE": -0.5, "BACKGROUND": 0.3, "OBJECTIVE": -0.4, "METHODS": -0.4,
                  "RESULTS": 0.0, "CONCLUSIONS": 0.0},
    "mechanism": {"TITLE": -0.5, "BACKGROUND": -0.2, "OBJECTIVE": -0.6, "METHODS": -0.5,
                  "RESULTS": 0.2, "CONCLUSIONS": 0.2},
    "outcome":   {"TITLE": -0.5, "BACKGROUND": -0.4, "OBJECTIVE": -0.8, "METHODS": -0.8,
                  "RESULTS": 0.5, "CONCLUSIONS": 0.3},
}


def position_category(category: str | None, index: int, count: int) -> str | None:
    """Section category, guessed from position in an unstructured abstract: the first
    sentence is background, the last two are conclusions, the middle is unknown."""
    if category:
        return category
    if count >= 4 and index == 0:
        return "BACKGROUND"
    if count >= 4 and index >= count - 2:
        return "CONCLUSIONS"
    return None


@dataclass(frozen=True)
class SentenceEvidence:
    """What the role decision looks at for one sentence."""

    text: str
    category: str | None
    concepts: dict[str, tuple[str, ...]] = field(default_factory=dict)  # role -> concept ids
    generic: dict[str, int] = field(default_factory=dict)                # role -> hit count
    forward: bool = False
    backward: bool = False
    conditional: bool = False
    aim_or_method: bool = False
    future: bool = False
    recommendation: bool = False
    finding: bool = False
    administrative: bool = False
    index: int = -1                 # place in its abstract (-1: unknown)
    count: int = 0                  # sentences in its abstract (0: unknown)
    title: str = ""                 # the record's title (read by the fine-tuned encoder)

    @property
    def causal(self) -> bool:
        return self.forward or self.backward


def gather_evidence(text: str, category: str | None, codebook: Codebook, index: int = -1,
                    count: int = 0, title: str = "") -> SentenceEvidence:
    """Codebook cues, generic realist vocabulary and connectives found in one sentence
    (the `index`-th of `count` in its text, when known)."""
    concepts = {role: tuple(c.id for c in codebook.concepts_for(role) if c.mentioned_in(text))
                for role in ROLES}
    generic = {role: len(GENERIC[role].findall(text)) for role in ROLES}
    return SentenceEvidence(
        text=text, category=category, concepts=concepts, generic=generic,
        forward=bool(FORWARD_CAUSAL.search(text)), backward=bool(BACKWARD_CAUSAL.search(text)),
        conditional=bool(CONDITIONAL_OPENING.search(text) or CONDITIONAL.search(text)),
        aim_or_method=text.rstrip().endswith("?") or bool(AIM_OR_METHOD.search(text)),
        future=bool(FUTURE.search(text)),
        recommendation=bool(RECOMMENDATION.search(text)),
        finding=bool(FINDING.search(text)),
        administrative=category == "ADMIN" or bool(ADMINISTRATIVE.search(text)),
        index=index, count=count, title=title,
    )


@dataclass(frozen=True)
class RuleWeights:
    """Weights of the rule scorer; a role is given when its score reaches `threshold`.
    The defaults were tuned on the dev split only (coordinate search, bench/extract.py)."""

    cue: float = 0.3            # per codebook concept of the role (at most two count)
    generic: float = 0.3        # per generic-vocabulary hit (at most three count)
    section: float = 1.5        # multiplier of SECTION_PRIOR
    causal: float = 0.3         # causal language, for mechanism and outcome
    conditional: float = 0.0    # conditional language, for context
    aim_or_method: float = -0.4
    future: float = -0.6        # "will be", "could": protocols and expectations, not results
    recommendation: float = 0.5  # rule 8: what should be done, for mechanism and outcome
    finding: float = 0.15       # statements of findings, for outcome
    bias_context: float = 0.3   # per-role offsets: how readily each role is given
    bias_mechanism: float = -0.3
    bias_outcome: float = 0.0
    threshold: float = 0.8

    def bias(self, role: str) -> float:
        return getattr(self, f"bias_{role}")


#: The rule approaches the bench compares. `cues`: any cue gives its role. `cues+section`:
#: a cue counts unless the section prior (aims, methods) or aim/method phrasing outweighs
#: it. `cues+causal`: a cue needs causal or conditional language beside it (or a second
#: cue). `rules`: all evidence, weights tuned on the dev split.
_NOTHING = dict(cue=0.0, generic=0.0, section=0.0, causal=0.0, conditional=0.0, aim_or_method=0.0,
                future=0.0, recommendation=0.0, finding=0.0, bias_context=0.0,
                bias_mechanism=0.0, bias_outcome=0.0, threshold=1.0)
APPROACHES: dict[str, RuleWeights] = {
    "cues": RuleWeights(**{**_NOTHING, "cue": 1.0}),
    "cues+section": RuleWeights(**{**_NOTHING, "cue": 1.0, "section": 1.0, "aim_or_method": -0.8}),
    "cues+causal": RuleWeights(**{**_NOTHING, "cue": 0.6, "causal": 0.4, "conditional": 0.4}),
    "rules": RuleWeights(),
}


def rule_scores(evidence: SentenceEvidence, weights: RuleWeights = RuleWeights()) -> dict[str, float]:
    """Score of each role for one sentence (higher = more likely)."""
    scores = {}
    for role in ROLES:
        score = weights.bias(role) + weights.cue * min(len(evidence.concepts.get(role, ())), 2)
        score += weights.generic * min(evidence.generic.get(role, 0), 3)
        if evidence.category:
            score += weights.section * SECTION_PRIOR[role].get(evidence.category, 0.0)
        if role == "context" and evidence.conditional:
            score += weights.conditional
        if role != "context" and evidence.causal:
            score += weights.causal
        if evidence.aim_or_method:
            score += weights.aim_or_method
        if role == "outcome" and evidence.future:
            score += weights.future
        if role != "context" and evidence.recommendation:
            score += weights.recommendation
        if role == "outcome" and evidence.finding:
            score += weights.finding
        scores[role] = score
    return scores


def rule_roles(evidence: SentenceEvidence, weights: RuleWeights = RuleWeights()) -> dict[str, float]:
    """Roles given by the rules, each with a confidence in [0, 1]; administrative sentences
    (funding, registration, copyright) carry none."""
    if evidence.administrative:
        return {}
    scores = rule_scores(evidence, weights)
    return {role: _squash(score - weights.threshold) for role, score in scores.items()
            if score >= weights.threshold}


def _squash(margin: float) -> float:
    """Map a score margin above the threshold to a confidence in [0.5, 1)."""
    return round(0.5 + 0.5 * (1 - 1 / (1 + 2 * max(margin, 0.0))), 3)


# --- supervised -----------------------------------------------------------------------
def evidence_tokens(evidence: SentenceEvidence) -> str:
    """The sentence's evidence as pseudo-words, appended to its text for the model."""
    tokens = [f"__sec_{(evidence.category or 'none').lower()}"]
    for role in ROLES:
        tokens += [f"__cue_{role}"] * min(len(evidence.concepts.get(role, ())), 2)
        tokens += [f"__gen_{role}"] * min(evidence.generic.get(role, 0), 3)
    tokens += ["__forward"] * evidence.forward + ["__backward"] * evidence.backward
    tokens += ["__conditional"] * evidence.conditional + ["__aim"] * evidence.aim_or_method
    tokens += ["__future"] * evidence.future + ["__recommend"] * evidence.recommendation
    tokens += ["__finding"] * evidence.finding
    return " ".join(tokens)


def position_tokens(evidence: SentenceEvidence) -> str:
    """Where the sentence sits in its abstract: quarter, first, last (empty if unknown)."""
    if evidence.count <= 0:
        return ""
    quarter = min(4 * evidence.index // evidence.count, 3)
    return " ".join([f"__pos{quarter}"] + ["__first"] * (evidence.index == 0)
                    + ["__last"] * (evidence.index == evidence.count - 1))


def neighbour_tokens(evidence: Sequence[SentenceEvidence], k: int) -> str:
    """The previous and next sentences' evidence (same abstract only), prefixed."""
    tokens = []
    for offset, name in ((-1, "prev"), (1, "next")):
        j = k + offset
        same = 0 <= j < len(evidence) and evidence[j].count == evidence[k].count \
            and evidence[j].index == evidence[k].index + offset
        tokens += [f"{name}{t}" for t in evidence_tokens(evidence[j]).split()] if same \
            else [f"{name}__none"]
    return " ".join(tokens)


def rule_probabilities(evidence: SentenceEvidence, weights: RuleWeights = RuleWeights()
                       ) -> dict[str, float]:
    """The rule scores as probabilities (a logistic of the margin over the threshold),
    so that they can be blended with a model's."""
    return {role: 1 / (1 + math.exp(-2.5 * (score - weights.threshold)))
            for role, score in rule_scores(evidence, weights).items()}


def abstract_groups(evidence: Sequence[SentenceEvidence]) -> list[int]:
    """Abstract number of each sentence of a flat list (a new abstract starts at index 0)."""
    groups, current = [], -1
    for k, e in enumerate(evidence):
        if e.index <= 0 or k == 0:
            current += 1
        groups.append(current)
    return groups


@dataclass(frozen=True)
class ModelSettings:
    """Choices of the supervised role model. The defaults are the shipped ones, found
    greedily: each choice flipped in turn (the bench's ablation rows) and a flip kept
    when it raised macro F1 of grouped cross-validation on the dev split by 0.01 or more
    (less is the noise between partitions), until none did. On 40 dev abstracts that
    gave model-v2; on 140 it dropped the neighbour features (model-v3). Dropping the rule
    blend too scores 0.001 higher on dev, within the noise, and is not done: without it
    the codebook's cue phrases and causal language hardly weigh ("Protected time for joint
    meetings built trust, which led to better communication" gets outcome 0.27), and
    they are what carries over to co-production abstracts, which the labels cover least."""

    c: float = 3.0                 # inverse regularisation of each logistic regression
    word_ngrams: bool = True       # word 1-2-grams of the sentence (TF-IDF)
    char_ngrams: bool = True       # character 2-5-grams within words, beside the word n-grams
    position: bool = True          # quarter of the abstract, first/last sentence
    neighbours: bool = False       # previous/next sentence's evidence (same abstract)
    any_role_gate: bool = False    # P(role) = P(any role) x P(role | any role)
    rules_blend: float = 0.4       # weight of the rule probabilities in the blend (0: model alone)
    tune_thresholds: bool = False  # per-role thresholds by grouped CV: did not help on dev
    threshold: float = 0.45        # the threshold of every role when not tuned
    folds: int = 5                 # folds of the threshold search, grouped by abstract
    fine_tuned_blend: float = 0.5  # weight of a fine-tuned encoder (best of 0.3/0.5/0.7 on dev)


#: Candidate thresholds of the per-role search.
THRESHOLDS = tuple(round(0.2 + 0.025 * k, 3) for k in range(25))


class RoleModel:
    """One logistic regression per role over word n-grams plus the evidence tokens,
    optionally blended with the rule probabilities, with per-role thresholds chosen by
    cross-validation grouped by abstract on the training data itself.

    Trained deterministically (fixed solver and seed) on the labelled sentences it is given
    (bench/extract.py gives the dev split, RoleCoder every split). `semantic`, if given,
    maps sentence texts to dense vectors (an unsupervised LSA space, or sentence
    embeddings) appended to the features. `fine_tuned`, if given
    (a `finetune.FineTunedRoles`), is trained on the same sentences and its probabilities
    blended in last.
    """

    method = "model-v3"

    def __init__(self, settings: ModelSettings = ModelSettings(), semantic=None,
                 weights: RuleWeights = RuleWeights(), fine_tuned=None):
        self.settings = settings
        self.semantic = semantic
        self.fine_tuned = fine_tuned
        self.weights = weights
        self.thresholds = dict.fromkeys(ROLES, settings.threshold)
        self._vectorisers: list = []
        self._models: dict[str, object] = {}
        self._semantic_cache: dict[str, object] = {}

    def _documents(self, evidence: Sequence[SentenceEvidence]) -> tuple[list[str], list[str]]:
        texts = [e.text for e in evidence]
        tokens = []
        for k, e in enumerate(evidence):
            parts = [evidence_tokens(e)]
            if self.settings.position:
                parts.append(position_tokens(e))
            if self.settings.neighbours:
                parts.append(neighbour_tokens(evidence, k))
            tokens.append(" ".join(parts))
        return texts, tokens

    def _features(self, evidence: Sequence[SentenceEvidence], fit: bool = False):
        from scipy import sparse
        from sklearn.feature_extraction.text import TfidfVectorizer

        texts, tokens = self._documents(evidence)
        if fit:
            self._vectorisers = [("tokens", TfidfVectorizer(token_pattern=r"\S+", lowercase=False,
                                                            sublinear_tf=True))]
            if self.settings.word_ngrams:
                self._vectorisers.append(("text", TfidfVectorizer(
                    ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"(?u)\b\w[\w-]+\b")))
            if self.settings.char_ngrams:
                self._vectorisers.append(("text", TfidfVectorizer(
                    analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2)))
        columns = []
        for source, vectoriser in self._vectorisers:
            docs = tokens if source == "tokens" else texts
            columns.append(vectoriser.fit_transform(docs) if fit else vectoriser.transform(docs))
        if self.semantic is not None:
            columns.append(sparse.csr_matrix(self._semantic_vectors(texts)))
        return sparse.hstack(columns).tocsr()

    def _semantic_vectors(self, texts: list[str]):
        """Dense vectors of the texts, each computed once (the threshold search and
        prediction see the same sentences again)."""
        import numpy as np

        missing = [t for t in dict.fromkeys(texts) if t not in self._semantic_cache]
        if missing:
            self._semantic_cache.update(zip(missing, self.semantic(missing)))
        return np.array([self._semantic_cache[t] for t in texts])

    def _fit_models(self, evidence: Sequence[SentenceEvidence], sets: Sequence[set[str]]) -> None:
        matrix = self._features(evidence, fit=True)
        self._models = {}
        rows = list(range(len(sets)))
        if self.settings.any_role_gate:
            # Whether a sentence carries any role is learnt from every sentence; which
            # role, from the sentences carrying one.
            self._models["any"] = self._logistic(matrix, [bool(s) for s in sets])
            rows = [k for k, s in enumerate(sets) if s]
        for role in ROLES:
            model = self._logistic(matrix[rows], [role in sets[k] for k in rows])
            if model is not None:
                self._models[role] = model

    def _logistic(self, matrix, target: list[bool]):
        """A balanced, deterministic logistic regression (None if one class only)."""
        from sklearn.linear_model import LogisticRegression

        if len(set(target)) < 2:
            return None
        return LogisticRegression(C=self.settings.c, class_weight="balanced", max_iter=3000,
                                  solver="liblinear", random_state=0).fit(matrix, target)

    def fit(self, evidence: Sequence[SentenceEvidence], labels: Sequence[Iterable[str]],
            fine_tune_count: int | None = None) -> RoleModel:
        """Train on sentences (flat, in abstract order) and their roles; with
        `tune_thresholds`, first pick each role's threshold by grouped CV on them. The
        fine-tuned encoder, if any, learns from the first `fine_tune_count` only (all
        when None)."""
        sets = [set(roles) for roles in labels]
        if self.settings.tune_thresholds:
            self.thresholds = self._cross_validated_thresholds(evidence, sets)
        self._fit_models(evidence, sets)
        if self.fine_tuned is not None:
            self.fine_tuned.fit(evidence[:fine_tune_count], sets[:fine_tune_count])
        return self

    def _cross_validated_thresholds(self, evidence: Sequence[SentenceEvidence],
                                    sets: Sequence[set[str]]) -> dict[str, float]:
        """Per role, the threshold with the best F1 over out-of-fold probabilities
        (folds of whole abstracts, assigned round-robin: deterministic)."""
        groups = abstract_groups(evidence)
        folds = min(self.settings.folds, groups[-1] + 1) if groups else 0
        if folds < 2:
            return dict.fromkeys(ROLES, self.settings.threshold)
        inner = RoleModel(replace(self.settings, tune_thresholds=False), self.semantic, self.weights)
        inner._semantic_cache = self._semantic_cache
        out_of_fold: list[dict[str, float]] = [{} for _ in evidence]
        for fold in range(folds):
            train = [k for k, g in enumerate(groups) if g % folds != fold]
            held = [k for k, g in enumerate(groups) if g % folds == fold]
            inner._fit_models([evidence[k] for k in train], [sets[k] for k in train])
            for k, row in zip(held, inner.probabilities([evidence[k] for k in held])):
                out_of_fold[k] = row
        return {role: max(THRESHOLDS, key=lambda t: (_f1(sets, out_of_fold, role, t), -abs(t - 0.5)))
                for role in ROLES}

    def probabilities(self, evidence: Sequence[SentenceEvidence]) -> list[dict[str, float]]:
        """Probability of each role per sentence: the model's, blended with the rules', then
        with the fine-tuned encoder's if there is one."""
        if not evidence:
            return []
        matrix = self._features(evidence)
        out = [dict.fromkeys(ROLES, 0.0) for _ in evidence]
        gate = self._models["any"].predict_proba(matrix)[:, 1] if "any" in self._models \
            else [1.0] * len(evidence)
        for role in ROLES:
            if role in self._models:
                for row, g, p in zip(out, gate, self._models[role].predict_proba(matrix)[:, 1]):
                    row[role] = float(g * p)
        blend = self.settings.rules_blend
        if blend:
            for row, e in zip(out, evidence):
                rules = rule_probabilities(e, self.weights)
                for role in ROLES:
                    row[role] = (1 - blend) * row[role] + blend * rules[role]
        if self.fine_tuned is not None:
            share = self.settings.fine_tuned_blend
            for row, encoded in zip(out, self.fine_tuned.probabilities(evidence)):
                for role in ROLES:
                    row[role] = (1 - share) * row[role] + share * encoded[role]
        return out

    def with_encoder(self, fine_tuned, settings: ModelSettings) -> RoleModel:
        """This trained lexical model with an already trained encoder blended in (or none),
        by `settings`' blend and threshold: the lexical model is trained once."""
        if fine_tuned is None and settings == self.settings:
            return self
        other = copy.copy(self)
        other.settings, other.fine_tuned = settings, fine_tuned
        other.thresholds = dict.fromkeys(ROLES, settings.threshold) \
            if not settings.tune_thresholds else self.thresholds
        return other

    def predict(self, evidence: Sequence[SentenceEvidence]) -> list[dict[str, float]]:
        """Roles whose probability reaches that role's threshold, with that probability
        (none for administrative sentences)."""
        return [{} if e.administrative else {r: round(p, 3) for r, p in row.items()
                                              if p >= self.thresholds[r]}
                for e, row in zip(evidence, self.probabilities(evidence))]


def _f1(gold: Sequence[set[str]], probabilities: Sequence[dict[str, float]], role: str,
        threshold: float) -> float:
    tp = sum(role in g and p.get(role, 0) >= threshold for g, p in zip(gold, probabilities))
    given = sum(p.get(role, 0) >= threshold for p in probabilities)
    actual = sum(role in g for g in gold)
    return 2 * tp / (given + actual) if given + actual else 0.0


#: Settings of the model approaches the bench compares; the first is the shipped one.
MODEL_APPROACHES: dict[str, ModelSettings] = {
    "model-v3": ModelSettings(),
    "model-v3 -rules blend": ModelSettings(rules_blend=0.0),
    "model-v2 (+neighbours)": ModelSettings(neighbours=True),
    "model-v3 +per-role thresholds": ModelSettings(tune_thresholds=True),
    "model-v3 -position": ModelSettings(position=False),
    "model-v3 +any-role gate": ModelSettings(any_role_gate=True),
    "model-v3 -char n-grams": ModelSettings(char_ngrams=False),
}
#: Training labels of the model: the first annotator's dev labels alone, or the union of
#: both annotators' (a role either annotator gave counts).
LABEL_SOURCES = ("first", "union")


# --- the shipped coder ------------------------------------------------------------------
#: The approach the extractor ships with: the lexical model blended with the shipped
#: fine-tuned transformer (bench/train_coder.py chose the blend leaving one source out).
TRANSFORMER_APPROACH = "transformer"
DEFAULT_APPROACH = TRANSFORMER_APPROACH
#: The topic's `extract.coder` names for the approaches.
CODERS = {"transformer": TRANSFORMER_APPROACH, "lexical": "model-v3", "rules": "rules"}
#: The project's labelled sentences, shipped with the package (so that an installed
#: cmosynth codes exactly as a checkout does; bench/extract_labels documents them), and
#: the independent second labelling beside them.
LABELS_PATH = Path(__file__).resolve().parent / "labels" / "abstracts.jsonl"
SECOND_LABELS_NAME = "abstracts_second.jsonl"
#: The splits the shipped coder learns from: all of them. bench/extract.py chooses and
#: measures approaches with models trained on dev alone, so its test figures stay figures
#: on abstracts not learnt from; once an approach is chosen, the coder it ships learns from
#: every label, because more labels help: in a grouped 5-fold cross-validation over all
#: 211 labelled abstracts, training on the whole training folds rather than two thirds of
#: them raised macro F1 by 0.019, and by 0.020 on the abstracts about services and involvement
#: (`bench/extract.py --learning-curve`).
TRAINING_SPLITS = ("dev", "test")


def abstract_evidence(sentences: Sequence[tuple[str, str | None]], codebook: Codebook,
                      title: str = "") -> list[SentenceEvidence]:
    """Evidence for the sentences (text, structured label) of one abstract, in order."""
    return [gather_evidence(text, position_category(label_category(label), i, len(sentences)),
                            codebook, index=i, count=len(sentences), title=title)
            for i, (text, label) in enumerate(sentences)]


def labelled_examples(path: str | Path, codebook: Codebook, split: str
                      ) -> tuple[list[list[SentenceEvidence]], list[list[set[str]]]]:
    """Evidence and gold roles of the labelled abstracts of one split, grouped by abstract."""
    evidence, gold = [], []
    for abstract in read_jsonl(path):
        if abstract.get("split") != split:
            continue
        sentences = abstract["sentences"]
        evidence.append(abstract_evidence([(s["text"], s.get("section")) for s in sentences],
                                          codebook, abstract.get("title") or ""))
        gold.append([set(s["roles"]) for s in sentences])
    return evidence, gold


def union_labels(path: str | Path, split: str, first: list[list[set[str]]]) -> list[list[set[str]]]:
    """The first labels (in file order) joined with the second annotator's where an
    abstract was labelled twice (same sentences), the first alone elsewhere."""
    second_path = Path(path).with_name(SECOND_LABELS_NAME)
    ids = [a["id"] for a in read_jsonl(path) if a.get("split") == split]
    second = {a["id"]: [set(s["roles"]) for s in a["sentences"]]
              for a in read_jsonl(second_path) if a.get("split") == split} \
        if second_path.exists() else {}
    joined = []
    for identifier, roles in zip(ids, first):
        other = second.get(identifier)
        if other is not None and len(other) != len(roles):
            log.warning("%s: %s has other sentences; using the first labels for it",
                        second_path, identifier)
            other = None
        joined.append([a | b for a, b in zip(roles, other)] if other else roles)
    return joined


#: The lexical model last trained, by what it learnt from: extraction and its cross-fitted
#: estimate build several coders on the same labels in one run.
_TRAINED: dict[tuple, RoleModel] = {}
_EXAMPLES: dict[tuple, tuple[list, list]] = {}


class RoleCoder:
    """Gives each sentence its roles by the chosen approach; `method` names it for the
    CMO table. Approaches with a model train it here, deterministically, on every labelled
    sentence (`TRAINING_SPLITS`, both annotators' labels); without those labels they fall
    back to the rules. The `transformer` approach blends in the shipped encoder
    (`encoder.EncoderRoles`, or `fine_tuned` when given: an already trained encoder),
    which never learns here. `splits` narrows the labels the lexical model learns from
    (bench/extract.py trains on dev alone to score on test)."""

    def __init__(self, codebook: Codebook, approach: str = DEFAULT_APPROACH,
                 labels: str | Path = LABELS_PATH, fine_tuned=None,
                 splits: Sequence[str] | None = None,
                 reviewed: Sequence[tuple[SentenceEvidence, Iterable[str]]] = ()):
        self.codebook = codebook
        self.weights = APPROACHES.get(approach, RuleWeights())
        self.model: RoleModel | None = None
        self.method = RULES_METHOD if approach == "rules" else f"{RULES_METHOD}:{approach}"
        settings = MODEL_APPROACHES.get(approach)
        if approach == TRANSFORMER_APPROACH:
            from cmosynth.extract.encoder import EncoderRoles

            fine_tuned = fine_tuned or EncoderRoles()
            blend = fine_tuned.meta["blend"] if hasattr(fine_tuned, "meta") else {}
            settings = replace(ModelSettings(), fine_tuned_blend=blend.get(
                "transformer_share", 0.5), threshold=blend.get("threshold", 0.45))
        self.encoder = fine_tuned
        if settings is not None:
            self._train(Path(labels), settings, fine_tuned, splits or TRAINING_SPLITS, reviewed)

    def _train(self, labels: Path, settings: ModelSettings, fine_tuned,
               splits: Sequence[str], reviewed: Sequence[tuple[SentenceEvidence, Iterable[str]]]
               ) -> None:
        if not labels.exists():
            log.warning("labelled sentences not found at %s; coding roles by rules only", labels)
            self.method = RULES_METHOD
            return
        # The reviewer's own coding teaches the lexical model the review's topic, which
        # the project's labels cover least (bench/extract.py measures the gain). The
        # transformer keeps to the project's labels: it is fine-tuned at development time.
        # The lexical part alone: the encoder's share and the threshold apply when coding.
        lexical_settings = replace(settings, fine_tuned_blend=0.0,
                                   threshold=ModelSettings.threshold)
        examples_key = (str(labels), labels.stat().st_mtime_ns, tuple(splits),
                        self.codebook.digest())
        key = (*examples_key, lexical_settings,
               tuple((e.text, e.category, e.index, e.count, tuple(sorted(r))) for e, r in reviewed))
        lexical = _TRAINED.get(key)
        if lexical is None:
            evidence, roles = self._project_examples(labels, examples_key)
            evidence = evidence + [e for e, _ in reviewed]
            roles = roles + [set(r) for _, r in reviewed]
            lexical = RoleModel(lexical_settings).fit(evidence, roles)
            _TRAINED.clear()        # keep one: a run trains one coder, tests a few in turn
            _TRAINED[key] = lexical
        self.model = lexical.with_encoder(fine_tuned, settings)
        parts = [RULES_METHOD] if settings.rules_blend else []
        parts += [RoleModel.method] + ([fine_tuned.method] if fine_tuned is not None else [])
        parts += [f"{REVIEWER_TRAINED}({len(reviewed)})"] if reviewed else []
        self.method = "+".join(parts)

    def _project_examples(self, labels: Path, key: tuple) -> tuple[list, list]:
        """Evidence and roles of the project's labelled sentences (read once per run:
        gathering the evidence of 6,000 sentences takes seconds). `key`: the labels file,
        its mtime, the splits and the codebook's digest."""
        if key not in _EXAMPLES:
            evidence, roles = [], []
            for split in key[2]:
                groups, gold = labelled_examples(labels, self.codebook, split)
                evidence += [e for g in groups for e in g]
                roles += [r for g in union_labels(labels, split, gold) for r in g]
            _EXAMPLES.clear()
            _EXAMPLES[key] = (evidence, roles)
        return _EXAMPLES[key]

    def code(self, evidence: Sequence[SentenceEvidence]) -> list[dict[str, float]]:
        """Roles of each sentence, with a confidence in [0, 1]."""
        if self.model is None:
            return [rule_roles(e, self.weights) for e in evidence]
        return self.model.predict(evidence)
