rule synthesize:
    """Group CMOCs by programme theory and concept triple, and judge every theory
    (supported, refined, contested or no evidence) against the topic's codebook, weighing
    each record by its relevance to the topic (its query; a reviewer's inclusion)."""
    input:
        cmo=f"{OUT}/{{topic}}/extract/cmo.csv",
        records=f"{OUT}/{{topic}}/screen/included.jsonl",
        screening=f"{OUT}/{{topic}}/screen/screening.csv",
        codebook=topic_codebook,
        topic=topic_file,
    output:
        summary=f"{OUT}/{{topic}}/synthesis/cmoc_summary.csv",
        matrix=f"{OUT}/{{topic}}/synthesis/matrix.csv",
        status=f"{OUT}/{{topic}}/synthesis/theory_status.csv",
        evidence=f"{OUT}/{{topic}}/synthesis/theory_evidence.csv",
        theories=f"{OUT}/{{topic}}/synthesis/programme_theories.md",
    log:
        f"{OUT}/{{topic}}/logs/synthesize.log",
    benchmark:
        f"{OUT}/{{topic}}/benchmarks/synthesize.tsv"
    params:
        folder=output_folder,
    conda:
        "../envs/cmosynth.yaml"
    shell:
        "cmosynth synthesize {input.cmo:q} --records {input.records:q} "
        "--codebook {input.codebook:q} --topic {input.topic:q} --screening {input.screening:q} "
        "-o {params.folder:q} 2> {log:q}"
