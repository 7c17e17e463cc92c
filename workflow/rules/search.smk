# A changed `until` (e.g. today's date on a scheduled rerun) is a changed param, so
# Snakemake reruns this rule: the search then fetches only what entered PubMed since the
# last run. Run folders (search/<window>_<hash>/) are kept by cmosynth, not Snakemake.
rule search_pubmed:
    """One dated PubMed run per Entrez-date window; records.jsonl merges all runs."""
    input:
        topic=topic_file,
    output:
        records=f"{OUT}/{{topic}}/search/records.jsonl",
    log:
        f"{OUT}/{{topic}}/logs/search_pubmed.log",
    benchmark:
        f"{OUT}/{{topic}}/benchmarks/search_pubmed.tsv"
    params:
        outputs=outputs_root,
        until=UNTIL,
    resources:
        ncbi=1,
    conda:
        "../envs/cmosynth.yaml"
    shell:
        "cmosynth search {input.topic:q} --outputs {params.outputs:q} --until {params.until:q} "
        "2> {log:q}"
