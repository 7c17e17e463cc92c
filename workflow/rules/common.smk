# The one place that maps config to file names. Topic files are loaded (and validated
# against workflow/schemas/topic.schema.yaml) once, when the workflow is parsed.

import datetime
from pathlib import Path

from cmosynth.config import load_topic

OUT = config["outputs"]
TOPIC_FILES = {load_topic(path)["name"]: path for path in config["topics"]}
TOPICS = sorted(TOPIC_FILES)
# Empty `until` means today: a scheduled rerun then fetches what PubMed added since the
# last run. A pinned date freezes the review.
UNTIL = config["until"] or datetime.date.today().isoformat()


wildcard_constraints:
    topic="[a-z0-9][a-z0-9_-]*",


def topic_file(wildcards):
    return TOPIC_FILES[wildcards.topic]


def outputs_root(wildcards, output):
    """The outputs folder, derived from a rule's first output `<root>/<topic>/<stage>/<file>`."""
    return str(Path(output[0]).parents[2])
