"""Benchmark of screening prioritisation: our models against ASReview LAB's default.

On the SYNERGY sets in ../shared/data/benchmarks/screening (read in place), for each seed
the priors are one included and one excluded record drawn with that seed
(cmosynth.screen.simulate.sample_priors), the same for every model and for ASReview.
Measures (priors left out, as asreview-insights does):
  WSS@95   share of records saved at 95 % recall, minus 5 % (higher is better);
  R@10%    recall after screening 10 % of the records (higher is better);
  ATD      average number of records screened to find each relevant one (lower is better);
  time     seconds per simulation run.
Also: how the hypergeometric stopping rule tracked the true recall (where it first said
stop), the time to simulate a 2,000-record review, and what machine-made screening
includes, leaves for a reviewer and excludes on corpora on and off the default topic.

ASReview LAB runs from its own virtualenv (/work/bench-venvs/asreview, or $ASREVIEW_BIN)
as a subprocess: `asreview simulate DATA --prior-idx I J --seed S -o out.asreview`; its
screening order is read from the project file's results table.

Usage: python bench/screen.py [--seeds 5] [--models all] [--no-asreview]
"""

from __future__ import annotations

import argparse
import math
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

from cmosynth.screen.model import DEFAULT_MODEL, MODELS, get_model
from cmosynth.screen.simulate import read_labelled, sample_priors, simulate_order
from cmosynth.screen.stopping import first_stop

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data" / "benchmarks" / "screening"
SETS = {"Oud_2018": DATA / "synergy_Oud_2018" / "Oud_2018.csv",
        "Sep_2021": DATA / "synergy_Sep_2021" / "Sep_2021.csv"}
ASREVIEW_BIN = Path(os.environ.get("ASREVIEW_BIN", "/work/bench-venvs/asreview/bin/asreview"))
LABEL = "label_included"


def metrics(order_labels: list[int], n_priors: int) -> dict:
    """WSS@95, recall at 10 % and ATD of one screening order, priors excluded."""
    labels = np.asarray(order_labels[n_priors:], dtype=int)
    n_records, n_relevant = len(labels), int(labels.sum())
    found = np.cumsum(labels)
    n_for_95 = int(np.searchsorted(found, math.ceil(0.95 * n_relevant)) + 1)
    positions = np.flatnonzero(labels == 1) + 1
    return {
        "wss95": (n_records - n_for_95) / n_records - 0.05,
        "recall10": found[math.ceil(0.10 * n_records) - 1] / n_relevant,
        "atd": float(positions.mean()),
    }


def truncated_metrics(order_labels: list[int], n_priors: int, n_total: int) -> dict:
    """Metrics of an order that stops after the last relevant record (ASReview's default)."""
    padded = list(order_labels) + [0] * (n_total - len(order_labels))
    return metrics(padded, n_priors)


def run_ours(texts, labels, priors, model_name, seed) -> tuple[list[int], float]:
    start = time.perf_counter()
    order = simulate_order(texts, labels, priors, get_model(model_name), seed)
    return [s.label for s in order], time.perf_counter() - start


def run_asreview(path: Path, labels, priors, seed) -> tuple[list[int], float]:
    """ASReview's order of labels for the same priors and seed."""
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "out.asreview"
        start = time.perf_counter()
        done = subprocess.run(
            [str(ASREVIEW_BIN), "simulate", str(path), "--prior-idx", *map(str, priors),
             "--seed", str(seed), "-o", str(project)],
            capture_output=True, text=True, cwd=tmp)
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr else
                               f"exit {done.returncode}")
        with zipfile.ZipFile(project) as archive:
            archive.extract("results.db", tmp)
        with sqlite3.connect(Path(tmp) / "results.db") as db:
            rows = db.execute("SELECT r.dataset_row, res.label FROM results res "
                              "JOIN record r ON r.record_id = res.record_id "
                              "ORDER BY res.rowid").fetchall()
    # Priors first in the order we passed them, as in our simulation.
    by_row = dict(rows)
    rest = [label for row, label in rows if row not in priors]
    return [by_row[p] for p in priors] + rest, elapsed


def asreview_problem() -> str | None:
    if not ASREVIEW_BIN.exists():
        return (f"ASReview not found at {ASREVIEW_BIN}: create it with `python -m venv "
                f"/work/bench-venvs/asreview && /work/bench-venvs/asreview/bin/pip install "
                f"asreview` (or set ASREVIEW_BIN)")
    done = subprocess.run([str(ASREVIEW_BIN), "--version"], capture_output=True, text=True)
    if done.returncode != 0:
        return f"`asreview --version` failed: {done.stderr.strip()[-300:]}"
    return None


def stopping_track(order_labels: list[int]) -> tuple[int | None, float | None]:
    """Where the stopping rule first said stop, and the true recall there."""
    n_total, n_relevant = len(order_labels), sum(order_labels)
    stop = first_stop(order_labels, n_total, target_recall=0.95, confidence=0.95)
    if stop is None:
        return None, None
    return stop, sum(order_labels[:stop]) / n_relevant


def bench_set(name: str, path: Path, model_names: list[str], seeds: list[int],
              asreview: bool) -> dict:
    texts, labels = read_labelled(path, LABEL)
    print(f"\n== {name}: {len(labels)} records, {int(labels.sum())} included "
          f"({labels.mean():.1%}); seeds {seeds}")
    results: dict[str, list[dict]] = {}
    stops: list[tuple] = []
    for seed in seeds:
        priors = sample_priors(labels, seed)
        for model_name in model_names:
            order, elapsed = run_ours(texts, labels, priors, model_name, seed)
            results.setdefault(model_name, []).append({**metrics(order, 2), "time": elapsed})
            if model_name == DEFAULT_MODEL:
                stops.append((seed, *stopping_track(order)))
        if asreview:
            order, elapsed = run_asreview(path, labels, priors, seed)
            results.setdefault("asreview-elas_u4", []).append(
                {**truncated_metrics(order, 2, len(labels)), "time": elapsed})
    print(f"{'model':<20} {'WSS@95':>8} {'(min..max)':>14} {'R@10%':>7} {'ATD':>7} {'s/run':>7}")
    for model_name, runs in results.items():
        wss = [r["wss95"] for r in runs]
        mark = "  <- default" if model_name == DEFAULT_MODEL else ""
        print(f"{model_name:<20} {np.mean(wss):8.3f} {min(wss):6.3f}..{max(wss):6.3f} "
              f"{np.mean([r['recall10'] for r in runs]):7.3f} "
              f"{np.mean([r['atd'] for r in runs]):7.1f} "
              f"{np.mean([r['time'] for r in runs]):7.2f}{mark}")
    if "asreview-elas_u4" in results:
        ours = [r["wss95"] for r in results[DEFAULT_MODEL]]
        theirs = [r["wss95"] for r in results["asreview-elas_u4"]]
        print(f"per seed, {DEFAULT_MODEL} / ASReview:")
        for key, label, fmt in (("wss95", "WSS@95", ".3f"), ("recall10", "R@10%", ".3f"),
                                ("atd", "ATD", ".1f"), ("time", "s/run", ".2f")):
            pairs = zip(seeds, results[DEFAULT_MODEL], results["asreview-elas_u4"])
            print(f"  {label:<7}" + ", ".join(f"s{s}: {a[key]:{fmt}}/{b[key]:{fmt}}"
                                               for s, a, b in pairs))
        print(f"seed-mean WSS@95 ratio ours/ASReview: {np.mean(ours) / np.mean(theirs):.3f}")
    print(f"stopping rule (target 95 %, confidence 95 %) on {DEFAULT_MODEL} orders:")
    for seed, stop, recall in stops:
        if stop is None:
            print(f"  seed {seed}: never said stop (screened all {len(labels)})")
        else:
            print(f"  seed {seed}: said stop after {stop} of {len(labels)} "
                  f"({stop / len(labels):.1%}); true recall there {recall:.3f}")
    return results


def bench_large(seed: int = 0) -> None:
    """Time one simulation of a 2,000-record review: Oud twice (texts of the second copy
    marked so they are distinct records) plus Sep, cut to 2,000 records."""
    texts_oud, labels_oud = read_labelled(SETS["Oud_2018"], LABEL)
    texts_sep, labels_sep = read_labelled(SETS["Sep_2021"], LABEL)
    texts = texts_oud + [f"{t} copy" for t in texts_oud] + texts_sep
    labels = np.concatenate([labels_oud, labels_oud, labels_sep])
    texts, labels = texts[:2000], labels[:2000]
    priors = sample_priors(labels, seed)
    start = time.perf_counter()
    order = simulate_order(texts, labels, priors, get_model(DEFAULT_MODEL), seed)
    elapsed = time.perf_counter() - start
    print(f"\n== 2,000-record simulation (Oud + Oud again + Sep, first 2,000; "
          f"{int(labels.sum())} included), {DEFAULT_MODEL}, seed {seed}: {elapsed:.1f} s "
          f"({len(order)} records ordered; target < 60 s)")


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
        for path in sorted(DATA.glob("synergy_*/*.csv")):
            if not path.name.endswith("_ids_official.csv"):
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--models", default="all", help="comma-separated names or `all`")
    parser.add_argument("--no-asreview", action="store_true")
    args = parser.parse_args()
    missing = [str(p) for p in SETS.values() if not p.exists()]
    if missing:
        print(f"benchmark data not found: {', '.join(missing)} (expected ../shared/data "
              f"beside the repository)", file=sys.stderr)
        return 1
    model_names = list(MODELS) if args.models == "all" else args.models.split(",")
    asreview = not args.no_asreview
    if asreview and (problem := asreview_problem()):
        print(f"ASReview LAB not compared: {problem}")
        asreview = False
    elif asreview:
        version = subprocess.run([str(ASREVIEW_BIN), "--version"], capture_output=True,
                                 text=True).stdout.strip()
        print(f"comparing with {version} (default model elas_u4), same priors and seeds")
    for name, path in SETS.items():
        bench_set(name, path, model_names, list(range(args.seeds)), asreview)
    bench_large()
    bench_cold_start()
    return 0


if __name__ == "__main__":
    sys.exit(main())
