"""Realist roles of sentences: context, mechanism, outcome (several allowed, usually none).

Each sentence is described by the evidence a realist reviewer looks for: codebook concept
cues, the structured-abstract section it sits in (aims and methods rarely carry roles;
results and conclusions often do), causal and conditional language ("enabled",
"led to", "through", "when", "among") and aim or method phrasing. Rules weigh that
evidence (`rules-v1`); a logistic model trained on the dev split of the project's
labelled sentences can learn the weights instead (see bench/extract.py for both).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cmosynth.extract.codebook import ROLES, Codebook
from cmosynth.extract.sentences import label_category
from cmosynth.files import read_jsonl

log = logging.getLogger("cmosynth.extract.roles")

RULES_METHOD = "rules-v1"

_WORDS = lambda *words: re.compile(r"(?<![\w-])(?:" + "|".join(words) + r")", re.IGNORECASE)  # noqa: E731

#: "X led to Y", "X enabled Y": explicit causal links, the cause before the effect.
STRONG_FORWARD = _WORDS(
    r"led to", r"leads? to", r"lead(?:ing)? to", r"result(?:ed|s|ing)? in", r"enabl(?:ed|es|ing)",
    r"facilitat(?:ed|es|ing)", r"help(?:ed|s|ing)?(?= \w+ to| to)", r"contribut(?:ed|es|ing) to",
    r"made (?:it )?(?:possible|easier|smoother)", r"allow(?:ed|s|ing)",
)
#: The same and verbs of change ("X improved Y", "X built Y").
FORWARD_CAUSAL = _WORDS(
    r"led to", r"leads? to", r"lead(?:ing)? to", r"result(?:ed|s|ing)? in", r"enabl(?:ed|es|ing)",
    r"facilitat(?:ed|es|ing)", r"help(?:ed|s|ing)?(?= \w+ to| to)", r"contribut(?:ed|es|ing) to",
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

    @property
    def causal(self) -> bool:
        return self.forward or self.backward


def gather_evidence(text: str, category: str | None, codebook: Codebook) -> SentenceEvidence:
    """Codebook cues, generic realist vocabulary and connectives found in one sentence."""
    concepts = {role: tuple(c.id for c in codebook.concepts_for(role) if c.pattern.search(text))
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


class RoleModel:
    """One logistic regression per role over word n-grams plus the evidence tokens.

    Trained deterministically (fixed solver and seed) on labelled sentences; never on the
    test split. C and the threshold were chosen by cross-validation on the dev split.
    """

    method = "model-v1"

    def __init__(self, threshold: float = 0.4, c: float = 10.0):
        self.threshold = threshold
        self.c = c
        self._vectoriser = None
        self._models: dict[str, object] = {}

    @staticmethod
    def _document(evidence: SentenceEvidence) -> str:
        return f"{evidence.text} {evidence_tokens(evidence)}"

    def fit(self, evidence: Sequence[SentenceEvidence], labels: Sequence[Iterable[str]]) -> "RoleModel":
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        self._vectoriser = TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True,
                                           token_pattern=r"(?u)\b\w[\w-]+\b", lowercase=True)
        matrix = self._vectoriser.fit_transform([self._document(e) for e in evidence])
        sets = [set(roles) for roles in labels]
        for role in ROLES:
            target = [role in s for s in sets]
            if len(set(target)) < 2:
                continue
            model = LogisticRegression(C=self.c, class_weight="balanced", max_iter=2000,
                                       solver="liblinear", random_state=0)
            self._models[role] = model.fit(matrix, target)
        return self

    def probabilities(self, evidence: Sequence[SentenceEvidence]) -> list[dict[str, float]]:
        if not evidence:
            return []
        matrix = self._vectoriser.transform([self._document(e) for e in evidence])
        out = [dict.fromkeys(ROLES, 0.0) for _ in evidence]
        for role, model in self._models.items():
            for row, p in zip(out, model.predict_proba(matrix)[:, 1]):
                row[role] = float(p)
        return out

    def predict(self, evidence: Sequence[SentenceEvidence]) -> list[dict[str, float]]:
        """Roles whose probability reaches the threshold, with that probability
        (none for administrative sentences)."""
        return [{} if e.administrative else {r: round(p, 3) for r, p in row.items()
                                              if p >= self.threshold}
                for e, row in zip(evidence, self.probabilities(evidence))]

# --- the shipped coder ------------------------------------------------------------------
#: The approach the extractor ships with (chosen on the dev split; see bench/extract.py).
DEFAULT_APPROACH = "model+rules"
#: The project's labelled sentences (bench/extract_labels), in a source checkout.
LABELS_PATH = Path(__file__).resolve().parents[3] / "bench" / "extract_labels" / "abstracts.jsonl"


def abstract_evidence(sentences: Sequence[tuple[str, str | None]],
                      codebook: Codebook) -> list[SentenceEvidence]:
    """Evidence for the sentences (text, structured label) of one abstract, in order."""
    return [gather_evidence(text, position_category(label_category(label), i, len(sentences)),
                            codebook) for i, (text, label) in enumerate(sentences)]


def labelled_examples(path: str | Path, codebook: Codebook, split: str
                      ) -> tuple[list[list[SentenceEvidence]], list[list[set[str]]]]:
    """Evidence and gold roles of the labelled abstracts of one split, grouped by abstract."""
    evidence, gold = [], []
    for abstract in read_jsonl(path):
        if abstract.get("split") != split:
            continue
        sentences = abstract["sentences"]
        evidence.append(abstract_evidence([(s["text"], s.get("section")) for s in sentences],
                                          codebook))
        gold.append([set(s["roles"]) for s in sentences])
    return evidence, gold


class RoleCoder:
    """Gives each sentence its roles by the chosen approach; `method` names it for the
    CMO table. Approaches with a model train it here, deterministically, on the dev split
    of the labelled sentences only; without those labels they fall back to the rules."""

    def __init__(self, codebook: Codebook, approach: str = DEFAULT_APPROACH,
                 labels: str | Path = LABELS_PATH):
        self.codebook = codebook
        self.weights = APPROACHES.get(approach, RuleWeights())
        self.model: RoleModel | None = None
        self.method = RULES_METHOD if approach == "rules" else f"{RULES_METHOD}:{approach}"
        if approach.startswith("model"):
            self._train(Path(labels), approach)

    def _train(self, labels: Path, approach: str) -> None:
        if not labels.exists():
            log.warning("labelled sentences not found at %s; coding roles by rules only", labels)
            self.method = RULES_METHOD
            return
        evidence, gold = labelled_examples(labels, self.codebook, "dev")
        self.model = RoleModel().fit([e for g in evidence for e in g], [r for g in gold for r in g])
        self.method = f"{RULES_METHOD}+{RoleModel.method}" if approach == "model+rules" \
            else RoleModel.method
        self._with_rules = approach == "model+rules"

    def code(self, evidence: Sequence[SentenceEvidence]) -> list[dict[str, float]]:
        """Roles of each sentence, with a confidence in [0, 1]."""
        if self.model is None:
            return [rule_roles(e, self.weights) for e in evidence]
        coded = self.model.predict(evidence)
        if self._with_rules:
            for roles, e in zip(coded, evidence):
                for role, confidence in rule_roles(e, self.weights).items():
                    roles[role] = max(roles.get(role, 0.0), confidence)
        return coded
