rule fetch_full_text:
    """Open-access JATS full texts of the included records with a PMC id (efetch db=pmc);
    a rerun fetches only what is missing. Used when the topic's extract.full_text is on."""
    input:
        records=f"{OUT}/{{topic}}/screen/included.jsonl",
    output:
        # The manifest, not the folder, is the output: Snakemake would delete a folder
        # output before rerunning, and stored full texts must survive reruns.
        manifest=f"{OUT}/{{topic}}/extract/fulltext/manifest.json",
    log:
        f"{OUT}/{{topic}}/logs/fetch_full_text.log",
    benchmark:
        f"{OUT}/{{topic}}/benchmarks/fetch_full_text.tsv"
    params:
        folder=output_folder,
    resources:
        ncbi=1,
    conda:
        "../envs/cmosynth.yaml"
    shell:
        "cmosynth fulltext {input.records:q} -o {params.folder:q} 2> {log:q}"


rule extract_cmo:
    """CMO configurations with verbatim quotes from titles, abstracts and full texts,
    coded against the topic's codebook; sentences reviewers have coded (extract.coding,
    read, never written) keep the reviewers' roles and teach the role model, and their
    agreement and conflicts (to settle with a `consensus` coding) are written beside."""
    input:
        records=f"{OUT}/{{topic}}/screen/included.jsonl",
        codebook=topic_codebook,
        fulltext=topic_full_text_manifest,
        coding=reviewer_coding,
        configurations=reviewer_configurations,
    output:
        cmo=f"{OUT}/{{topic}}/extract/cmo.csv",
        sentences=f"{OUT}/{{topic}}/extract/sentences.csv",
        agreement=f"{OUT}/{{topic}}/extract/coding_agreement.json",
        conflicts=f"{OUT}/{{topic}}/extract/coding_conflicts.csv",
    log:
        f"{OUT}/{{topic}}/logs/extract_cmo.log",
    benchmark:
        f"{OUT}/{{topic}}/benchmarks/extract_cmo.tsv"
    params:
        options=extract_options,
    conda:
        "../envs/cmosynth.yaml"
    shell:
        "cmosynth extract {input.records:q} --codebook {input.codebook:q} {params.options} "
        "-o {output.cmo:q} --sentences {output.sentences:q} --agreement {output.agreement:q} "
        "--conflicts {output.conflicts:q} 2> {log:q}"
