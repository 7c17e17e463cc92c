# cmosynth: realist evidence synthesis as a reproducible workflow.
# Stages, in the order data flows: search -> dedup -> screen -> extract -> synthesis.
# All logic lives in the `cmosynth` package; rules only declare files and call it.

from snakemake.utils import min_version, validate

min_version("8.10")


configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/search.smk"


rule all:
    input:
        expand(f"{OUT}/{{topic}}/search/records.jsonl", topic=TOPICS),
