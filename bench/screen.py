"""Benchmark of screening prioritisation: cmosynth's models against ASReview LAB's default,
on the eleven SYNERGY reviews, with the default chosen by leaving one review out.

For each review and seed, the priors are one included and one excluded record drawn with
that seed (cmosynth.screen.simulate.sample_priors), the same for every model and for
ASReview. Measures (priors left out, as asreview-insights does):
  WSS@95   share of records saved at 95 % recall, minus 5 % (higher is better);
  WSS@100  share saved at 100 % recall (higher is better);
  R@10%    recall after screening 10 % of the records (higher is better);
  ATD      average number of records screened to find each relevant one (lower is better);
  time     seconds per simulation run.

Model choice by leave-one-review-out: for each review, the candidate with the best mean
WSS@95 over the other ten reviews is chosen and its figure on the review left out is
reported. A figure for a review on which the choice was made is never the result.

Also: how the hypergeometric stopping rule tracked the true recall (where it first said
stop), the time to simulate a 2,000-record review, what machine-made screening includes
on corpora on and off the default topic, and (--scale) time and peak memory of the
screening stage at 10,000 and 100,000 records.

ASReview LAB runs from its own virtualenv (/work/bench-venvs/asreview, or $ASREVIEW_BIN)
as a subprocess: `asreview simulate DATA --prior-idx I J --seed S -o out.asreview`; its
screening order is read from the project file's results table.

Runs are cached (--cache, default /work/bench-cache/screen) by review, seed, model and the
model's settings, so a rerun recomputes only what changed.

Usage: python bench/screen.py [--seeds 3] [--models candidates] [--no-asreview] [--jobs 2]
                              [--scale]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
import zipfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from cmosynth.screen.model import CANDIDATES, DEFAULT_MODEL, FEATURES, MODELS, get_model
from cmosynth.screen.simulate import read_labelled, sample_priors, simulate_order
from cmosynth.screen.stopping import recall_p_value

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data" / "benchmarks" / "screening"
ASREVIEW_BIN = Path(os.environ.get("ASREVIEW_BIN", "/work/bench-venvs/asreview/bin/asreview"))
ASREVIEW = "asreview-elas_u4"
LABEL = "label_included"


def reviews() -> dict[str, Path]:
    """Every SYNERGY review in the shared data, by name."""
    return {path.stem: path for path in sorted(DATA.glob("synergy_*/*.csv"))
            if not path.stem.endswith("_ids_official")}


def metrics(order_labels: list[int], n_priors: int) -> dict:
    """WSS@95, WSS@100, recall at 10 % and ATD of one screening order, priors excluded."""
    labels = np.asarray(order_labels[n_priors:], dtype=int)
    n_records, n_relevant = len(labels), int(labels.sum())
    found = np.cumsum(labels)
    n_for_95 = int(np.searchsorted(found, math.ceil(0.95 * n_relevant)) + 1)
    n_for_100 = int(np.searchsorted(found, n_relevant) + 1)
    positions = np.flatnonzero(labels == 1) + 1
    return {
        "wss95": (n_records - n_for_95) / n_records - 0.05,
        "wss100": (n_records - n_for_100) / n_records,
        "recall10": float(found[math.ceil(0.10 * n_records) - 1] / n_relevant),
        "atd": float(positions.mean()),
    }


def stopping_track(order_labels: list[int]) -> dict:
    """Where the stopping rule first said stop (checked after every 0.5 % of the records,
    as a reviewer who reruns the workflow now and then would), and the true recall there."""
    n_total, n_relevant = len(order_labels), sum(order_labels)
    step = max(1, n_total // 200)
    stop = next((n for n in range(step, n_total + 1, step)
                 if recall_p_value(order_labels[:n], n_total) < 0.05), None)
    if stop is None:
        return {"stop": None, "stop_recall": None}
    return {"stop": stop / n_total, "stop_recall": sum(order_labels[:stop]) / n_relevant}


def model_fingerprint(name: str) -> str:
    model = get_model(name)
    described = json.dumps([model.describe(), FEATURES[model.features][1], model.query],
                           sort_keys=True, default=str)
    return hashlib.sha256(described.encode()).hexdigest()[:12]


def run_job(review: str, path: str, seed: int, tool: str) -> dict:
    """One simulation: metrics, time, and (for our models) the stopping rule's track."""
    texts, labels = read_labelled(path, LABEL)
    priors = sample_priors(labels, seed)
    start = time.perf_counter()
    if tool == ASREVIEW:
        order = run_asreview(Path(path), priors, seed)
        elapsed = time.perf_counter() - start
        order = order + [0] * (len(labels) - len(order))  # ASReview stops after the last
        result = metrics(order, 2)
    else:
        steps = simulate_order(texts, labels, priors, get_model(tool), seed)
        elapsed = time.perf_counter() - start
        order = [s.label for s in steps]
        result = {**metrics(order, 2), **stopping_track(order)}
    return {"review": review, "seed": seed, "tool": tool, "time": elapsed, **result}


def run_asreview(path: Path, priors: list[int], seed: int) -> list[int]:
    """ASReview's order of labels for the same priors and seed (priors first)."""
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "out.asreview"
        done = subprocess.run(
            [str(ASREVIEW_BIN), "simulate", str(path), "--prior-idx", *map(str, priors),
             "--seed", str(seed), "-o", str(project)],
            capture_output=True, text=True, cwd=tmp)
        if done.returncode != 0:
            raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr else
                               f"exit {done.returncode}")
        with zipfile.ZipFile(project) as archive:
            archive.extract("results.db", tmp)
        with sqlite3.connect(Path(tmp) / "results.db") as db:
            rows = db.execute("SELECT r.dataset_row, res.label FROM results res "
                              "JOIN record r ON r.record_id = res.record_id "
                              "ORDER BY res.rowid").fetchall()
    by_row = dict(rows)
    rest = [label for row, label in rows if row not in priors]
    return [by_row[p] for p in priors] + rest


def asreview_problem() -> str | None:
    if not ASREVIEW_BIN.exists():
        return (f"ASReview not found at {ASREVIEW_BIN}: create it with `python -m venv "
                f"/work/bench-venvs/asreview && /work/bench-venvs/asreview/bin/pip install "
                f"asreview==3.0.8` (or set ASREVIEW_BIN)")
    done = subprocess.run([str(ASREVIEW_BIN), "--version"], capture_output=True, text=True)
    if done.returncode != 0:
        return f"`asreview --version` failed: {done.stderr.strip()[-300:]}"
    return None


class Cache:
    """Results by (review, seed, tool, fingerprint), one JSON line each."""

    def __init__(self, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "runs.jsonl"
        self.runs: dict[str, dict] = {}
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                run = json.loads(line)
                self.runs[run["key"]] = run

    @staticmethod
    def key(review: str, seed: int, tool: str, fingerprint: str) -> str:
        return f"{review}|{seed}|{tool}|{fingerprint}"

    def add(self, key: str, run: dict) -> None:
        run = {**run, "key": key}
        self.runs[key] = run
        with open(self.path, "a") as handle:
            handle.write(json.dumps(run) + "\n")


def collect(tools: list[str], seeds: list[int], cache: Cache, jobs: int) -> dict:
    """Every (review, seed, tool) run, from the cache or computed now."""
    fingerprints = {tool: ("3.0.8" if tool == ASREVIEW else model_fingerprint(tool))
                    for tool in tools}
    wanted = [(review, str(path), seed, tool) for review, path in reviews().items()
              for seed in seeds for tool in tools]
    todo = [w for w in wanted
            if Cache.key(w[0], w[2], w[3], fingerprints[w[3]]) not in cache.runs]
    if todo:
        print(f"running {len(todo)} simulations ({len(wanted) - len(todo)} cached), "
              f"{jobs} at a time", flush=True)
        # Largest reviews first, so the pool ends evenly.
        todo.sort(key=lambda w: -Path(w[1]).stat().st_size)
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = {pool.submit(run_job, *w): w for w in todo}
            for done, future in enumerate(futures, start=1):
                review, _, seed, tool = futures[future]
                run = future.result()
                cache.add(Cache.key(review, seed, tool, fingerprints[tool]), run)
                print(f"  [{done}/{len(todo)}] {review} seed {seed} {tool}: WSS@95 "
                      f"{run['wss95']:.3f} ({run['time']:.1f} s)", flush=True)
    table: dict = {}
    for review, _, seed, tool in wanted:
        run = cache.runs[Cache.key(review, seed, tool, fingerprints[tool])]
        table.setdefault(tool, {}).setdefault(review, []).append(run)
    return table


def seed_mean(runs: list[dict], key: str) -> float:
    values = [r[key] for r in runs if r.get(key) is not None]
    return float(np.mean(values)) if values else float("nan")


def leave_one_review_out(table: dict, candidates: list[str]) -> dict[str, str]:
    """For each review, the candidate with the best mean WSS@95 on the other reviews."""
    names = sorted(next(iter(table.values())))
    chosen = {}
    for held_out in names:
        others = [n for n in names if n != held_out]
        chosen[held_out] = max(candidates, key=lambda c: (
            np.mean([seed_mean(table[c][n], "wss95") for n in others]), c == DEFAULT_MODEL))
    return chosen


def print_tables(table: dict, candidates: list[str], asreview: bool) -> None:
    names = sorted(next(iter(table.values())))
    print("\n== WSS@95 by review, seed means (candidates; chosen by leaving one review out)")
    header = f"{'review':<20}" + "".join(f"{c[:18]:>20}" for c in candidates)
    print(header + (f"{'ASReview elas_u4':>20}" if asreview else ""))
    for name in names:
        row = f"{name:<20}" + "".join(f"{seed_mean(table[c][name], 'wss95'):>20.3f}"
                                      for c in candidates)
        if asreview:
            row += f"{seed_mean(table[ASREVIEW][name], 'wss95'):>20.3f}"
        print(row)
    means = {c: np.mean([seed_mean(table[c][n], "wss95") for n in names]) for c in candidates}
    print(f"{'mean':<20}" + "".join(f"{means[c]:>20.3f}" for c in candidates)
          + (f"{np.mean([seed_mean(table[ASREVIEW][n], 'wss95') for n in names]):>20.3f}"
             if asreview else ""))

    chosen = leave_one_review_out(table, candidates)
    on_all = max(candidates, key=lambda c: (means[c], c == DEFAULT_MODEL))
    print(f"\nchosen on all eleven reviews: {on_all}; shipped default: {DEFAULT_MODEL}"
          f"{'' if on_all == DEFAULT_MODEL else '  (they differ)'}")
    print("\n== leave one review out: the candidate chosen on the other ten, on the review "
          "left out")
    columns = ("wss95", "wss100", "recall10", "atd", "time")
    print(f"{'review':<20}{'chosen':<26}" + "".join(f"{c:>9}" for c in columns)
          + ("   ASReview: " + " ".join(f"{c:>7}" for c in columns) + "   won" if asreview else ""))
    held_out_runs, wins = {}, 0
    for name in names:
        runs = table[chosen[name]][name]
        held_out_runs[name] = runs
        line = f"{name:<20}{chosen[name][:25]:<26}" + "".join(
            f"{seed_mean(runs, c):>9.3f}" if c != "atd" and c != "time"
            else f"{seed_mean(runs, c):>9.1f}" for c in columns)
        if asreview:
            theirs = table[ASREVIEW][name]
            won = seed_mean(runs, "wss95") >= seed_mean(theirs, "wss95")
            wins += won
            line += "   " + " ".join(
                f"{seed_mean(theirs, c):>8.3f}" if c not in ("atd", "time")
                else f"{seed_mean(theirs, c):>8.1f}" for c in columns) + (
                "   yes" if won else "   no")
        print(line)
    mean_line = f"{'mean':<20}{'':<26}" + "".join(
        f"{np.mean([seed_mean(held_out_runs[n], c) for n in names]):>9.3f}" for c in columns)
    if asreview:
        mean_line += "   " + " ".join(
            f"{np.mean([seed_mean(table[ASREVIEW][n], c) for n in names]):>8.3f}"
            for c in columns) + f"   {wins}/{len(names)}"
    print(mean_line)

    if DEFAULT_MODEL in table:
        print(f"\n== stopping rule (target 95 %, confidence 95 %) on {DEFAULT_MODEL} orders")
        print(f"{'review':<20}{'said stop at (share screened)':>32}{'true recall there':>20}")
        recalls, never = [], 0
        for name in names:
            runs = table[DEFAULT_MODEL][name]
            stops = [r["stop"] for r in runs if r.get("stop") is not None]
            rec = [r["stop_recall"] for r in runs if r.get("stop_recall") is not None]
            never += sum(1 for r in runs if r.get("stop") is None)
            recalls += rec
            print(f"{name:<20}{(f'{np.mean(stops):.3f}' if stops else 'never'):>32}"
                  f"{(f'{np.mean(rec):.3f} (min {min(rec):.3f})' if rec else '-'):>20}")
        if recalls:
            print(f"over {len(recalls)} runs that stopped: true recall mean "
                  f"{np.mean(recalls):.3f}, min {min(recalls):.3f}, at or above 0.95 in "
                  f"{np.mean(np.array(recalls) >= 0.95):.0%}; never stopped: {never}")


def bench_large(seed: int = 0) -> None:
    """Time one simulation of a 2,000-record review: the first 2,000 records of Smid_2020."""
    texts, labels = read_labelled(reviews()["Smid_2020"], LABEL)
    texts, labels = texts[:2000], labels[:2000]
    priors = sample_priors(labels, seed)
    start = time.perf_counter()
    order = simulate_order(texts, labels, priors, get_model(DEFAULT_MODEL), seed)
    elapsed = time.perf_counter() - start
    print(f"\n== 2,000-record simulation (Smid_2020, first 2,000; {int(labels.sum())} "
          f"included), {DEFAULT_MODEL}, seed {seed}: {elapsed:.1f} s ({len(order)} records "
          f"ordered; target < 60 s)")


def bench_cold_start() -> None:
    """Machine-made screening on the default topic: what the topicality rule includes,
    leaves for a reviewer and excludes, on corpora on and off the topic."""
    import csv as csv_module
    from collections import Counter

    from cmosynth.config import load_topic
    from cmosynth.imports import read_records_file
    from cmosynth.screen.topicality import CANNOT_TELL, OFF_TOPIC, ON_TOPIC, parse_query, topicality

    shared = REPO.parent / "shared" / "data"
    topic = load_topic(REPO / "config" / "topics" / "coproduction.yaml")
    tree = parse_query(topic["search"]["pubmed"]["query"])

    def synergy() -> list[dict]:
        records = []
        for path in reviews().values():
            with open(path, encoding="utf-8", newline="") as handle:
                records += [{"title": r["title"], "abstract": r["abstract"]}
                            for r in csv_module.DictReader(handle)]
        return records

    def medline() -> list[dict]:
        records = []
        for path in sorted((shared / "medline").rglob("*.xml")):
            try:
                records += list(read_records_file(path))
            except Exception:  # noqa: BLE001 - a few files are not PubMed article sets
                continue
        return records

    corpus = shared / "corpus"
    sets = {
        "co-production: participation_studies.bib": lambda: list(read_records_file(
            corpus / "autistic-participatory-metrics" / "participation_studies.bib")),
        "intervention development (WoS)": lambda: list(read_records_file(
            corpus / "intervention-development-wos" / "savedrecs.bib")),
        "unrelated: corpus_autism_research.bib": lambda: list(read_records_file(
            corpus / "autistic-participatory-metrics" / "corpus_autism_research.bib")),
        "shared medline records": medline,
        "SYNERGY, eleven reviews (all off topic)": synergy,
    }
    print("\n== machine-made screening on the default topic: the topic's query on each "
          "record's title and abstract (include), index terms only / no abstract (reviewer), "
          "otherwise exclude")
    print(f"{'corpus':<44}{'records':>8}{'included':>14}{'for reviewer':>16}{'excluded':>14}")
    for name, load in sets.items():
        try:
            records = load()
        except (OSError, ValueError) as error:
            print(f"{name:<44} not measured: {error}")
            continue
        counts = Counter(topicality(tree, r).verdict for r in records)
        n = max(len(records), 1)
        cells = [f"{counts[v]} ({counts[v] / n:.3f})".rjust(width)
                 for v, width in ((ON_TOPIC, 14), (CANNOT_TELL, 16), (OFF_TOPIC, 14))]
        print(f"{name:<44}{len(records):>8}{''.join(cells)}")


def scale_worker(count: int, machine_made: bool) -> None:
    """Screen `count` records (SYNERGY texts, varied so none repeats), with 200 reviewer
    decisions or none (machine-made: cold start and the topic's query), in this process;
    print time and peak memory as JSON."""
    import csv as csv_module

    import yaml

    from cmosynth.config import load_topic
    from cmosynth.files import write_jsonl
    from cmosynth.records import new_record
    from cmosynth.screen import screen_topic

    base = []
    for path in reviews().values():
        with open(path, encoding="utf-8", newline="") as handle:
            base += [(r["title"], r["abstract"], r[LABEL]) for r in csv_module.DictReader(handle)]
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        records, decisions = [], []
        for n in range(count):
            title, abstract, label = base[n % len(base)]
            words = abstract.split()
            if n >= len(base) and words:  # drop a few words so copies differ
                keep = rng.random(len(words)) > 0.1
                abstract = " ".join(w for w, k in zip(words, keep) if k)
            record = new_record("scale", source_id=str(n), title=title, abstract=abstract,
                                language="eng", year=2020)
            record.update(duplicate_of=None, dup_rule=None, dup_score=None)
            records.append(record)
            if n < 200 and not machine_made:
                decisions.append(f"{record['record_id']},{'include' if label == '1' else 'exclude'},,a")
        if decisions and not any(",include," in d for d in decisions):
            decisions[0] = decisions[0].replace(",exclude,", ",include,")
        write_jsonl(tmp / "outputs" / "scale" / "dedup" / "records.jsonl", records)
        (tmp / "decisions.csv").write_text("record_id,decision,reason,reviewer\n"
                                           + "\n".join(decisions) + "\n")
        default_topic = load_topic(REPO / "config" / "topics" / "coproduction.yaml")
        (tmp / "scale.yaml").write_text(yaml.safe_dump({
            "name": "scale", "title": "scale", "codebook": default_topic["codebook"],
            "search": {"pubmed": {"query": default_topic["search"]["pubmed"]["query"],
                                  "mindate": "2000"}},
            "screen": {"decisions": str(tmp / "decisions.csv")} if decisions else {}}))
        topic = load_topic(tmp / "scale.yaml")
        del records
        start = time.perf_counter()
        screen_topic(topic, outputs=tmp / "outputs")
        seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    print(json.dumps({"records": count, "seconds": seconds, "peak_rss_gb": peak}))


def run_scale(sizes=(10_000, 100_000)) -> None:
    print(f"\n== screening stage at scale ({DEFAULT_MODEL}, default topic's query and "
          f"codebook; SYNERGY texts repeated with words dropped; one process per run; peak "
          f"includes the records; target < 4 GB at 100,000)")
    print(f"{'records':>10}  {'mode':<34}{'seconds':>10}{'peak RSS GB':>13}")
    for size in sizes:
        for mode in ("200 reviewer decisions", "machine-made (no decision)"):
            flags = ["--machine-made"] if mode.startswith("machine") else []
            done = subprocess.run([sys.executable, __file__, "--scale-worker", str(size),
                                   *flags], capture_output=True, text=True)
            if done.returncode != 0:
                print(f"{size:>10,}  {mode:<34}failed: {done.stderr.strip()[-500:]}")
                continue
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"{size:>10,}  {mode:<34}{figures['seconds']:>10.1f}"
                  f"{figures['peak_rss_gb']:>13.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--models", default="candidates",
                        help="comma-separated names, `candidates` or `all`")
    parser.add_argument("--no-asreview", action="store_true")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=Path("/work/bench-cache/screen"))
    parser.add_argument("--scale", action="store_true", help="also 10,000 and 100,000 records")
    parser.add_argument("--scale-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--scale-worker", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--machine-made", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scale_worker:
        scale_worker(args.scale_worker, args.machine_made)
        return 0
    if not reviews():
        print(f"benchmark data not found in {DATA} (expected ../shared/data beside the "
              f"repository)", file=sys.stderr)
        return 1
    if args.scale_only:
        run_scale()
        return 0
    candidates = (list(CANDIDATES) if args.models == "candidates" else list(MODELS)
                  if args.models == "all" else args.models.split(","))
    asreview = not args.no_asreview
    if asreview and (problem := asreview_problem()):
        print(f"ASReview LAB not compared: {problem}")
        asreview = False
    elif asreview:
        version = subprocess.run([str(ASREVIEW_BIN), "--version"], capture_output=True,
                                 text=True).stdout.strip()
        print(f"comparing with {version} (default model elas_u4), same priors and seeds")
    tools = candidates + ([ASREVIEW] if asreview else [])
    table = collect(tools, list(range(args.seeds)), Cache(args.cache), args.jobs)
    print_tables(table, candidates, asreview)
    bench_large()
    bench_cold_start()
    if args.scale:
        run_scale()
    return 0


if __name__ == "__main__":
    sys.exit(main())
