"""Validate the sentence-role labels in abstracts.jsonl and print counts per split and role.

Checks the contract (fields, ids, splits, role vocabulary), that no record comes from the
held-out participation_studies.bib, and that the sentences, in order, reproduce each source
abstract read in place from ../shared/data (whitespace-normalised, structured labels aside).

    python bench/extract_labels/check_labels.py [abstracts.jsonl]

Exits 1 and lists every problem when the file does not pass.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import sys
from collections import Counter
from functools import cache
from pathlib import Path

import bibtexparser
import jsonschema
from lxml import etree

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
SHARED_DATA = Path(os.environ.get("CMOSYNTH_SHARED_DATA", REPO.parent / "shared" / "data"))
CORPUS_DIR = SHARED_DATA / "corpus" / "autistic-participatory-metrics"
LABELLED_BIB = "corpus_autism_research.bib"
HELD_OUT_BIB = "participation_studies.bib"
ROLES = ("context", "mechanism", "outcome")
SPLITS = ("dev", "test")

ABSTRACT_SCHEMA = {
    "type": "object",
    "required": ["id", "source", "split", "title", "sentences"],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string", "pattern": r"^(bib:\S+|pmid:[0-9]+|wos:WOS:[0-9]+|dh:[0-9]+)$"},
        "source": {"type": "string", "pattern": r"^(corpus_autism_research\.bib|medline/\S+|"
                   r"intervention-development-wos/savedrecs\.bib|digital-health-kb/metadata\.json)$"},
        "split": {"enum": list(SPLITS)},
        "annotator": {"type": "string", "minLength": 1},
        "title": {"type": "string", "minLength": 1},
        "sentences": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["text", "section", "roles"],
                "additionalProperties": False,
                "properties": {
                    "text": {"type": "string", "minLength": 1},
                    "section": {"type": ["string", "null"]},
                    "roles": {"type": "array", "uniqueItems": True, "items": {"enum": list(ROLES)}},
                    "note": {"type": "string"},
                },
            },
        },
        "cmocs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["c", "m", "o", "summary"],
                "additionalProperties": False,
                "properties": {
                    **{element: {"type": "array", "uniqueItems": True,
                                 "items": {"type": "integer", "minimum": 0}}
                       for element in ("c", "m", "o")},
                    "summary": {"type": "string", "minLength": 1},
                },
            },
        },
    },
}
#: Sources of the third batch: id prefix -> file under corpus/ (read with cmosynth's reader).
NEW_SOURCES = {"wos": "intervention-development-wos/savedrecs.bib",
               "dh": "digital-health-kb/metadata.json"}


def normalise(text: str) -> str:
    """Collapse runs of whitespace, as the contract compares whitespace-normalised text."""
    return re.sub(r"\s+", " ", text).strip()


def squeeze(text: str) -> str:
    """Drop all whitespace, so glued structured labels ("methods.ResultsWe") still align."""
    return re.sub(r"\s+", "", text)


@cache
def bib_entries(name: str) -> dict:
    """BibTeX entries of one corpus file by key, parsed in place."""
    library = bibtexparser.parse_file(str(CORPUS_DIR / name))
    return {entry.key: entry.fields_dict for entry in library.entries}


def bib_field(fields: dict, name: str) -> str:
    return fields[name].value if name in fields else ""


@cache
def medline_abstract(relative: str, pmid: str) -> tuple[str, tuple[str | None, ...]] | None:
    """The abstract text (sections joined by spaces) and section labels of one PubMed record."""
    path = SHARED_DATA / "medline" / relative
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    for article in etree.fromstring(data).iter("PubmedArticle"):
        if article.findtext(".//PMID") == pmid:
            parts = article.findall(".//Abstract/AbstractText")
            text = " ".join("".join(part.itertext()) for part in parts)
            return text, tuple(part.get("Label") for part in parts)
    return None


@cache
def new_source_abstracts(kind: str) -> dict[str, str]:
    """Abstracts of a third-batch source by id, read in place as new_batch3.py read them."""
    path = SHARED_DATA / "corpus" / NEW_SOURCES[kind]
    if kind == "dh":
        papers = json.loads(path.read_text("utf-8"))["papers"]
        return {paper["id"]: paper["abstract"] for paper in papers if paper.get("abstract")}
    from cmosynth.imports import read_records_file
    return {record["source_id"]: record.get("abstract") or ""
            for record in read_records_file(path, format="bibtex")}


@cache
def wos_journals() -> dict[str, str]:
    from cmosynth.imports import read_records_file
    path = SHARED_DATA / "corpus" / NEW_SOURCES["wos"]
    return {record["source_id"]: (record.get("journal") or "").upper()
            for record in read_records_file(path, format="bibtex")}


#: The kinds of text the labels come from, for figures by source (leave one source out).
SOURCE_GROUPS = ("autism", "medline", "implementation-science", "pilot-feasibility",
                 "digital-health")


def source_group(record: dict) -> str:
    """Which kind of text a labelled abstract is: its corpus, and for the Web of Science
    export its journal (Implementation Science or Pilot and Feasibility Studies)."""
    kind, _, key = record["id"].partition(":")
    if kind == "wos":
        journal = wos_journals().get(key, "")
        return "implementation-science" if journal == "IMPLEMENTATION SCIENCE" else "pilot-feasibility"
    return {"bib": "autism", "pmid": "medline", "dh": "digital-health"}[kind]


def source_abstract(record: dict) -> tuple[str, tuple[str | None, ...]] | str:
    """The abstract a labelled record was cut from, or a message saying why it is missing."""
    kind, _, key = record["id"].partition(":")
    if kind in NEW_SOURCES:
        if record["source"] != NEW_SOURCES[kind]:
            return f"{kind} id with source {record['source']!r}, expected {NEW_SOURCES[kind]!r}"
        abstract = new_source_abstracts(kind).get(key)
        return (abstract, ()) if abstract else f"no abstract under id {key!r} in {record['source']}"
    if kind == "bib":
        if record["source"] != LABELLED_BIB:
            return f"bib id with source {record['source']!r}, expected {LABELLED_BIB!r}"
        fields = bib_entries(LABELLED_BIB).get(key)
        if fields is None or not bib_field(fields, "abstract"):
            return f"no entry with an abstract under key {key!r} in {LABELLED_BIB}"
        return bib_field(fields, "abstract"), ()
    if not record["source"].startswith("medline/"):
        return f"pmid id with source {record['source']!r}, expected medline/<file>"
    relative = record["source"].removeprefix("medline/")
    if not (SHARED_DATA / "medline" / relative).is_file():
        return f"source file not found: {SHARED_DATA / 'medline' / relative}"
    found = medline_abstract(relative, key)
    return found if found else f"PMID {key} not in {record['source']}"


def held_out_identifiers() -> set[str]:
    """Keys, DOIs and PMIDs of participation_studies.bib, which no label may come from."""
    ids: set[str] = set()
    for key, fields in bib_entries(HELD_OUT_BIB).items():
        ids.add(f"bib:{key}")
        if doi := bib_field(fields, "doi").lower().strip():
            ids.add(f"doi:{doi}")
        if pmid := bib_field(fields, "pmid").strip():
            ids.add(f"pmid:{pmid}")
    return ids


def held_out_problems(record: dict, held_out: set[str]) -> list[str]:
    identifiers = {record["id"]}
    kind, _, key = record["id"].partition(":")
    if kind == "bib" and key in bib_entries(LABELLED_BIB):
        doi = bib_field(bib_entries(LABELLED_BIB)[key], "doi").lower().strip()
        identifiers.add(f"doi:{doi}")
    overlap = identifiers & held_out
    if not overlap:
        return []
    return [f"record is in held-out {HELD_OUT_BIB} ({', '.join(sorted(overlap))})"]


def label_gap_expected(section: str | None, previous: str | None, inline_labels: bool) -> bool:
    """A new section of a BibTeX abstract starts with its label written in the text."""
    return inline_labels and bool(section) and section != previous


def letters(text: str) -> str:
    return re.sub(r"[\W_]+", "", text).lower()


def is_label(gap: str, section: str) -> bool:
    """Text skipped between sentences may only be the structured label opening a section
    (a nested label such as "Lay abstract: What this paper adds?" may be partly inherited)."""
    inner = letters(section.rpartition(": ")[2])
    return letters(gap) in {letters(section), "abstract" + letters(section), inner} - {""}


def coverage_problems(record: dict, abstract: str, labels: tuple[str | None, ...]) -> list[str]:
    """Every sentence verbatim in the abstract, and together, in order, the whole abstract."""
    problems = []
    flat = normalise(abstract)
    whole, cursor, previous = squeeze(abstract), 0, None
    inline_labels = not labels
    for number, sentence in enumerate(record["sentences"], start=1):
        text, section = normalise(sentence["text"]), sentence["section"]
        if text not in flat:
            problems.append(f"sentence {number} is not verbatim in the source: {text[:60]!r}")
            continue
        piece = squeeze(text)
        start = whole.find(piece, cursor)
        if start < 0:
            problems.append(f"sentence {number} is out of order: {text[:60]!r}")
            continue
        gap = whole[cursor:start]
        if cursor == 0 and letters(gap) == "abstract":
            gap = ""  # a leading "ABSTRACT" heading is no section label
        if label_gap_expected(section, previous, inline_labels):
            if not is_label(gap, section):
                problems.append(f"sentence {number}: section {section!r} is not the label "
                                f"written before it ({gap[:40]!r})")
        elif gap:
            problems.append(f"sentence {number}: text before it is in no sentence: {gap[:60]!r}")
        cursor, previous = start + len(piece), section
    if whole[cursor:]:
        problems.append(f"text after the last sentence is in no sentence: {whole[cursor:][:60]!r}")
    if labels:
        unknown = {sentence["section"] for sentence in record["sentences"]} - set(labels)
        if unknown:
            problems.append(f"sections {sorted(map(str, unknown))} are not labels of the source")
    return problems


def cmoc_problems(record: dict) -> list[str]:
    """Each configuration names at least two elements, by sentences carrying those roles."""
    problems = []
    sentences = record["sentences"]
    for number, cmoc in enumerate(record.get("cmocs", []), start=1):
        if sum(bool(cmoc[element]) for element in "cmo") < 2:
            problems.append(f"configuration {number} has fewer than two elements")
        for element, role in zip("cmo", ROLES, strict=True):
            for index in cmoc[element]:
                if index >= len(sentences):
                    problems.append(f"configuration {number}: {element} index {index} is past "
                                    f"the last sentence ({len(sentences) - 1})")
                elif role not in sentences[index]["roles"]:
                    problems.append(f"configuration {number}: sentence {index} is its {role} "
                                    f"but is not labelled {role}")
    return problems


def check_record(record: dict, held_out: set[str]) -> list[str]:
    validator = jsonschema.Draft202012Validator(ABSTRACT_SCHEMA)
    errors = [error.message for error in validator.iter_errors(record)]
    if errors:
        return errors
    problems = held_out_problems(record, held_out) + cmoc_problems(record)
    found = source_abstract(record)
    if isinstance(found, str):
        return problems + [found]
    abstract, labels = found
    return problems + coverage_problems(record, abstract, labels)


def read_labels(path: Path) -> list[dict]:
    records = []
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as error:
                    message = f"{path}:{line_number}: not valid JSON ({error.msg})"
                    raise SystemExit(message) from None
    return records


def print_counts(records: list[dict]) -> None:
    """Abstracts and sentences per split, and sentences carrying each role or none."""
    header = f"{'split':<6}{'abstracts':>10}{'sentences':>10}" + "".join(f"{r:>11}" for r in ROLES)
    print(header + f"{'any role':>10}{'none':>8}")
    for split in (*SPLITS, "all"):
        chosen = [r for r in records if split in (r["split"], "all")]
        sentences = [s for r in chosen for s in r["sentences"]]
        roles = Counter(role for s in sentences for role in s["roles"])
        with_role = sum(1 for s in sentences if s["roles"])
        share = f" ({with_role / len(sentences):.0%})" if sentences else ""
        row = f"{split:<6}{len(chosen):>10}{len(sentences):>10}"
        row += "".join(f"{roles[r]:>11}" for r in ROLES)
        print(row + f"{with_role:>10}{len(sentences) - with_role:>8}{share}")


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else HERE / "abstracts.jsonl"
    if not CORPUS_DIR.is_dir():
        print(f"shared data not found at {SHARED_DATA}: "
              "set CMOSYNTH_SHARED_DATA to the shared/data folder", file=sys.stderr)
        return 2
    records = read_labels(path)
    held_out = held_out_identifiers()
    problems = [f"{path.name}:{n} {r.get('id', '?')}: {p}"
                for n, r in enumerate(records, start=1) for p in check_record(r, held_out)]
    seen = Counter(r.get("id") for r in records)
    problems += [f"{path.name}: id {i} appears {c} times" for i, c in seen.items() if c > 1]
    print_counts([r for r in records
                  if isinstance(r.get("sentences"), list) and r.get("split") in SPLITS])
    print(f"{len(problems)} problem(s) in {len(records)} abstracts", flush=True)
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
