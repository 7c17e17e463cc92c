# The one place that maps config to file names. Topic files are checked once, when the
# workflow is parsed, exactly as `cmosynth validate` checks them (schema, dates, query,
# codebook, every file named), so `snakemake -n` refuses what a run would refuse.

import datetime
import shlex
from pathlib import Path

from cmosynth.config import parse_date
from cmosynth.reviewers import reviewer_files
from cmosynth.topics import checked_topic

OUT = config["outputs"]
SETTINGS = {topic["name"]: topic for topic in map(checked_topic, config["topics"])}
TOPIC_FILES = {name: topic["_path"] for name, topic in SETTINGS.items()}
TOPICS = sorted(SETTINGS)
# Empty `until` means today: a scheduled rerun then fetches what PubMed added since the
# last run. A pinned date freezes the review.
UNTIL = (parse_date(config["until"], "until", "config") or datetime.date.today()).isoformat()


wildcard_constraints:
    topic="[a-z0-9][a-z0-9_-]*",


def topic_file(wildcards):
    return TOPIC_FILES[wildcards.topic]


def outputs_root(wildcards, output):
    """The outputs folder, derived from a rule's first output `<root>/<topic>/<stage>/<file>`."""
    return str(Path(output[0]).parents[2])


def output_folder(wildcards, output):
    """The folder of a rule's first output (a stage folder such as `<topic>/synthesis`)."""
    return str(Path(output[0]).parent)


def _topic(wildcards):
    """The topic's validated settings, defaults filled in."""
    return SETTINGS[wildcards.topic]


# --- extract ---------------------------------------------------------------------------
def topic_codebook(wildcards):
    """The topic's codebook file (config/codebooks/<name>.yaml unless the topic names one)."""
    return _topic(wildcards)["codebook"]


def topic_full_text_manifest(wildcards):
    """The full-text manifest when the topic's extract.full_text is on, else no input."""
    if _topic(wildcards)["extract"]["full_text"]:
        return f"{OUT}/{wildcards.topic}/extract/fulltext/manifest.json"
    return []




def reviewer_coding(wildcards):
    """The reviewers' coding CSVs of the topic (`extract.coding`, patterns expanded).

    They are inputs so that a new or edited coding file reruns extraction."""
    return [str(p) for p in reviewer_files(_topic(wildcards), "coding")]


def reviewer_configurations(wildcards):
    """The CMOCs reviewers linked by hand (`extract.configurations`, patterns expanded)."""
    return [str(p) for p in reviewer_files(_topic(wildcards), "configurations")]


def extract_options(wildcards, input):
    """Command-line switches of `cmosynth extract` from the topic's extract section."""
    settings = _topic(wildcards)["extract"]
    options = []
    if input.get("fulltext"):
        options.append(f"--full-text {shlex.quote(str(Path(input.fulltext).parent))}")
    options += [f"--{name}" for name in ("embeddings", "llm") if settings[name]]
    options.append(f"--coder {settings['coder']}")
    for name in ("coding", "configurations"):
        files = input.get(name) or []
        options += [f"--{name} {shlex.quote(str(path))}"
                    for path in ([files] if isinstance(files, str) else files)]
    return " ".join(options)


# --- dedup -----------------------------------------------------------------------------
def topic_imports(wildcards):
    """The topic's `search.imports` files (exports from other databases), or none."""
    return _topic(wildcards)["search"]["imports"]


def topic_dedup_overrides(wildcards):
    """The reviewers' pair decisions (`dedup.overrides`, patterns expanded) as inputs."""
    return [str(p) for p in reviewer_files(_topic(wildcards), "overrides")]


def dedup_options(wildcards, input):
    """`--overrides FILE` for each reviewer overrides CSV."""
    files = input.get("overrides") or []
    return " ".join(f"--overrides {shlex.quote(str(path))}"
                    for path in ([files] if isinstance(files, str) else files))


# --- screen ----------------------------------------------------------------------------
def reviewer_decisions(wildcards):
    """The reviewers' decision CSVs of the topic (`screen.decisions`, patterns expanded).

    They are inputs so that a new or edited decision file reruns screening."""
    return [str(p) for p in reviewer_files(_topic(wildcards), "decisions")]