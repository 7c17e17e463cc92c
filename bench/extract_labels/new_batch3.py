"""Select the third batch of abstracts to label (three new sources), split it, write skeletons.

The first two batches are almost all autism research and PubMed records. This batch adds
kinds of text the coder has not seen, each a separate *source* for leave-one-source-out
figures, chosen by a written rule before any labelling:

1. sources, read in place under ../shared/data/corpus:
   - `is`: every *Implementation Science* record of
     `intervention-development-wos/savedrecs.bib` (a Web of Science export);
   - `pfs`: every *Pilot and Feasibility Studies* record of the same file;
   - `dh`: the papers of `digital-health-kb/metadata.json` with an abstract;
2. out: records of the held-out `participation_studies.bib` (DOI or a title at fuzzy ratio
   90 or more), titles already labelled or already taken (near-duplicates across sources:
   the first in the order is, pfs, dh is kept), abstracts with markup, and abstracts under
   3 or over 40 sentences;
3. on topic: title and abstract together name at least two of four concept groups
   (`CONCEPT_GROUPS`: implementation and uptake; determinants and context; collaboration
   and involvement; services, staff and organisations). Off-topic records are not taken;
4. per source, the on-topic records are shuffled with a fixed seed and the first `--size`
   taken (is 100, pfs 100, dh 130 by default); within each source the first quarter of
   the shuffled order goes to `test`, the rest to `dev`;
5. each abstract is cut by the extractor's own splitter (structured labels moved to
   `section`) and written with empty `roles` and `cmocs`, round-robin into `--batches`
   files for the annotators. The test abstracts are also written, without labels, to
   `second_*.jsonl` for the independent second labelling.

    python bench/extract_labels/new_batch3.py -o bench/extract_labels/batches3
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path

from rapidfuzz import fuzz

from cmosynth.extract.sentences import record_sentences
from cmosynth.imports import read_records_file

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import check_labels  # noqa: E402
from new_batch import held_out_titles, title_key, write_batches  # noqa: E402

SEED = 20261204
WOS_FILE = "intervention-development-wos/savedrecs.bib"
DH_FILE = "digital-health-kb/metadata.json"
WOS_JOURNALS = {"is": "IMPLEMENTATION SCIENCE", "pfs": "PILOT AND FEASIBILITY STUDIES"}
DEFAULT_SIZES = {"is": 100, "pfs": 100, "dh": 130}
CONCEPT_GROUPS = {
    "implementation": r"implement|adopt|uptake|scal(?:e|ing)[- ]up|sustain|integrat|roll[- ]?out|"
                      r"de-?implement|normali[sz]",
    "determinants": r"barrier|facilitat|enabler|determinant|context|readiness|acceptab|"
                    r"feasib|engag|fidelity|adapt",
    "collaboration": r"collaborat|partner|co-?design|co-?produc|co-?creat|stakeholder|"
                     r"participat|involv|communit|peer|champion|network",
    "services": r"service|staff|clinician|practitioner|provider|nurs|physician|"
                r"organi[sz]ation|health ?system|primary care|hospital|workforce|practice",
}


def concept_groups(text: str) -> list[str]:
    return [name for name, pattern in CONCEPT_GROUPS.items()
            if re.search(pattern, text, re.IGNORECASE)]


def source_records() -> dict[str, list[tuple[str, str, dict]]]:
    """(id, source file, record) of each source, in file order."""
    out: dict[str, list[tuple[str, str, dict]]] = {"is": [], "pfs": [], "dh": []}
    corpus = check_labels.SHARED_DATA / "corpus"
    for record in read_records_file(corpus / WOS_FILE, format="bibtex"):
        for name, journal in WOS_JOURNALS.items():
            if (record.get("journal") or "").upper() == journal:
                out[name].append((f"wos:{record['source_id']}", WOS_FILE, record))
    papers = json.loads((corpus / DH_FILE).read_text("utf-8"))["papers"]
    for paper in papers:
        if (paper.get("abstract") or "").strip():
            record = {"title": paper.get("title") or "", "abstract": paper["abstract"],
                      "doi": paper.get("doi") or ""}
            out["dh"].append((f"dh:{paper['id']}", DH_FILE, record))
    return out


def skeleton(identifier: str, source: str, split: str, record: dict) -> dict:
    sentences = [s for s in record_sentences(record) if s.section != "title"]
    return {"id": identifier, "source": source, "split": split,
            "title": re.sub(r"\s+", " ", record["title"]).strip(),
            "sentences": [{"text": s.text, "section": s.label, "roles": []} for s in sentences],
            "cmocs": []}


def select(sizes: dict[str, int], labels: Path) -> list[dict]:
    labelled = [json.loads(line) for line in labels.read_text("utf-8").splitlines() if line]
    held_out = check_labels.held_out_identifiers()
    held_titles = held_out_titles()
    seen_titles = [title_key(a["title"]) for a in labelled]
    rows = []
    for name, records in source_records().items():
        on_topic = []
        for identifier, source, record in records:
            abstract = record.get("abstract") or ""
            key = title_key(record.get("title") or "")
            doi = (record.get("doi") or "").lower().strip()
            if not key or "<" in abstract or (doi and f"doi:{doi}" in held_out):
                continue
            if any(fuzz.ratio(key, other) >= 90 for other in held_titles + seen_titles):
                continue
            count = sum(s.section != "title" for s in record_sentences(record))
            if not 3 <= count <= 40:
                continue
            seen_titles.append(key)
            if len(concept_groups(f"{record['title']} {abstract}")) >= 2:
                on_topic.append((identifier, source, record))
        random.Random(SEED).shuffle(on_topic)
        chosen = on_topic[:sizes[name]]
        test_count = round(len(chosen) / 4)
        print(f"{name}: {len(records)} records, {len(on_topic)} on topic, {len(chosen)} taken "
              f"({len(chosen) - test_count} dev, {test_count} test)")
        rows += [skeleton(i, s, "test" if n < test_count else "dev", r)
                 for n, (i, s, r) in enumerate(chosen)]
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=12)
    parser.add_argument("--second-batches", type=int, default=3)
    parser.add_argument("--labels", type=Path, default=HERE / "abstracts.jsonl")
    parser.add_argument("-o", "--out", type=Path, default=HERE / "batches3")
    args = parser.parse_args()
    rows = select(DEFAULT_SIZES, args.labels)
    # Interleave the sources so that every annotator sees all three kinds of text.
    rows.sort(key=lambda r: (r["split"] != "test", r["id"]))
    random.Random(SEED).shuffle(rows)
    write_batches(rows, args.out, "batch", args.batches)
    write_batches([r for r in rows if r["split"] == "test"], args.out, "second",
                  args.second_batches)
    return 0


if __name__ == "__main__":
    sys.exit(main())
