"""The codebook: CMO concepts with their cue phrases, and the programme theories that link
them (config/codebooks/<topic>.yaml, schema workflow/schemas/codebook.schema.yaml).

Cue phrases are compiled to one regular expression per concept when the codebook is
loaded, so coding thousands of sentences never recompiles them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from cmosynth.config import load_schema, read_yaml, validate
from cmosynth.errors import ConfigError

ROLES: tuple[str, ...] = ("context", "mechanism", "outcome")
ROLE_PREFIX = {"context": "ctx_", "mechanism": "mech_", "outcome": "out_"}
THEORY_KEYS = {"contexts": "context", "mechanisms": "mechanism", "outcomes": "outcome"}

#: The default topic's codebook: in the source checkout the package is installed from,
#: else in the working directory (a clone of the workflow, where Snakemake runs).
DEFAULT_CODEBOOK_NAME = Path("config") / "codebooks" / "coproduction.yaml"
DEFAULT_CODEBOOK = Path(__file__).resolve().parents[3] / DEFAULT_CODEBOOK_NAME


def default_codebook_path() -> Path:
    """Where the default codebook is; ConfigError if neither place has it."""
    for candidate in (DEFAULT_CODEBOOK, Path.cwd() / DEFAULT_CODEBOOK_NAME):
        if candidate.exists():
            return candidate
    raise ConfigError(DEFAULT_CODEBOOK_NAME, None, "default codebook not found (no source "
                      "checkout here); pass --codebook config/codebooks/<topic>.yaml")


#: The authors speaking for themselves: "we believe that...", "the authors hope",
#: "it is believed", "thought to be". A cue inside such a phrase ("believe", "hope",
#: "trust", "feel") says what the writers think, not how participants responded.
AUTHORIAL_STANCE = re.compile(
    r"\b(?:we|i|the authors?|our (?:team|group))\s+(?:\w+\s+){0,2}?"
    r"(?:believe[sd]?|hope[sd]?|feel|felt|think|trust)\b"
    r"|\bit is (?:believed|hoped|felt|thought)\b|\b(?:believed|thought|hoped) to\b",
    re.IGNORECASE)


@dataclass(frozen=True)
class Source:
    id: str
    citation: str
    url: str | None = None


@dataclass(frozen=True)
class Concept:
    """One context, mechanism or outcome, with the compiled pattern of its cue phrases."""

    id: str
    role: str
    label: str
    definition: str
    cues: tuple[str, ...]
    sources: tuple[str, ...]
    kind: str | None = None
    polarity: str | None = None
    exclude: tuple[str, ...] = ()
    pattern: re.Pattern = field(repr=False, compare=False, default=None)
    exclusion: re.Pattern | None = field(repr=False, compare=False, default=None)

    def find(self, text: str) -> list[re.Match]:
        """Every cue match in `text`, in order, less those inside an excluded phrase
        ("respect" in "respectively", "confidence" in "confidence interval") or inside the
        authors' own stance ("we believe", "it is hoped"), which is no participant's
        reasoning."""
        matches = list(self.pattern.finditer(text))
        if not matches:
            return matches
        excluded = [m.span() for m in AUTHORIAL_STANCE.finditer(text)]
        if self.exclusion is not None:
            excluded += [m.span() for m in self.exclusion.finditer(text)]
        return [m for m in matches
                if not any(a <= m.start() and m.end() <= b for a, b in excluded)]

    def mentioned_in(self, text: str) -> bool:
        """Whether `text` holds a cue of this concept outside its excluded phrases."""
        return self.pattern.search(text) is not None and bool(self.find(text))


@dataclass(frozen=True)
class Theory:
    """A programme theory: if (contexts), then (mechanisms), leading to (outcomes)."""

    id: str
    label: str
    statement: str
    contexts: tuple[str, ...]
    mechanisms: tuple[str, ...]
    outcomes: tuple[str, ...]
    sources: tuple[str, ...]

    @property
    def concept_ids(self) -> frozenset[str]:
        return frozenset(self.contexts + self.mechanisms + self.outcomes)

    def names(self, role: str) -> tuple[str, ...]:
        """The concept ids the theory names for one CMO element."""
        return {"context": self.contexts, "mechanism": self.mechanisms,
                "outcome": self.outcomes}[role]

    @cached_property
    def named(self) -> dict[str, frozenset[str]]:
        """The same as sets, for the many membership tests of judging CMOCs."""
        return {role: frozenset(self.names(role)) for role in ROLES}


@dataclass(frozen=True)
class Codebook:
    name: str
    title: str
    version: int
    sources: tuple[Source, ...]
    concepts: tuple[Concept, ...]
    theories: tuple[Theory, ...]
    path: str = ""

    def concept(self, concept_id: str) -> Concept:
        return self.concepts_by_id[concept_id]

    def concepts_for(self, role: str) -> tuple[Concept, ...]:
        return tuple(c for c in self.concepts if c.role == role)

    def label(self, concept_id: str) -> str:
        return self.concept(concept_id).label

    def citation(self, source_id: str) -> str:
        """The seed source's citation (its id when unknown)."""
        return next((s.citation for s in self.sources if s.id == source_id), source_id)

    @cached_property
    def concepts_by_id(self) -> dict[str, Concept]:
        return {c.id: c for c in self.concepts}

    def digest(self) -> tuple:
        """What the role coder reads of the codebook: each concept's role and cues."""
        return tuple((c.id, c.role, c.cues, c.exclude) for c in self.concepts)


def cue_regex(cue: str) -> str:
    """Regex for one cue (without its leading word boundary): words separated by any run of
    spaces, a hyphen matching a hyphen, a space or nothing (co-design = co design =
    codesign), and a trailing `*` a word-prefix wildcard."""
    prefix = cue.endswith("*")
    words = re.split(r"\s+", cue.rstrip("*").strip())
    body = r"\s+".join(re.escape(w).replace(r"\-", r"[-\s]?") for w in words)
    return body + (r"[\w-]*" if prefix else r"(?![\w])")


def compile_cues(cues: list[str]) -> re.Pattern:
    """One case-insensitive pattern for all cues, anchored once at a word start and grouped
    by first letter, so that a sentence is scanned quickly; longest cue first in a group."""
    groups: dict[str, list[str]] = {}
    for cue in sorted(set(cues), key=lambda c: (-len(c), c)):
        groups.setdefault(cue[0].lower(), []).append(cue_regex(cue))
    branches = [f"(?={re.escape(first)})(?:{'|'.join(alternatives)})"
                for first, alternatives in sorted(groups.items())]
    return re.compile(r"(?<![\w-])(?:" + "|".join(branches) + ")", re.IGNORECASE)


def load_codebook(path: str | Path | None = None) -> Codebook:
    """Read, validate and compile a codebook; errors name the file and the key."""
    path = Path(path) if path else default_codebook_path()
    data = validate(read_yaml(path), load_schema("codebook"), path)
    sources = tuple(Source(s["id"], s["citation"], s.get("url")) for s in data["sources"])
    source_ids = {s.id for s in sources}
    _check_unique(path, "sources", [s.id for s in sources])
    concepts = tuple(_concept(path, i, c, source_ids) for i, c in enumerate(data["concepts"]))
    _check_unique(path, "concepts", [c.id for c in concepts])
    roles = {c.id: c.role for c in concepts}
    theories = tuple(_theory(path, i, t, roles, source_ids) for i, t in enumerate(data["theories"]))
    _check_unique(path, "theories", [t.id for t in theories])
    return Codebook(data["name"], data["title"], data["version"], sources, concepts, theories,
                    str(path))


def _check_unique(path: Path, key: str, ids: list[str]) -> None:
    seen: set[str] = set()
    for index, item in enumerate(ids):
        if item in seen:
            raise ConfigError(path, f"{key}.{index}.id", f"duplicate id '{item}'; ids must be unique")
        seen.add(item)


def _check_sources(path: Path, key: str, cited: list[str], known: set[str]) -> None:
    for index, source in enumerate(cited):
        if source not in known:
            raise ConfigError(path, f"{key}.sources.{index}",
                              f"unknown source '{source}'; add it under `sources` or fix the id")


def _concept(path: Path, index: int, raw: dict, source_ids: set[str]) -> Concept:
    key = f"concepts.{index}"
    role = raw["role"]
    if not raw["id"].startswith(ROLE_PREFIX[role]):
        raise ConfigError(path, f"{key}.id", f"'{raw['id']}' is a {role}; its id must start "
                          f"with {ROLE_PREFIX[role]}")
    if raw.get("kind") and role != "mechanism":
        raise ConfigError(path, f"{key}.kind", "only mechanisms have a kind; remove it")
    if raw.get("polarity") and role != "outcome":
        raise ConfigError(path, f"{key}.polarity", "only outcomes have a polarity; remove it")
    _check_sources(path, key, raw["sources"], source_ids)
    return Concept(id=raw["id"], role=role, label=raw["label"], definition=raw["definition"],
                   cues=tuple(raw["cues"]), sources=tuple(raw["sources"]), kind=raw.get("kind"),
                   polarity=raw.get("polarity"), exclude=tuple(raw.get("exclude") or ()),
                   pattern=compile_cues(raw["cues"]),
                   exclusion=compile_cues(raw["exclude"]) if raw.get("exclude") else None)


def _theory(path: Path, index: int, raw: dict, roles: dict[str, str],
            source_ids: set[str]) -> Theory:
    key = f"theories.{index}"
    for list_key, role in THEORY_KEYS.items():
        for position, concept_id in enumerate(raw[list_key]):
            where = f"{key}.{list_key}.{position}"
            if concept_id not in roles:
                raise ConfigError(path, where, f"unknown concept '{concept_id}'; define it "
                                  "under `concepts` or fix the id")
            if roles[concept_id] != role:
                raise ConfigError(path, where, f"'{concept_id}' is a {roles[concept_id]}, "
                                  f"not a {role}; move it to the right list")
    _check_sources(path, key, raw["sources"], source_ids)
    if not (raw["contexts"] or raw["mechanisms"] or raw["outcomes"]):
        raise ConfigError(path, key, "a theory must name at least one concept")
    return Theory(raw["id"], raw["label"], raw["statement"], tuple(raw["contexts"]),
                  tuple(raw["mechanisms"]), tuple(raw["outcomes"]), tuple(raw["sources"]))
