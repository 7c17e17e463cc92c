"""Criteria rules: eligibility checks a machine can make from the record alone.

Each rule that excludes a record gives its reason; these are PRISMA 2020's "records marked
as ineligible by automation tools", counted per reason. Rules never exclude for missing
data: a record without a year or language passes the year and language rules.
"""

from __future__ import annotations

import re
from functools import cached_property
from collections.abc import Callable, Iterable
from dataclasses import dataclass

#: Record fields a term rule may look in.
TERM_FIELDS = ("title", "abstract", "mesh", "keywords")

Rule = Callable[[dict], "str | None"]


@dataclass(frozen=True)
class TermRule:
    """A list of terms looked for in some fields, with the reason a reviewer will read.

    Terms are matched case-insensitively as whole words; a trailing `*` truncates
    (`co-produc*` matches co-production and co-produced), as in PubMed.
    """

    terms: tuple[str, ...]
    fields: tuple[str, ...]
    reason: str

    @cached_property
    def pattern(self) -> re.Pattern:
        parts = []
        for term in self.terms:
            stem = term.strip().lower()
            truncated = stem.endswith("*")
            body = re.escape(stem.rstrip("*")).replace(r"\ ", r"[\s-]+")
            parts.append(rf"\b{body}" + (r"\w*" if truncated else r"\b"))
        return re.compile("|".join(parts), re.IGNORECASE)

    def found_in(self, record: dict) -> bool:
        pattern = self.pattern
        return any(pattern.search(text) for text in field_texts(record, self.fields))


def field_texts(record: dict, fields: Iterable[str]) -> Iterable[str]:
    """The text of each named field; list fields (MeSH, keywords) give one text per item."""
    for name in fields:
        value = record.get(name)
        if isinstance(value, list):
            yield from (str(v) for v in value if v)
        elif value:
            yield str(value)


def year_rule(minimum: int | None, maximum: int | None) -> Rule | None:
    """Exclude records published before `minimum` or after `maximum`."""
    if minimum is None and maximum is None:
        return None
    span = f"{minimum or '...'}-{maximum or '...'}"

    def check(record: dict) -> str | None:
        year = record.get("year")
        if year is None:
            return None
        if (minimum is not None and int(year) < minimum) or \
                (maximum is not None and int(year) > maximum):
            return f"published outside {span}"
        return None

    return check


def language_rule(allowed: list[str]) -> Rule | None:
    """Exclude records whose language code is not among `allowed` (e.g. eng)."""
    if not allowed:
        return None
    codes = {code.strip().lower() for code in allowed}
    label = ", ".join(sorted(codes))

    def check(record: dict) -> str | None:
        language = (record.get("language") or "").strip().lower()
        if language and language not in codes:
            return f"language not {label}"
        return None

    return check


def publication_type_rule(excluded: list[str]) -> Rule | None:
    """Exclude records carrying any of the listed publication types (e.g. Editorial)."""
    if not excluded:
        return None
    names = {name.strip().lower(): name for name in excluded}

    def check(record: dict) -> str | None:
        for kind in record.get("publication_types") or []:
            if str(kind).strip().lower() in names:
                return f"publication type: {names[str(kind).strip().lower()]}"
        return None

    return check


def term_rules(settings: list[dict], require: bool) -> list[Rule]:
    """Rules from `require_terms` (exclude when none is found) or `exclude_terms`
    (exclude when one is found)."""
    rules = []
    for item in settings:
        rule = TermRule(tuple(item["terms"]), tuple(item.get("fields") or TERM_FIELDS[:2]),
                        item.get("reason") or "")
        reason = rule.reason or (
            f"none of {', '.join(rule.terms)} in {'/'.join(rule.fields)}" if require
            else f"mentions {', '.join(rule.terms)} in {'/'.join(rule.fields)}")

        def check(record: dict, rule=rule, reason=reason) -> str | None:
            return reason if rule.found_in(record) != require else None

        rules.append(check)
    return rules


def criteria_rules(criteria: dict) -> list[Rule]:
    """The topic's `screen.criteria`, as rules applied in a fixed, documented order:
    publication type, language, year, required terms, excluded terms."""
    years = criteria.get("years") or {}
    candidates = [
        publication_type_rule(criteria.get("exclude_publication_types") or []),
        language_rule(criteria.get("languages") or []),
        year_rule(years.get("min"), years.get("max")),
        *term_rules(criteria.get("require_terms") or [], require=True),
        *term_rules(criteria.get("exclude_terms") or [], require=False),
    ]
    return [rule for rule in candidates if rule is not None]


def rule_exclusion(record: dict, rules: list[Rule]) -> str | None:
    """The reason of the first rule that excludes `record`, or None if it passes them all."""
    for rule in rules:
        reason = rule(record)
        if reason:
            return reason
    return None
