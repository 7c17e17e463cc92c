"""The whole workflow from records to report at scale: 10,000, 100,000 and 300,000 real
records perturbed for scale, given as an import (the search replaced by a tiny PubMed
window against the local E-utilities server), through `cmosynth run`.

Prints, per size: wall time of the first run, peak memory of the largest job (Snakemake's
benchmark files, max_rss), a no-op rerun's time, and an update that adds 1 % new records
(an import grown by 1 %), with how time grows from size to size. Targets: close to
linear; 100,000 records under 15 minutes; a no-op rerun under 5 s; the 1 % update under
10 % of the first run's time.

Run: `python bench/scale.py [--sizes 10000,100000,300000]`.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO / "tests"))


def base_records() -> list[dict]:
    """Real titles and abstracts: the eleven SYNERGY reviews and the co-production corpora."""
    from cmosynth.imports import read_records_file

    rows = []
    for path in sorted((DATA / "benchmarks" / "screening").glob("synergy_*/*.csv")):
        if not path.stem.endswith("_ids_official"):
            with open(path, encoding="utf-8", newline="") as handle:
                rows += [{"title": r["title"], "abstract": r["abstract"]}
                         for r in csv.DictReader(handle) if r["title"]]
    for name in ("autistic-participatory-metrics/participation_studies.bib",
                 "intervention-development-wos/savedrecs.bib"):
        rows += [{"title": r.get("title"), "abstract": r.get("abstract") or ""}
                 for r in read_records_file(DATA / "corpus" / name) if r.get("title")]
    return rows


def write_import(path: Path, base: list[dict], count: int, seed: int = 0) -> None:
    """`count` records as a CSV export: copies past the first round drop a tenth of their
    words and get another year, so no two are the same record."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["title", "abstract", "year", "journal", "authors"])
        for n in range(count):
            row = base[n % len(base)]
            title, abstract = row["title"], row["abstract"] or ""
            if n >= len(base):
                title = f"{title} ({n // len(base)})"
                abstract = " ".join(w for w in abstract.split() if rng.random() > 0.1)
            writer.writerow([title, abstract, 1990 + n % 35, f"Journal {n % 500}",
                             f"Author{n % 9973}, A.; Other{n % 7919}, B."])


def cmosynth_run(workdir: Path, topic: Path, env: dict, *extra) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run([str(Path(sys.executable).parent / "cmosynth"), "run", str(topic),
                           "--until", "2024-01-10", "--cores", "2", *extra], cwd=workdir,
                          env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1])
    return time.perf_counter() - start, done.stdout


def peak_job(topic_dir: Path) -> tuple[str, float]:
    """The job with the highest max_rss (MB) among Snakemake's benchmark files."""
    peaks = []
    for path in (topic_dir / "benchmarks").glob("*.tsv"):
        with open(path, encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
        if rows and rows[-1].get("max_rss") not in (None, "", "NA"):
            peaks.append((float(rows[-1]["max_rss"]), path.stem))
    rss, name = max(peaks)
    return name, rss / 1024


def stage_seconds(topic_dir: Path, since: float = 0.0) -> dict[str, float]:
    """Wall seconds of each job that ran after `since` (its benchmark file's mtime)."""
    out = {}
    for path in sorted((topic_dir / "benchmarks").glob("*.tsv")):
        if path.stat().st_mtime >= since:
            with open(path, encoding="utf-8") as handle:
                rows = list(csv.DictReader(handle, delimiter="\t"))
            if rows:
                out[path.stem] = float(rows[-1]["s"])
    return out


def one_size(count: int, base: list[dict], server_url: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        export = work / "export.csv"
        write_import(export, base, count)
        topic = work / "scale.yaml"
        topic.write_text(yaml.safe_dump({
            "name": "scale", "title": "Scale", "codebook": str(REPO / "config" / "codebooks"
                                                                / "coproduction.yaml"),
            "search": {"pubmed": {"query": "(co-production[tiab]) AND health[tiab]",
                                  "mindate": "2024/01/01"}, "imports": [str(export)]}}))
        env = {**os.environ, "NCBI_EUTILS_URL": server_url, "CMOSYNTH_NCBI_RATE": "50",
               "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        first, summary = cmosynth_run(work, topic, env)
        topic_dir = work / "outputs" / "scale"
        job, peak_gb = peak_job(topic_dir)
        first_stages = stage_seconds(topic_dir)
        noop, _ = cmosynth_run(work, topic, env)
        write_import(export, base, count + count // 100)
        started = time.time()
        update, _ = cmosynth_run(work, topic, env)
        return {"records": count, "first": first, "peak_job": job, "peak_gb": peak_gb,
                "noop": noop, "update": update, "summary": summary,
                "stages": first_stages, "update_stages": stage_seconds(topic_dir, started)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,300000")
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"shared data not found at {DATA}", file=sys.stderr)
        return 1
    from eutils_server import EutilsServer, clone_articles, load_real_articles

    articles = clone_articles(load_real_articles(DATA), 30, per_day=3)
    base = base_records()
    print(f"{len(base):,} real records as the base; the search: 30 records against the local "
          "E-utilities server")
    print(f"{'records':>10}{'first run s':>13}{'growth':>8}{'peak job':>18}{'peak GB':>9}"
          f"{'no-op s':>9}{'+1 % update s':>15}{'update/first':>14}")
    previous = None
    with EutilsServer(articles) as server:
        for size in (int(s) for s in args.sizes.split(",")):
            try:
                result = one_size(size, base, server.url)
            except RuntimeError as error:
                print(f"{size:>10,} failed: {error}")
                continue
            growth = (f"{result['first'] / previous['first']:.1f}x"
                      if previous else "")
            print(f"{size:>10,}{result['first']:>13.1f}{growth:>8}{result['peak_job']:>18}"
                  f"{result['peak_gb']:>9.2f}{result['noop']:>9.1f}{result['update']:>15.1f}"
                  f"{result['update'] / result['first']:>14.2f}", flush=True)
            stages = "; ".join(f"{name} {seconds:.1f}/{result['update_stages'].get(name, 0):.1f}"
                               for name, seconds in result["stages"].items())
            print(f"{'':>10}stage s, first/update: {stages}", flush=True)
            previous = result
    print("targets: 100,000 records < 900 s; no-op rerun < 5 s; +1 % update < 0.10 of the "
          "first run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
