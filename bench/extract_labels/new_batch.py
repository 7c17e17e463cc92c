"""Select a second batch of abstracts to label, split them, and write unlabelled skeletons.

The first batch (61 abstracts) was picked by reading titles. This batch is picked by a
rule, so that anyone can see why each abstract is in it:

1. candidates are the abstracts of `corpus_autism_research.bib` and of the PubMed XML
   under `medline/`, read in place, less every abstract already labelled, every record of
   the held-out `participation_studies.bib` (by key, DOI, PMID or a near-identical title),
   abstracts under 3 or over 30 sentences, and near-duplicate titles (a preprint and its
   published version: only the first in file order is kept);
2. every candidate about involvement, participation, partnership, collaboration,
   co-production or services (a fixed keyword list on title and abstract) is taken, then
   a seeded sample of the others fills the batch to `--size`, so that the set is not all
   positives;
3. the batch is shuffled with a fixed seed and the first two thirds go to `dev`, the rest
   to `test`, before any labelling;
4. each abstract is cut into sentences by the extractor's own splitter (structured labels
   moved to `section`) and written with empty `roles`, round-robin into `--batches` files
   for the annotators, who fix segmentation by hand where needed.

    python bench/extract_labels/new_batch.py --size 150 --batches 6 -o bench/extract_labels/batches
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
from cmosynth.pubmed.parser import parse_pubmed_xml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import check_labels  # noqa: E402

SEED = 20261122
ON_TOPIC = re.compile(
    r"co-?produc|co-?design|co-?creat|participat|involvement|involving|partnership|collaborat|"
    r"stakeholder|community|engag|integrated care|implementation|service|provider|"
    r"practitioner|clinician|policy|consultation|lived experience|peer", re.IGNORECASE)


def title_key(title: str) -> str:
    return re.sub(r"[\W_]+", " ", title).lower().strip()


def held_out_titles() -> list[str]:
    """Title keys of the held-out participation_studies.bib, which no batch may take."""
    return [title_key(check_labels.bib_field(f, "title"))
            for f in check_labels.bib_entries(check_labels.HELD_OUT_BIB).values()]


def write_batches(rows: list[dict], out: Path, prefix: str, batches: int) -> None:
    """Deal the rows round-robin into `batches` JSON Lines files, one per annotator."""
    out.mkdir(parents=True, exist_ok=True)
    for k in range(batches):
        part = rows[k::batches]
        path = out / f"{prefix}_{k + 1}.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in part), "utf-8")
        print(f"{path}: {len(part)} abstracts, {sum(len(r['sentences']) for r in part)} sentences")


def candidates() -> list[tuple[str, str, dict]]:
    """(id, source, record) of every abstract in the two allowed sources, in file order."""
    out = []
    bib = check_labels.CORPUS_DIR / check_labels.LABELLED_BIB
    for record in read_records_file(bib, format="bibtex"):
        out.append((f"bib:{record['source_id']}", check_labels.LABELLED_BIB, record))
    medline = check_labels.SHARED_DATA / "medline"
    for path in sorted(medline.rglob("*.xml")) + sorted(medline.rglob("*.xml.gz")):
        for record in parse_pubmed_xml(path):
            if record.get("pmid"):
                out.append((f"pmid:{record['pmid']}", f"medline/{path.relative_to(medline)}",
                            record))
    return out


def skeleton(identifier: str, source: str, split: str, record: dict) -> dict:
    sentences = [s for s in record_sentences(record) if s.section != "title"]
    return {"id": identifier, "source": source, "split": split, "title": record["title"],
            "sentences": [{"text": s.text, "section": s.label, "roles": []} for s in sentences]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=150)
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--labels", type=Path, default=HERE / "abstracts.jsonl")
    parser.add_argument("-o", "--out", type=Path, default=HERE / "batches")
    args = parser.parse_args()

    labelled = [json.loads(line) for line in args.labels.read_text("utf-8").splitlines() if line]
    held_out = check_labels.held_out_identifiers()
    held_titles = held_out_titles()
    seen_titles = [title_key(a["title"]) for a in labelled]
    taken = {a["id"] for a in labelled}
    chosen_topic, others = [], []
    for identifier, source, record in candidates():
        abstract = record.get("abstract") or ""
        key = title_key(record.get("title") or "")
        ids = {identifier, f"doi:{record.get('doi') or ''}", f"pmid:{record.get('pmid') or ''}"}
        if identifier in taken or ids & held_out or not key or "<" in abstract:
            continue
        if any(fuzz.ratio(key, other) >= 90 for other in held_titles + seen_titles):
            continue
        count = sum(s.section != "title" for s in record_sentences(record))
        if not 3 <= count <= 30:
            continue
        seen_titles.append(key)
        taken.add(identifier)
        topical = ON_TOPIC.search(f"{record['title']} {abstract}")
        (chosen_topic if topical else others).append((identifier, source, record))
    random.Random(SEED).shuffle(others)
    batch = (chosen_topic + others)[:args.size]
    random.Random(SEED).shuffle(batch)
    dev_count = round(len(batch) * 2 / 3)
    rows = [skeleton(i, s, "dev" if n < dev_count else "test", r)
            for n, (i, s, r) in enumerate(batch)]
    write_batches(rows, args.out, "batch", args.batches)
    print(f"{len(chosen_topic)} on-topic candidates, {len(others)} others; batch of {len(batch)}: "
          f"{dev_count} dev, {len(batch) - dev_count} test")
    return 0


if __name__ == "__main__":
    sys.exit(main())
