"""Deduplication benchmark: cmosynth against bib-dedupe on real labelled sets.

    python bench/dedup.py            # every labelled set, both tools, leave one set out
    python bench/dedup.py --scale    # also 100,000 and 1,000,000 perturbed records

Sets: stroke and cytology_screening (Rathbone SRA sets, gold groups given), iebh_copper
(EndNote XML; groups rebuilt from its "Duplicate" captions, checked below) and the hard
cases written for the project (tests/fixtures/dedup/hard_cases.csv: supplement DOIs,
overlapping supplement pages, conference journal names, truncated authors...).

Thresholds are chosen by leaving one set out: for each set, the grid point with no false
merge and the best mean sensitivity on the other sets is chosen, then reported on the
set left out. The shipped defaults (cmosynth.dedup.match.Thresholds) are the choice on
all sets; their figures are printed beside the left-out ones.

Scoring follows bib-dedupe's convention (../shared/data/benchmarks/README.md): a removed
record whose cluster's kept record is in its own gold group is a true positive; a removed
record kept under a record of another gold group is a false positive; each extra
surviving member of a gold group is a false negative. "False merges" counts clusters
that join records of different gold groups (the target is zero); false positives are
also counted by the rule that linked the record.

bib-dedupe runs from its own virtualenv (/work/bench-venvs/bib-dedupe, or
$BIB_DEDUPE_PYTHON) in a subprocess on the same records, in the same run.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("CMOSYNTH_SHARED_DATA", REPO.parent / "shared" / "data"))
RATHBONE_SETS = ("stroke", "cytology_screening")
sys.path.insert(0, str(REPO / "tests"))  # the hard cases' loader
BIB_DEDUPE_PYTHON = Path(os.environ.get("BIB_DEDUPE_PYTHON",
                                        "/work/bench-venvs/bib-dedupe/bin/python"))
#: The grid the leave-one-set-out choice searches (the other thresholds stay as shipped).
GRID = {"same_title": (0.95, 0.97, 0.99), "fuzzy_title": (0.85, 0.88, 0.90, 0.93),
        "author_overlap": (0.34, 0.5, 0.67), "identifier_title": (0.75, 0.85, 0.95)}

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
BIB_DEDUPE_COLUMNS = ("ID", "ENTRYTYPE", "title", "author", "journal", "year", "volume",
                      "number", "pages", "doi", "abstract")


@dataclass
class LabelledSet:
    """One labelled set: records (source_id = the set's ID), gold groups, and notes."""

    name: str
    records: list[dict]
    gold: dict[str, str]
    note: str = ""

    @property
    def ids(self) -> list[str]:
        return [r["source_id"] for r in self.records]

    def fresh_records(self) -> list[dict]:
        """Copies, since deduplication writes its decisions into the records."""
        return [dict(r) for r in self.records]


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


def rathbone_set(name: str) -> LabelledSet | str:
    folder = DATA / "benchmarks" / "dedup" / name
    if not folder.is_dir():
        return f"{name}: not found at {folder} (set CMOSYNTH_SHARED_DATA)"
    frame = pd.read_csv(folder / "records_pre_merged.csv", dtype=str, keep_default_na=False)
    groups = pd.read_csv(folder / "merged_record_ids.csv", dtype=str)
    gold = {rid: f"g{number}" for number, ids in enumerate(groups["merged_ids"])
            for rid in ids.split(";")}
    return LabelledSet(name, records_from_frame(frame), gold)


def copper_set() -> LabelledSet | str:
    """The IEBH copper EndNote library with its duplicate groups rebuilt from captions.

    Every member of a duplicate set carries the caption "Duplicate", but the sets are not
    given. Captioned records are grouped when they share a DOI or an identical normalised
    title; the grouping is used only if every captioned record lands in a group of two or
    more and no uncaptioned record shares a DOI or title with a captioned one (checked
    here, and printed)."""
    path = DATA / "benchmarks" / "dedup" / "iebh_copper" / "copper.xml"
    if not path.exists():
        return f"iebh_copper: not found at {path}"
    from lxml import etree

    from cmosynth.dedup.normalise import normalise_title
    from cmosynth.imports import read_records_file

    captioned = {rec.findtext("rec-number"): "Duplicate" in "".join(rec.find("caption").itertext())
                 for rec in etree.parse(str(path)).iter("record")
                 if rec.find("caption") is not None}
    records = list(read_records_file(path))
    parent = {r["source_id"]: r["source_id"] for r in records}

    def find(x):
        while parent[x] != x:
            x = parent[x]
        return x

    keys: dict[tuple, list[str]] = {}
    for r in records:
        for key in (("doi", r.get("doi")), ("title", normalise_title(r.get("title")))):
            if key[1]:
                keys.setdefault(key, []).append(r["source_id"])
    for members in keys.values():
        if any(captioned.get(m) for m in members) and not all(captioned.get(m) for m in members):
            return "iebh_copper: a captioned and an uncaptioned record share a DOI or title"
        for other in members[1:]:
            parent[find(other)] = find(members[0])
    groups: dict[str, list[str]] = {}
    for r in records:
        if captioned.get(r["source_id"]):
            groups.setdefault(find(r["source_id"]), []).append(r["source_id"])
    if any(len(g) < 2 for g in groups.values()):
        return "iebh_copper: a captioned record has no partner by DOI or title"
    gold = {rid: f"c{root}" for root, members in groups.items() for rid in members}
    return LabelledSet("iebh_copper", records, gold,
                       note=f"{len(gold)} captioned records in {len(groups)} groups rebuilt "
                            "by DOI or title; every captioned record has a partner")


def hard_case_set() -> LabelledSet:
    from dedup_cases import hard_case_rows, hard_cases

    cases = hard_cases()
    kinds = {row["case"] for row in hard_case_rows()}
    return LabelledSet("hard_cases", [record for record, _ in cases],
                       {record["source_id"]: gold for record, gold in cases},
                       note=f"{len(cases)} records written for the project "
                            f"({len(kinds)} kinds of hard case)")


def labelled_sets() -> list[LabelledSet]:
    sets = []
    for made in [*(rathbone_set(name) for name in RATHBONE_SETS), copper_set(),
                 hard_case_set()]:
        if isinstance(made, str):
            print(f"skipped {made}")
        else:
            sets.append(made)
    return sets


def score(ids: list[str], clusters: list[list[str]], gold: dict[str, str],
          rule_of: dict[str, str] | None = None) -> dict:
    """bib-dedupe's TP/FP/FN/TN for predicted clusters (first sorted ID is kept), and
    false positives by the rule that linked each wrongly removed record."""
    entity = {rid: gold.get(rid, f"single:{rid}") for rid in ids}
    tp = fp = false_merges = 0
    fp_rules: Counter = Counter()
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
                fp_rules[(rule_of or {}).get(removed, "?")] += 1
    for rid in ids:
        if rid not in clustered:
            survivors.setdefault(entity[rid], []).append(rid)
    fn = sum(len(kept) - 1 for kept in survivors.values())
    tn = len(ids) - tp - fp - fn
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn, "false_merges": false_merges,
            "fp_rules": dict(fp_rules),
            "sensitivity": tp / (tp + fn) if tp + fn else 1.0,
            "specificity": tn / (tn + fp) if tn + fp else 1.0,
            "precision": tp / (tp + fp) if tp + fp else 1.0}


def run_cmosynth(labelled: LabelledSet, thresholds=None) -> tuple[dict, float, int]:
    """Score, seconds and pairs to review for cmosynth on one set."""
    from cmosynth.dedup import dedup_records
    from cmosynth.dedup.match import DEFAULT_THRESHOLDS

    start = time.perf_counter()
    result = dedup_records(labelled.fresh_records(),
                           thresholds=thresholds or DEFAULT_THRESHOLDS)
    seconds = time.perf_counter() - start
    groups: dict[str, list[str]] = {}
    for record in result.records:
        groups.setdefault(record["dup_group"], []).append(record["source_id"])
    rule_of = {r["source_id"]: r["dup_rule"] or "kept" for r in result.records}
    clusters = [g for g in groups.values() if len(g) > 1]
    return score(labelled.ids, clusters, labelled.gold, rule_of), seconds, \
        len(result.review_pairs)


def bib_dedupe_frame(records: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([{
        "ID": r["source_id"], "ENTRYTYPE": "article", "title": r.get("title") or "",
        "author": " and ".join(r.get("authors") or []), "journal": r.get("journal") or "",
        "year": str(r.get("year") or ""), "volume": r.get("volume") or "",
        "number": r.get("issue") or "", "pages": r.get("pages") or "",
        "doi": r.get("doi") or "", "abstract": r.get("abstract") or ""} for r in records],
        columns=BIB_DEDUPE_COLUMNS)


def run_bib_dedupe(labelled: LabelledSet) -> tuple[dict, float] | str:
    """bib-dedupe's score and seconds on the same records, or why it could not run."""
    if not BIB_DEDUPE_PYTHON.exists():
        return (f"bib-dedupe not installed at {BIB_DEDUPE_PYTHON} (python -m venv "
                "/work/bench-venvs/bib-dedupe && /work/bench-venvs/bib-dedupe/bin/pip "
                "install bib-dedupe)")
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "records.csv"
        bib_dedupe_frame(labelled.records).to_csv(csv_path, index=False)
        # bib-dedupe writes helper files into the working directory.
        done = subprocess.run([str(BIB_DEDUPE_PYTHON), "-c", BIB_DEDUPE_SCRIPT,
                               str(csv_path)], capture_output=True, text=True, cwd=tmp)
    if done.returncode != 0:
        return "bib-dedupe failed: " + done.stderr.strip().splitlines()[-1]
    out = json.loads(done.stdout[done.stdout.index("{"):])
    return score(labelled.ids, out["groups"], labelled.gold), out["seconds"]


def grid_points():
    from cmosynth.dedup.match import DEFAULT_THRESHOLDS

    names = sorted(GRID)
    for values in itertools.product(*(GRID[n] for n in names)):
        yield replace(DEFAULT_THRESHOLDS, **dict(zip(names, values)))


def choose(thresholds_scores: dict, set_names: list[str]):
    """The grid point with no false merge on `set_names` and the best mean sensitivity
    there; ties go to the strictest point (highest thresholds), then the first."""
    best, best_key = None, None
    for point, by_set in thresholds_scores.items():
        merges = sum(by_set[n]["false_merges"] + by_set[n]["fp"] for n in set_names)
        sens = sum(by_set[n]["sensitivity"] for n in set_names) / len(set_names)
        key = (merges == 0, round(sens, 6), point.same_title + point.fuzzy_title
               + point.author_overlap + point.identifier_title)
        if best_key is None or key > best_key:
            best, best_key = point, key
    return best


def _describe(point) -> str:
    return ", ".join(f"{name} {getattr(point, name)}" for name in sorted(GRID))


def compare_on_sets() -> bool:
    """Print figures for both tools on every set; True if every target is met."""
    from cmosynth.dedup.match import DEFAULT_THRESHOLDS

    sets = labelled_sets()
    for labelled in sets:
        if labelled.note:
            print(f"{labelled.name}: {labelled.note}")
    print(f"\nthreshold grid: {len(list(grid_points()))} points over {', '.join(sorted(GRID))}")
    grid_scores = {point: {s.name: run_cmosynth(s, point)[0] for s in sets}
                   for point in grid_points()}
    on_all = choose(grid_scores, [s.name for s in sets])
    print(f"chosen on all sets: {_describe(on_all)}")
    print(f"shipped defaults:   {_describe(DEFAULT_THRESHOLDS)}"
          f"{'' if on_all == DEFAULT_THRESHOLDS else '  (differ from the choice on all sets)'}")

    all_met = True
    print(f"\n{'set':<20}{'tool':<24}{'sens':>7}{'spec':>7}{'TP':>6}{'FP':>5}{'FN':>5}"
          f"{'false merges':>14}{'review':>8}{'seconds':>9}")
    for labelled in sets:
        others = [s.name for s in sets if s.name != labelled.name]
        held_out_point = choose(grid_scores, others)
        held_out = grid_scores[held_out_point][labelled.name]
        shipped, our_seconds, review = run_cmosynth(labelled)
        theirs = run_bib_dedupe(labelled)
        _print_row(labelled.name, "cmosynth, left out", held_out, None, None)
        _print_row("", "cmosynth, shipped", shipped, our_seconds, review)
        if isinstance(theirs, str):
            print(f"{'':<20}bib-dedupe: {theirs}")
            their_sens, their_seconds = None, None
        else:
            _print_row("", "bib-dedupe", theirs[0], theirs[1], None)
            their_sens, their_seconds = theirs[0]["sensitivity"], theirs[1]
        if held_out_point != DEFAULT_THRESHOLDS:
            print(f"{'':<20}left-out choice: {_describe(held_out_point)}")
        for name, s in (("left out", held_out), ("shipped", shipped)):
            if s["fp_rules"]:
                print(f"{'':<20}false positives by rule ({name}): "
                      + ", ".join(f"{r} {n}" for r, n in sorted(s["fp_rules"].items())))
        met = (held_out["false_merges"] == 0 and shipped["false_merges"] == 0
               and (their_sens is None or held_out["sensitivity"] >= their_sens)
               and (their_seconds is None or our_seconds <= their_seconds / 5))
        ratio = f"{our_seconds / their_seconds:.3f}" if their_seconds else "n/a"
        print(f"{'':<20}time cmosynth/bib-dedupe {ratio}; targets (0 false merges, "
              f"sensitivity >= bib-dedupe's, <= 1/5 of its time): {'met' if met else 'NOT met'}")
        all_met &= met
    return all_met


def _print_row(name: str, tool: str, s: dict, seconds: float | None,
               review: int | None) -> None:
    seconds_text = f"{seconds:>9.2f}" if seconds is not None else f"{'':>9}"
    review_text = f"{review:>8}" if review is not None else f"{'':>8}"
    print(f"{name:<20}{tool:<24}{s['sensitivity']:>7.3f}{s['specificity']:>7.3f}"
          f"{s['tp']:>6}{s['fp']:>5}{s['fn']:>5}{s['false_merges']:>14}{review_text}"
          f"{seconds_text}")


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
    for name in RATHBONE_SETS:
        labelled = rathbone_set(name)
        if isinstance(labelled, str):
            sys.exit(labelled)
        base += labelled.records
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
    if args.scale or args.scale_only:
        run_scale()
    return 0


if __name__ == "__main__":
    sys.exit(main())
