"""Topics as files people share: check one with everything a run would reject, and
scaffold a new one (`cmosynth validate`, `cmosynth new-topic`).

Checking collects every problem, not only the first: the schema (with the nearest key
suggested for a misspelt one, and the line of the key itself), dates, the query, the
codebook and every file the topic names. The workflow runs the same check when it
parses, so `snakemake -n` refuses what a run would refuse.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from cmosynth.config import (ERROR, Problem, _DefaultFillingValidator, _yaml_line,
                             load_schema, parse_date, read_yaml, schema_problems,
                             with_derived_values)
from cmosynth.errors import ConfigError
from cmosynth.extract.codebook import load_codebook
from cmosynth.imports.registry import holds_no_text
from cmosynth.reviewers import KINDS, topic_key
from cmosynth.screen.topicality import QuerySyntaxError, parse_query


def _read(path: Path) -> tuple[Any, list[Problem]]:
    """The file's YAML as a mapping ({} for an empty file), or the problem with it."""
    try:
        data = read_yaml(path)
        if data is None:
            return {}, []
        if not isinstance(data, dict):
            return None, [Problem(str(path), 1, "", f"holds a YAML {type(data).__name__}, "
                                  "not keys and values; start from a copy of an example")]
        return data, []
    except ConfigError as error:
        return None, [Problem(str(path), getattr(error, "line", None), "",
                              str(error).split(": ", 1)[-1])]


def _listed(value) -> list[str]:
    if not value:
        return []
    return [value] if isinstance(value, str) else list(value)


def _file_problems(topic: dict, path: Path) -> list[Problem]:
    """Every file the topic names: missing ones are errors, and so are empty imports, as
    reading them would be (`cmosynth.imports.read_records_file`)."""
    problems = []
    named = [("search.imports", f) for f in _listed(topic["search"]["imports"])]
    for kind in KINDS:   # reviewer files: a pattern with `*` may match nothing yet
        named += [(topic_key(kind), f) for f in _listed(_section(topic, kind))
                  if "*" not in f]
        problems += [Problem(str(path), _yaml_line(path, topic_key(kind).split(".")),
                             topic_key(kind), f"{f}: only the file name may hold `*` "
                             "(e.g. reviews/topic/screening/*.csv)")
                     for f in _listed(_section(topic, kind)) if "*" in str(Path(f).parent)]
    for key, name in named:
        file = Path(name)
        line = _yaml_line(path, key.split("."))
        if not file.exists():
            problems.append(Problem(str(path), line, key, f"file not found: {name} (paths "
                                    "are relative to the folder you run from)"))
        elif key == "search.imports" and file.is_file() and holds_no_text(file):
            problems.append(Problem(str(path), line, key, f"{name} is empty: it holds no "
                                    "records; check the export (export it again, or remove "
                                    "it from search.imports)"))
    return problems


def _section(topic: dict, kind: str):
    section, key, _ = KINDS[kind]
    return topic[section].get(key)


def check_topic(path: str | Path) -> tuple[dict | None, list[Problem]]:
    """The topic with every default filled in (None if its schema fails), and every
    problem a run would stop on, plus warnings."""
    path = Path(path)
    data, problems = _read(path)
    if problems:
        return None, problems
    schema = load_schema("topic")
    problems = schema_problems(data, schema, path)
    if problems:
        return None, problems
    _DefaultFillingValidator(schema).validate(data)  # fills every default in
    topic = with_derived_values(data, path)
    pubmed = topic["search"]["pubmed"]
    try:
        parse_date(pubmed["mindate"], "search.pubmed.mindate", path)
    except ConfigError as error:
        problems.append(Problem(str(path), _yaml_line(path, ["search", "pubmed", "mindate"]),
                                "search.pubmed.mindate", str(error).split(": ", 2)[-1]))
    if not pubmed["query"].strip():
        problems.append(Problem(str(path), _yaml_line(path, ["search", "pubmed", "query"]),
                                "search.pubmed.query", "the query is empty"))
    else:
        try:
            parse_query(pubmed["query"])
        except QuerySyntaxError as error:
            problems.append(Problem(str(path), _yaml_line(path, ["search", "pubmed", "query"]),
                                    "search.pubmed.query", str(error)))
    problems += _file_problems(topic, path)
    problems += codebook_problems(Path(topic["codebook"]), path)
    return topic, problems


def codebook_problems(codebook: Path, topic_path: Path) -> list[Problem]:
    """The codebook's schema errors, then what loading it finds (ids, sources, cues)."""
    if not codebook.exists():
        return [Problem(str(topic_path), _yaml_line(topic_path, ["codebook"]), "codebook",
                        f"no codebook at {codebook}; write one (cmosynth new-topic NAME --from "
                        "TOPIC makes a copy to edit) or name one under `codebook`")]
    data, problems = _read(codebook)
    if problems:
        return problems
    problems = schema_problems(data, load_schema("codebook"), codebook)
    if problems:
        return problems
    try:
        load_codebook(codebook)
    except ConfigError as error:
        key = error.key or ""
        message = str(error).split(": ", 2)[-1]
        return [Problem(str(codebook), _yaml_line(codebook, key.split(".")) if key else None,
                        key, message)]
    return []


def checked_topic(path: str | Path) -> dict:
    """The topic with defaults filled in, or ConfigError listing every problem (warnings
    are not errors)."""
    topic, problems = check_topic(path)
    errors = [p for p in problems if p.severity == ERROR]
    if errors:   # one line: the first problem, in its own file, and where to see the rest
        first = errors[0]
        more = (f" (and {len(errors) - 1} more: `cmosynth validate {path}` lists them)"
                if len(errors) > 1 else "")
        where = f"{first.path}:{first.line}" if first.line else first.path
        raise ConfigError(where, first.key or None, f"{first.message}{more}")
    return topic


# --- new topics ----------------------------------------------------------------------
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")

TOPIC_TEMPLATE = """\
# A cmosynth topic: one realist synthesis. Every key is described, with its default, in
# workflow/schemas/topic.schema.yaml; `cmosynth validate {path}` checks this file, its
# codebook and every file it names.

# Short machine name: outputs go to outputs/<name>/.
name: {name}
# The review question, as printed in the report.
title: "{title}"
description: ""
# Programme theories and CMO concepts: {codebook}
codebook: {codebook}

search:
  pubmed:
    # The PubMed query exactly as typed in PubMed. Blocks joined by AND are also the test
    # of topicality while no reviewer has screened: a record is included by the machine
    # only when its title or abstract satisfies the query.
    query: >-
      ("co-production"[tiab] OR coproduction[tiab] OR "co-design*"[tiab])
      AND (health[tiab] OR "health care"[tiab])
    # First Entrez date of the first search window (YYYY, YYYY/MM/DD or YYYY-MM-DD).
    mindate: "2010/01/01"
    date_type: edat
  # Exports from other databases (RIS, nbib, BibTeX, CSV, EndNote XML), relative to the
  # folder you run from.
  imports: []

dedup:
  # Your decisions on pairs from dedup/pairs_to_review.csv (record_id_a,record_id_b,decision).
  # Empty: reviews/<name>/duplicates/*.csv, one file per reviewer (cmosynth lab writes there).
  overrides: null

screen:
  # Your screening decisions (record_id,decision,reason,reviewer), one file per reviewer.
  # Empty: reviews/<name>/screening/*.csv (cmosynth lab writes there).
  decisions: null
  criteria:
    years: {{min: 2010, max: null}}
    languages: [eng]
  stopping:
    target_recall: 0.95
    confidence: 0.95

extract:
  # Your coding: rows of extract/sentences.csv with the roles corrected.
  # Empty: reviews/<name>/coding/*.csv (cmosynth lab writes there).
  coding: null
"""

CODEBOOK_TEMPLATE = """\
# The codebook of topic {name}: programme theories as if-then statements and the context,
# mechanism and outcome concepts they link, each with cue phrases that find it in text.
# Schema: workflow/schemas/codebook.schema.yaml. Raise `version` whenever you change it.
name: {name}
title: "{title}"
version: 1
sources:
  - id: seed1
    citation: "The first document this topic grew from (author, year, title, DOI)."
concepts:
  - id: ctx_shared_history
    role: context
    label: Shared history
    definition: Partners have worked together before.
    cues: ["prior relationship*", "worked together before", "history of collaborat*"]
    sources: [seed1]
  - id: mech_trust
    role: mechanism
    kind: reasoning
    label: Trust
    definition: Partners come to rely on each other's intentions and competence.
    cues: ["trust*", "mutual respect"]
    exclude: ["trust fund*"]
    sources: [seed1]
  - id: out_joint_working
    role: outcome
    polarity: positive
    label: Joint working
    definition: Partners plan and deliver services together.
    cues: ["joint working", "work* together", "integrated care"]
    sources: [seed1]
theories:
  - id: PT1
    label: Trust from shared history
    statement: >-
      If partners have worked together before (context), they trust each other sooner
      (mechanism), and so plan and deliver services together (outcome).
    contexts: [ctx_shared_history]
    mechanisms: [mech_trust]
    outcomes: [out_joint_working]
    sources: [seed1]
"""


def new_topic(name: str, directory: str | Path = "config", source: str | Path | None = None
              ) -> tuple[Path, Path]:
    """Write `<directory>/topics/<name>.yaml` and `<directory>/codebooks/<name>.yaml`, from
    the template or a copy of `source` (its comments kept). Never overwrites a file."""
    if not _NAME.match(name):
        raise ConfigError("new-topic", "NAME", f"{name!r} is not a safe name: lower-case "
                          "letters, digits, '-' and '_', starting with a letter or digit")
    directory = Path(directory)
    topic_path = directory / "topics" / f"{name}.yaml"
    codebook_path = directory / "codebooks" / f"{name}.yaml"
    for path in (topic_path, codebook_path):
        if path.exists():
            raise ConfigError(path, None, "already exists; choose another name or --dir "
                              "(new-topic never overwrites a file)")
    if source:
        topic, problems = check_topic(source)
        errors = [p for p in problems if p.severity == ERROR and p.key != "codebook"]
        if topic is None or errors:
            raise ConfigError(source, None, "fix this topic before copying it: "
                              + str((errors or problems)[0]))
        topic_text = _renamed(Path(source).read_text("utf-8"), name, codebook_path)
        codebook_source = Path(topic["codebook"])
        codebook_text = (re.sub(r"(?m)^name:.*$", f"name: {name}",
                                codebook_source.read_text("utf-8"), count=1)
                         if codebook_source.exists()
                         else CODEBOOK_TEMPLATE.format(name=name, title=topic["title"]))
    else:
        title = f"New topic {name}"
        topic_text = TOPIC_TEMPLATE.format(name=name, title=title, codebook=codebook_path,
                                           path=topic_path)
        codebook_text = CODEBOOK_TEMPLATE.format(name=name, title=title)
    for path, text in ((codebook_path, codebook_text), (topic_path, topic_text)):
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "x", encoding="utf-8") as handle:
            handle.write(text)
    return topic_path, codebook_path


def _renamed(text: str, name: str, codebook: Path) -> str:
    """A topic file's text with its top-level name and codebook changed, comments kept."""
    text = re.sub(r"(?m)^name:.*$", f"name: {name}", text, count=1)
    if re.search(r"(?m)^codebook:", text):
        return re.sub(r"(?m)^codebook:.*$", f"codebook: {codebook}", text, count=1)
    return re.sub(r"(?m)^(name:.*)$", rf"\1\ncodebook: {codebook}", text, count=1)

