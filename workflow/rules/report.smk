rule report:
    """PRISMA 2020 flow, RAMESES-ordered HTML report, workbook and RIS of included records."""
    input:
        topic=topic_file,
        records=f"{OUT}/{{topic}}/dedup/records.jsonl",
        screening=f"{OUT}/{{topic}}/screen/screening.csv",
        included=f"{OUT}/{{topic}}/screen/included.jsonl",
        cmo=f"{OUT}/{{topic}}/extract/cmo.csv",
        sentences=f"{OUT}/{{topic}}/extract/sentences.csv",
        coding=f"{OUT}/{{topic}}/extract/coding_agreement.json",
        conflicts=f"{OUT}/{{topic}}/extract/coding_conflicts.csv",
        theories=f"{OUT}/{{topic}}/synthesis/theory_status.csv",
        evidence=f"{OUT}/{{topic}}/synthesis/theory_evidence.csv",
        matrix=f"{OUT}/{{topic}}/synthesis/matrix.csv",
    output:
        html=f"{OUT}/{{topic}}/report/index.html",
        svg=f"{OUT}/{{topic}}/report/prisma.svg",
        prisma=f"{OUT}/{{topic}}/report/PRISMA.csv",
        counts=f"{OUT}/{{topic}}/report/prisma_counts.json",
        workbook=f"{OUT}/{{topic}}/report/review.xlsx",
        ris=f"{OUT}/{{topic}}/report/included.ris",
        new_records=f"{OUT}/{{topic}}/report/new_records.csv",
        cmoc_table=f"{OUT}/{{topic}}/report/cmoc_table.csv",
        manifest=f"{OUT}/{{topic}}/manifest.json",
    log:
        f"{OUT}/{{topic}}/logs/report.log",
    benchmark:
        f"{OUT}/{{topic}}/benchmarks/report.tsv"
    params:
        outputs=outputs_root,
    conda:
        "../envs/cmosynth.yaml"
    shell:
        "cmosynth report {input.topic:q} --outputs {params.outputs:q} 2> {log:q}"
