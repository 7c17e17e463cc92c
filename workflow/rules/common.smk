# The one place that maps config to file names. Topic files are checked once, when the
# workflow is parsed, exactly as `cmosynth validate` checks them (schema, dates, query,
# codebook, every file named), so `snakemake -n` refuses what a run would refuse.

import datetime
import shlex
from pathlib import Path

from cmosynth.config import parse_date
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
    """The reviewer's coding CSV(s) of the topic (`extract.coding`), or no input.

    They are inputs so that a new or edited coding file reruns extraction."""
    coding = _topic(wildcards)["extract"]["coding"]
    if not coding:
        return []
    return [coding] if isinstance(coding, str) else list(coding)


def extract_options(wildcards, input):
    """Command-line switches of `cmosynth extract` from the topic's extract section."""
    settings = _topic(wildcards)["extract"]
    options = []
    if input.get("fulltext"):
        options.append(f"--full-text {Path(input.fulltext).parent}")
    options += [f"--{name}" for name in ("embeddings", "llm") if settings[name]]
    options.append(f"--coder {settings['coder']}")
    coding = input.get("coding") or []
    options += [f"--coding {shlex.quote(str(path))}"
                for path in ([coding] if isinstance(coding, str) else coding)]
    return " ".join(options)


# --- dedup -----------------------------------------------------------------------------
def topic_imports(wildcards):
    """The topic's `search.imports` files (exports from other databases), or none."""
    return _topic(wildcards)["search"]["imports"]


def topic_dedup_overrides(wildcards):
    """The reviewer's pair decisions (`dedup.overrides`) as an input, or no input."""
    overrides = _topic(wildcards)["dedup"]["overrides"]
    return [overrides] if overrides else []


def dedup_options(wildcards, input):
    """`--overrides FILE` when the topic names a reviewer overrides CSV."""
    return f"--overrides {input.overrides}" if input.get("overrides") else ""


# --- screen ----------------------------------------------------------------------------
def reviewer_decisions(wildcards):
    """The reviewer decision CSV(s) of the topic (`screen.decisions`), or no input.

    They are inputs so that a new or edited decision file reruns screening."""
    decisions = _topic(wildcards)["screen"]["decisions"]
    if not decisions:
        return []
    return [decisions] if isinstance(decisions, str) else list(decisions)
