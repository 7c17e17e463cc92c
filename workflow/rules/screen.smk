rule screen_records:
    """Title and abstract screening: criteria rules, active-learning ranking, the
    reviewers' decisions (read, never written) and the hypergeometric stopping rule.
    Without reviewer decisions the model decides and summary.json says so."""
    input:
        records=f"{OUT}/{{topic}}/dedup/records.jsonl",
        topic=topic_file,
        decisions=reviewer_decisions,
    output:
        screening=f"{OUT}/{{topic}}/screen/screening.csv",
        to_screen=f"{OUT}/{{topic}}/screen/to_screen.csv",
        included=f"{OUT}/{{topic}}/screen/included.jsonl",
        conflicts=f"{OUT}/{{topic}}/screen/conflicts.csv",
        summary=f"{OUT}/{{topic}}/screen/summary.json",
    log:
        f"{OUT}/{{topic}}/logs/screen_records.log",
    benchmark:
        f"{OUT}/{{topic}}/benchmarks/screen_records.tsv"
    params:
        outputs=outputs_root,
    conda:
        "../envs/cmosynth.yaml"
    shell:
        "cmosynth screen {input.topic:q} --outputs {params.outputs:q} 2> {log:q}"
