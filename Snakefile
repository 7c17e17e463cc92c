# cmosynth: realist evidence synthesis as a reproducible workflow.
# Stages, in the order data flows: search -> dedup -> screen -> extract -> synthesis -> report.
# All logic lives in the `cmosynth` package; rules only declare files and call its CLI.

from snakemake.utils import min_version, validate

min_version("8.10")


configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/search.smk"
include: "workflow/rules/dedup.smk"
include: "workflow/rules/screen.smk"
include: "workflow/rules/extract.smk"
include: "workflow/rules/synthesis.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        expand(f"{OUT}/{{topic}}/synthesis/programme_theories.md", topic=TOPICS),
        expand(f"{OUT}/{{topic}}/report/index.html", topic=TOPICS),
