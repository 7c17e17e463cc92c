"""How long synthesis takes as the CMO table grows, against reading its inputs.

Generates CMO tables of growing size against the default codebook (seeded, so every run
sees the same tables): each record gets a few CMOCs whose concepts are drawn from one
programme theory, sometimes with a concept from outside it (refining) or a negated
outcome quote (contesting), as an extractor's output would. For each size it prints the
time to read the inputs alone (the baseline, measured in the same run), the time of the
whole `synthesize_files` call, their ratio, CMOCs per second, and whether two runs wrote
byte-identical files.

    python bench/synthesis.py [--sizes 1000 10000 50000]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import random
import sys
import tempfile
import time
from pathlib import Path

from cmosynth.records import new_record, read_records, write_records
from cmosynth.extract.codebook import DEFAULT_CODEBOOK
from cmosynth.synthesis import (CMO_COLUMNS, OUTPUT_FILES,
                                load_theory_book, read_cmo_table, synthesize_files)

DESIGNS = ["Journal Article", "Review", "Systematic Review", "Qualitative Research",
           "Evaluation Study", "Multicenter Study"]
NEGATED = ["Dialogue between collaborators did not mean absence of tensions or clashes.",
           "The partnership failed to change practice.", "Staff reported barriers to involvement."]
AFFIRMED = ["Collaboration improved coordination between services.",
            "Teams coproduced evaluations of their local services."]


def make_inputs(folder: Path, n_cmocs: int, book, seed: int = 0) -> tuple[Path, Path]:
    """Write records.jsonl and cmo.csv with about `n_cmocs` CMOCs, 3 per record."""
    rng = random.Random(seed)
    by_role = {role: [c.id for c in book.of_role(role)] for role in ("context", "mechanism", "outcome")}
    n_records = max(1, n_cmocs // 3)
    records = [new_record("pubmed", pmid=str(30_000_000 + i), title=f"Study {i}",
                          journal=f"Journal {i % 40}", year=2000 + i % 25,
                          publication_types=rng.sample(DESIGNS, k=rng.randint(1, 2)))
               for i in range(n_records)]
    rows = []
    for i in range(n_cmocs):
        record = records[i % n_records]
        theory = rng.choice(book.theories)
        row = {"cmoc_id": f"{record['record_id']}#{i}", "record_id": record["record_id"],
               "pmid": record["pmid"], "doi": "", "theory_id": theory.id if rng.random() < 0.8 else "",
               "section": "abstract:RESULTS", "confidence": f"{rng.random():.2f}",
               "method": "rules-v1"}
        absent = rng.choice(["context", "outcome", None, None])  # a CMOC needs two elements
        for role in ("context", "mechanism", "outcome"):
            named = list(theory.names(role))
            pool = named if named and rng.random() < 0.85 else by_role[role]
            present = role != absent
            row[role] = rng.choice(pool) if present else ""
            row[f"{role}_quote"] = f"{role} sentence of record {i}" if present else ""
        if row["outcome"]:
            row["outcome_quote"] = rng.choice(NEGATED if rng.random() < 0.1 else AFFIRMED)
        rows.append(row)
    rows.sort(key=lambda r: (r["record_id"], r["cmoc_id"]))
    write_records(folder / "records.jsonl", records)
    with open(folder / "cmo.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CMO_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return folder / "cmo.csv", folder / "records.jsonl"


def digest(folder: Path) -> str:
    return hashlib.sha256(b"".join((folder / f).read_bytes() for f in OUTPUT_FILES)).hexdigest()


def best_of(repeats: int, call) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 50000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    codebook = DEFAULT_CODEBOOK
    if not codebook.exists():
        print(f"default codebook not found at {codebook}; nothing to measure", file=sys.stderr)
        return 1
    book = load_theory_book(codebook)
    print(f"codebook {book.name} v{book.version}: {len(book.concepts)} concepts, "
          f"{len(book.theories)} theories; best of {args.repeats} runs")
    print(f"{'CMOCs':>8} {'records':>8} {'read s':>8} {'synth s':>8} {'ratio':>6} "
          f"{'CMOCs/s':>9}  identical")
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            folder = Path(tmp) / str(size)
            folder.mkdir()
            cmo, records = make_inputs(folder, size, book)
            n_records = sum(1 for _ in read_records(records))
            read_s = best_of(args.repeats, lambda: (list(read_records(records)),
                                                    read_cmo_table(cmo),
                                                    load_theory_book(codebook)))
            synth_s = best_of(args.repeats, lambda: synthesize_files(
                cmo, records=records, codebook=codebook, output_dir=folder / "a"))
            synthesize_files(cmo, records=records, codebook=codebook, output_dir=folder / "b")
            same = digest(folder / "a") == digest(folder / "b")
            print(f"{size:>8} {n_records:>8} {read_s:>8.3f} {synth_s:>8.3f} "
                  f"{synth_s / read_s:>6.1f} {size / synth_s:>9,.0f}  {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
