"""Deduplication benchmark: cmosynth against bib-dedupe on real labelled sets.

    python bench/dedup.py            # stroke and cytology_screening, both tools
    python bench/dedup.py --scale    # also 100,000 and 1,000,000 perturbed records

Scoring follows bib-dedupe's convention (../shared/data/benchmarks/README.md): a removed
record whose cluster's kept record is in its own gold group is a true positive; a removed
record kept under a record of another gold group is a false positive; each extra
surviving member of a gold group is a false negative. "False merges" counts clusters
that join records of different gold groups (the target is zero).

bib-dedupe runs from its own virtualenv (/work/bench-venvs/bib-dedupe, or
$BIB_DEDUPE_PYTHON) in a subprocess on the same CSV, in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("CMOSYNTH_SHARED_DATA", REPO.parent / "shared" / "data"))
SETS = ("stroke", "cytology_screening")
PUBLISHED_BIB_DEDUPE = {"stroke": (0.994, 1.000), "cytology_screening": (0.992, 1.000)}
BIB_DEDUPE_PYTHON = Path(os.environ.get("BIB_DEDUPE_PYTHON",
                                        "/work/bench-venvs/bib-dedupe/bin/python"))

BIB_DEDUPE_SCRIPT = r"""
import json, sys, time
import pandas as pd
from bib_dedupe.bib_dedupe import prep, block, match, cluster
df = pd.read_csv(sys.argv[1], dtype=str, keep_default_na=False)
start = time.perf_counter()
groups = cluster(match(block(prep(df, verbosity_level=0), verbosity_level=0),
                       verbosity_level=0), verbosity_level=0)
seconds = time.perf_counter() - start
json.dump({"seconds": seconds, "groups": [sorted(g) for g in groups]}, sys.stdout)
"""


def dataset_paths(name: str) -> tuple[Path, Path]:
    folder = DATA / "benchmarks" / "dedup" / name
    if not folder.is_dir():
        sys.exit(f"benchmark data not found: {folder} (set CMOSYNTH_SHARED_DATA to the "
                 "shared data folder)")
    return folder / "records_pre_merged.csv", folder / "merged_record_ids.csv"


def records_from_frame(frame: pd.DataFrame, source: str = "benchmark") -> list[dict]:
    """Benchmark rows as cmosynth records (authors "A and B" become a list)."""
    from cmosynth.records import new_record

    def text(value):
        return None if value is None or (isinstance(value, float) and pd.isna(value)) \
            or str(value).strip() == "" else str(value)

    records = []
    for row in frame.itertuples(index=False):
        authors = text(row.author)
        records.append(new_record(
            source, source_id=row.ID, title=text(row.title), year=text(row.year),
            authors=re.split(r"\s+and\s+", authors) if authors else [],
            pages=text(row.pages), volume=text(row.volume), issue=text(row.number),
            journal=text(row.journal)))
    return records


def gold_groups(path: Path) -> dict[str, int]:
    """{record ID: gold group number}; records in no group are their own entity."""
    frame = pd.read_csv(path, dtype=str)
    return {rid: number for number, ids in enumerate(frame["merged_ids"])
            for rid in ids.split(";")}


def score(ids: list[str], clusters: list[list[str]], gold: dict[str, int]) -> dict:
    """bib-dedupe's TP/FP/FN/TN for predicted clusters (first sorted ID is kept)."""
    entity = {rid: gold.get(rid, f"single:{rid}") for rid in ids}
    tp = fp = false_merges = 0
    survivors: dict = {}
    clustered = set()
    for members in clusters:
        members = sorted(members)
        clustered.update(members)
        kept = members[0]
        survivors.setdefault(entity[kept], []).append(kept)
        if len({entity[m] for m in members}) > 1:
            false_merges += 1
        for removed in members[1:]:
            if entity[removed] == entity[kept]:
                tp += 1
            else:
                fp += 1
    for rid in ids:
        if rid not in clustered:
            survivors.setdefault(entity[rid], []).append(rid)
    fn = sum(len(kept) - 1 for kept in survivors.values())
    tn = len(ids) - tp - fp - fn
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn, "false_merges": false_merges,
            "sensitivity": tp / (tp + fn) if tp + fn else 1.0,
            "specificity": tn / (tn + fp) if tn + fp else 1.0,
            "precision": tp / (tp + fp) if tp + fp else 1.0}


def run_cmosynth(frame: pd.DataFrame) -> tuple[list[list[str]], float]:
    """Clusters (as benchmark IDs) and seconds for cmosynth on one set."""
    from cmosynth.dedup import dedup_records

    start = time.perf_counter()
    result = dedup_records(records_from_frame(frame))
    seconds = time.perf_counter() - start
    groups: dict[str, list[str]] = {}
    for record in result.records:
        groups.setdefault(record["dup_group"], []).append(record["source_id"])
    return [g for g in groups.values() if len(g) > 1], seconds


def run_bib_dedupe(csv_path: Path) -> tuple[list[list[str]], float] | str:
    """bib-dedupe's clusters and seconds, or the reason it could not run."""
    if not BIB_DEDUPE_PYTHON.exists():
        return (f"bib-dedupe not installed at {BIB_DEDUPE_PYTHON} (python -m venv "
                "/work/bench-venvs/bib-dedupe && /work/bench-venvs/bib-dedupe/bin/pip "
                "install bib-dedupe)")
    with tempfile.TemporaryDirectory() as tmp:
        # bib-dedupe writes helper files into the working directory.
        done = subprocess.run([str(BIB_DEDUPE_PYTHON), "-c", BIB_DEDUPE_SCRIPT,
                               str(csv_path)], capture_output=True, text=True, cwd=tmp)
    if done.returncode != 0:
        return "bib-dedupe failed: " + done.stderr.strip().splitlines()[-1]
    out = json.loads(done.stdout[done.stdout.index("{"):])
    return out["groups"], out["seconds"]


def compare_on_sets() -> bool:
    """Print figures for both tools on every set; True if every target is met."""
    all_met = True
    print(f"{'set':<20}{'tool':<12}{'sens':>7}{'spec':>7}{'prec':>7}{'TP':>6}{'FP':>5}"
          f"{'FN':>5}{'false merges':>14}{'seconds':>9}")
    for name in SETS:
        csv_path, gold_path = dataset_paths(name)
        frame = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
        ids = list(frame["ID"])
        gold = gold_groups(gold_path)
        ours, our_seconds = run_cmosynth(frame)
        mine = score(ids, ours, gold)
        _print_row(name, "cmosynth", mine, our_seconds)
        theirs = run_bib_dedupe(csv_path)
        if isinstance(theirs, str):
            sens, spec = PUBLISHED_BIB_DEDUPE[name]
            print(f"{'':<20}bib-dedupe  {theirs}; published: sensitivity {sens}, "
                  f"specificity {spec}")
            their_sens, their_seconds = sens, None
        else:
            their = score(ids, theirs[0], gold)
            _print_row(name, "bib-dedupe", their, theirs[1])
            their_sens, their_seconds = their["sensitivity"], theirs[1]
        ratio = f"{our_seconds / their_seconds:.2f}" if their_seconds else "n/a"
        print(f"{'':<20}ratios cmosynth/bib-dedupe: sensitivity "
              f"{mine['sensitivity'] / their_sens:.3f}, time {ratio}")
        met = (mine["false_merges"] == 0 and mine["fp"] == 0
               and mine["sensitivity"] >= their_sens
               and (their_seconds is None or our_seconds < their_seconds))
        print(f"{'':<20}targets (0 false merges, sensitivity >= bib-dedupe, faster): "
              f"{'met' if met else 'NOT met'}")
        all_met &= met
    return all_met


def copper_check() -> None:
    """The IEBH copper EndNote library: every member of a duplicate set carries the
    caption "Duplicate", so a cluster holding an uncaptioned record is a false merge."""
    path = DATA / "benchmarks" / "dedup" / "iebh_copper" / "copper.xml"
    if not path.exists():
        print(f"\ncopper set not found: {path}")
        return
    from lxml import etree

    from cmosynth.dedup import dedup_records
    from cmosynth.imports import read_records_file

    flagged = {rec.findtext("rec-number"): "Duplicate" in "".join(rec.find("caption").itertext())
               for rec in etree.parse(str(path)).iter("record")
               if rec.find("caption") is not None}
    start = time.perf_counter()
    result = dedup_records(list(read_records_file(path)))
    seconds = time.perf_counter() - start
    groups: dict[str, list[str]] = {}
    for record in result.records:
        groups.setdefault(record["dup_group"], []).append(record["source_id"])
    clusters = [g for g in groups.values() if len(g) > 1]
    false_merges = sum(1 for g in clusters if not all(flagged.get(x) for x in g))
    linked = sum(len(g) for g in clusters)
    total = sum(flagged.values())
    print(f"\niebh_copper (EndNote XML, {len(result.records)} records, {total} captioned "
          f"Duplicate; cmosynth only): captioned records linked {linked}/{total} "
          f"({linked / total:.3f}), clusters with an uncaptioned record (false merges) "
          f"{false_merges}, {seconds:.2f} s")


def _print_row(name: str, tool: str, s: dict, seconds: float) -> None:
    print(f"{name:<20}{tool:<12}{s['sensitivity']:>7.3f}{s['specificity']:>7.3f}"
          f"{s['precision']:>7.3f}{s['tp']:>6}{s['fp']:>5}{s['fn']:>5}"
          f"{s['false_merges']:>14}{seconds:>9.2f}")


# --- scale ---------------------------------------------------------------------------
_STOP = {"of", "the", "and", "in", "for", "on", "&"}


def _abbreviate_journal(journal: str) -> str:
    """A MEDLINE-like abbreviation: stop words dropped, long words cut, no periods."""
    words = [w for w in re.split(r"[\s:;,]+", journal) if w and w.lower() not in _STOP]
    return " ".join(w if len(w) <= 4 else w[:4 if len(w) > 7 else 3] for w in words)


def _reformat_author(name: str, style: int) -> str:
    surname, _, given = name.partition(",")
    initials = "".join(p[0] for p in re.findall(r"[A-Za-z]+", given)).upper()
    if style == 0:
        return f"{surname.strip()} {initials}"
    if style == 1:
        return f"{' '.join(i + '.' for i in initials)} {surname.strip()}"
    return name


def perturbed_records(base: list[dict], count: int, seed: int = 20240601) -> list[dict]:
    """`count` records copied from `base` and changed the way exports differ: case,
    punctuation, journal abbreviations, missing fields, author formats."""
    from cmosynth.records import new_record

    rng = random.Random(seed)
    out = []
    for n in range(count):
        row = dict(base[n % len(base)])
        title = row["title"] or ""
        choice = rng.random()
        if choice < 0.2:
            title = title.upper()
        elif choice < 0.4:
            title = title.lower().rstrip(".") + "."
        elif choice < 0.5:
            title = title.replace(":", " -").replace(",", "")
        journal = row["journal"] or ""
        if journal and rng.random() < 0.4:
            journal = _abbreviate_journal(journal)
        authors = row["authors"]
        if rng.random() < 0.4:
            style = rng.randrange(2)
            authors = [_reformat_author(a, style) for a in authors]
        fields = {"pages": row["pages"], "volume": row["volume"], "issue": row["issue"],
                  "journal": journal or None}
        for name in list(fields):
            if rng.random() < 0.1:
                fields[name] = None
        out.append(new_record("scale", source_id=str(n), title=title, year=row["year"],
                              authors=authors, **fields))
    return out


def scale_worker(count: int) -> None:
    """Run one scale size in this process and print its figures as JSON."""
    from cmosynth.dedup import dedup_records

    base = []
    for name in SETS:
        csv_path, _ = dataset_paths(name)
        base += records_from_frame(pd.read_csv(csv_path, dtype=str, keep_default_na=False),
                                   source=name)
    start = time.perf_counter()
    records = perturbed_records(base, count)
    made = time.perf_counter() - start
    start = time.perf_counter()
    result = dedup_records(records)
    seconds = time.perf_counter() - start
    kept = sum(1 for r in result.records if r["duplicate_of"] is None)
    # Linux reports ru_maxrss in KiB: the peak of this process, input records included.
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    print(json.dumps({"records": count, "seconds": seconds, "generate_seconds": made,
                      "kept": kept, "base_records": len(base), "peak_rss_gb": peak_gb,
                      "pairs_compared": result.counts["pairs compared"]}))


def run_scale(sizes=(100_000, 1_000_000)) -> None:
    print("\nscale (records perturbed from both sets; one process per size, 1 core; "
          "peak RSS includes the input records)")
    print(f"{'records':>10}{'seconds':>10}{'records/s':>11}{'peak RSS GB':>13}{'kept':>9}"
          f"{'pairs compared':>16}")
    for size in sizes:
        done = subprocess.run([sys.executable, __file__, "--scale-worker", str(size)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            print(f"{size:>10} failed: {done.stderr.strip()[-500:]}")
            continue
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        seconds, peak = figures["seconds"], figures["peak_rss_gb"]
        print(f"{size:>10,}{seconds:>10.1f}{size / seconds:>11,.0f}{peak:>13.2f}"
              f"{figures['kept']:>9,}{figures['pairs_compared']:>16,}")
        if size >= 1_000_000:
            met = seconds < 600 and peak < 8
            print(f"{'':>10}target (1,000,000 records < 600 s and < 8 GB): "
                  f"{'met' if met else 'NOT met'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", action="store_true", help="also run 100k and 1M records")
    parser.add_argument("--scale-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--scale-worker", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scale_worker:
        scale_worker(args.scale_worker)
        return 0
    if not args.scale_only:
        compare_on_sets()
        copper_check()
    if args.scale or args.scale_only:
        run_scale()
    return 0


if __name__ == "__main__":
    sys.exit(main())
