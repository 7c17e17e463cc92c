"""Whether a record is on the topic, in absolute terms: the topic's own PubMed query,
evaluated on the record's title, abstract, keywords and MeSH headings.

Machine-made screening (no reviewer decision yet) must not include a record because it is
the least unlike the topic in a corpus of unrelated ones. A similarity divided by the
corpus's best means something different on every corpus; whether the record's own text
satisfies the query the reviewers wrote means the same everywhere. Three answers:

- `on topic`: the query is satisfied by what the reviewer reads (title and abstract);
- `cannot tell`: satisfied only through indexing terms (MeSH, keywords), every block but
  one of a query of three blocks or more is satisfied, or there is no abstract to judge
  by. A reviewer decides;
- `off topic`: otherwise.

Boolean operators are read left to right with equal precedence, as PubMed reads them;
brackets group. Field tags: [tiab], [ti], [ab], [tw] search the text; [mh], [majr],
[mesh] and [ot] the headings and keywords (a heading with its subheadings counts);
untagged terms search both. A trailing `*` is a prefix wildcard; a hyphen matches a
hyphen, a space or nothing, so "co-design" = "co design" = "codesign".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

ON_TOPIC, CANNOT_TELL, OFF_TOPIC = "on topic", "cannot tell", "off topic"
#: Brackets nested deeper than this are refused (PubMed's own queries nest a few levels).
MAX_NESTING = 100

_TOKEN = re.compile(r'\s*(?:(\()|(\))|"([^"]*)"\s*(\[[^\]]*\])?|([^\s()"\[]+)\s*(\[[^\]]*\])?)')
_OPERATORS = {"AND", "OR", "NOT"}
_TEXT_TAGS = {"tiab", "ti", "ab", "tw", "title", "title/abstract", "text word"}
_INDEX_TAGS = {"mh", "mesh", "majr", "mh:noexp", "mesh terms", "ot", "other term", "kw"}


class QuerySyntaxError(ValueError):
    """The query cannot be read as a boolean expression (unbalanced brackets...)."""


@dataclass(frozen=True)
class Term:
    text: str
    where: str  # "text", "index" or "any"


@dataclass(frozen=True)
class Node:
    operator: str  # AND, OR, NOT (left AND NOT right)
    left: Node | Term
    right: Node | Term


def _where(tag: str | None) -> str:
    if not tag:
        return "any"
    name = tag.strip("[]").strip().lower()
    if name in _TEXT_TAGS:
        return "text"
    if name in _INDEX_TAGS:
        return "index"
    return "any"


def _tokens(query: str) -> list:
    tokens, at = [], 0
    query = query.strip()
    while at < len(query):
        match = _TOKEN.match(query, at)
        if not match or match.end() == at:
            raise QuerySyntaxError(f"cannot read the query at {query[at:at + 20]!r}")
        at = match.end()
        open_, close, quoted, quoted_tag, bare, bare_tag = match.groups()
        if open_:
            tokens.append("(")
        elif close:
            tokens.append(")")
        elif quoted is not None:
            tokens.append(Term(quoted.strip(), _where(quoted_tag)))
        elif bare.upper() in _OPERATORS and not bare_tag:
            tokens.append(bare.upper())
        else:
            tokens.append(Term(bare, _where(bare_tag)))
    return tokens


def parse_query(query: str) -> Node | Term | None:
    """The query as a tree of AND/OR/NOT nodes over terms; None for an empty query."""
    tokens = _tokens(query)
    if not tokens:
        return None
    tree, at = _parse_sequence(tokens, 0)
    if at != len(tokens):
        raise QuerySyntaxError("unbalanced brackets in the query")
    return tree


def _parse_sequence(tokens: list, at: int, depth: int = 0) -> tuple[Node | Term, int]:
    left, at = _parse_operand(tokens, at, depth)
    while at < len(tokens) and tokens[at] != ")":
        operator = "AND"
        if tokens[at] in _OPERATORS:
            operator, at = tokens[at], at + 1
        right, at = _parse_operand(tokens, at, depth)
        left = Node(operator, left, right)
    return left, at


def _parse_operand(tokens: list, at: int, depth: int = 0) -> tuple[Node | Term, int]:
    if at >= len(tokens):
        raise QuerySyntaxError("the query ends where a term was expected")
    token = tokens[at]
    if token == "(":
        if depth >= MAX_NESTING:
            raise QuerySyntaxError(f"brackets nested more than {MAX_NESTING} deep; "
                                   "simplify the query")
        inner, at = _parse_sequence(tokens, at + 1, depth + 1)
        if at >= len(tokens) or tokens[at] != ")":
            raise QuerySyntaxError("unbalanced brackets in the query")
        return inner, at + 1
    if isinstance(token, Term):
        return token, at + 1
    raise QuerySyntaxError(f"{token!r} where a term was expected")


def and_blocks(tree: Node | Term | None) -> list[Node | Term]:
    """The top-level parts joined by AND: the query's concept blocks."""
    blocks, pending = [], [tree] if tree is not None else []
    while pending:  # a loop, not recursion: a query may chain thousands of terms
        node = pending.pop()
        if isinstance(node, Node) and node.operator == "AND":
            pending += [node.right, node.left]
        else:
            blocks.append(node)
    return blocks


_NON_WORD = re.compile(r"[^a-z0-9*\s-]+")


@lru_cache(maxsize=4096)
def _term_pattern(text: str) -> tuple[re.Pattern, str]:
    """The term's regex, and its longest run of letters and digits: a text without that
    run cannot match, and looking for a plain substring is far cheaper than the regex."""
    words = _NON_WORD.sub(" ", text.lower()).split()
    parts = []
    for word in words:
        prefix = word.endswith("*")
        body = re.escape(word.rstrip("*")).replace(r"\-", "[- ]?")
        parts.append(body + (r"[\w-]*" if prefix else r"(?![\w])"))
    runs = re.findall(r"[a-z0-9]+", text.lower())
    pattern = re.compile(r"(?<![\w])" + r"[\s-]+".join(parts) if parts else r"(?!)")
    return pattern, max(runs, key=len) if runs else ""


@dataclass
class RecordFields:
    """A record's searchable text: free text, and index terms (headings, keywords). Each
    term is looked up once per record, however often the query is evaluated."""

    text: str
    index: tuple[str, ...]
    _found: dict = field(default_factory=dict)

    @classmethod
    def of(cls, record: dict) -> RecordFields:
        text = " ".join(str(record.get(k) or "") for k in ("title", "abstract")).lower()
        index = []
        for value in (record.get("mesh") or []) + (record.get("keywords") or []):
            heading = str(value.get("descriptor") if isinstance(value, dict) else value)
            index.append(heading.split("/")[0].strip(" *").lower())
        return cls(text, tuple(index))

    def in_text(self, term: str) -> bool:
        key = ("text", term)
        if key not in self._found:
            pattern, literal = _term_pattern(term)
            self._found[key] = literal in self.text and bool(pattern.search(self.text))
        return self._found[key]

    def in_index(self, term: str) -> bool:
        key = ("index", term)
        if key not in self._found:
            pattern, _ = _term_pattern(term)
            self._found[key] = any(pattern.match(h) for h in self.index)
        return self._found[key]


def _term_matches(term: Term, fields: RecordFields, where: str) -> bool:
    searched = term.where if term.where != "any" else where
    if searched in ("text", "any") and fields.in_text(term.text):
        return True
    return searched in ("index", "any") and term.where != "text" and fields.in_index(term.text)


def matches(tree: Node | Term, fields: RecordFields, where: str = "any") -> bool:
    """Whether the record satisfies the (sub)query. `where` = "text" limits every term to
    the title and abstract, whatever its tag says."""
    # Operators chain to the left ("a OR b OR c" is ((a OR b) OR c)), so the left spine
    # is walked in a loop and only brackets (at most MAX_NESTING deep) recurse.
    spine = []
    while isinstance(tree, Node):
        spine.append(tree)
        tree = tree.left
    result = fields.in_text(tree.text) if where == "text" else _term_matches(tree, fields, where)
    for node in reversed(spine):
        if node.operator == "AND":
            result = result and matches(node.right, fields, where)
        elif node.operator == "OR":
            result = result or matches(node.right, fields, where)
        else:
            result = result and not matches(node.right, fields, where)
    return result


@dataclass(frozen=True)
class Topicality:
    verdict: str
    reason: str


def topicality(tree: Node | Term | None, record: dict) -> Topicality:
    """On topic, cannot tell, or off topic, with the reason a reviewer would read."""
    if tree is None:
        return Topicality(CANNOT_TELL, "the topic has no query to judge by")
    fields = RecordFields.of(record)
    if matches(tree, fields, "text"):
        return Topicality(ON_TOPIC, "title or abstract satisfies the topic's query")
    if matches(tree, fields):
        return Topicality(CANNOT_TELL, "satisfies the query only through its index terms "
                                       "(MeSH or keywords)")
    if not str(record.get("abstract") or "").strip():
        return Topicality(CANNOT_TELL, "no abstract, and the title alone does not satisfy "
                                       "the query")
    blocks = and_blocks(tree)
    met = sum(1 for block in blocks if matches(block, fields))
    if len(blocks) >= 3 and met == len(blocks) - 1:
        return Topicality(CANNOT_TELL, f"satisfies {met} of the query's {len(blocks)} "
                                       "blocks")
    return Topicality(OFF_TOPIC, "does not satisfy the topic's query")
