rule deduplicate:
    """Link duplicates among the PubMed records and the topic's imports (link, never
    delete) and list uncertain pairs for a reviewer.

    Earlier decisions survive reruns: Snakemake deletes declared outputs before a job
    runs, so the decisions are also kept in an undeclared ledger beside them
    (dedup/history/decisions.jsonl), read at the start and rewritten atomically at the
    end. Delete the ledger to deduplicate from scratch."""
    input:
        search=f"{OUT}/{{topic}}/search/records.jsonl",
        imports=topic_imports,
        overrides=topic_dedup_overrides,
    output:
        records=f"{OUT}/{{topic}}/dedup/records.jsonl",
        review=f"{OUT}/{{topic}}/dedup/pairs_to_review.csv",
    log:
        f"{OUT}/{{topic}}/logs/deduplicate.log",
    benchmark:
        f"{OUT}/{{topic}}/benchmarks/deduplicate.tsv"
    params:
        history=f"{OUT}/{{topic}}/dedup/history/decisions.jsonl",
        options=dedup_options,
    conda:
        "../envs/cmosynth.yaml"
    shell:
        "cmosynth dedup {input.search:q} {input.imports:q} -o {output.records:q} "
        "--review-pairs {output.review:q} --history {params.history:q} {params.options} "
        "2> {log:q}"
