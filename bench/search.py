"""Harvest benchmark: 12,000 PubMed records from the local E-utilities server while it
enforces NCBI's 3 requests per second (no API key), then the parse benchmark.

Prints the requests sent, the wall time, the bound (requests / 3 per s), their ratio
(target <= 1.2) and the 429s received (target 0). Run: `python bench/search.py`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO / "tests"))

from cmosynth.config import load_topic
from cmosynth.pubmed.client import EutilsClient
from cmosynth.pubmed.run import search_topic
from eutils_server import EutilsServer, clone_articles, load_real_articles

RECORDS = 12_000
RATE = 3  # NCBI's limit without an API key
TOPIC = """\
name: harvest
title: Harvest benchmark
search:
  pubmed:
    query: '("co-production"[tiab] OR coproduction[tiab]) AND health'
    mindate: 2024/01/01
"""


def harvest(workdir: Path) -> None:
    articles = clone_articles(load_real_articles(DATA), RECORDS, per_day=40)
    until = max(a.entrez_date for a in articles)
    topic_path = workdir / "harvest.yaml"
    topic_path.write_text(TOPIC, "utf-8")
    topic = load_topic(topic_path)
    with EutilsServer(articles, rate_limit=RATE) as server:
        os.environ["NCBI_EUTILS_URL"] = server.url
        os.environ["NCBI_RATE_DIR"] = str(workdir / "ncbi-rate")
        for name in ("NCBI_API_KEY", "CMOSYNTH_NCBI_RATE"):
            os.environ.pop(name, None)
        client = EutilsClient()
        load_before = os.getloadavg()[0]
        start, cpu_start = time.perf_counter(), time.process_time()
        run_dir = search_topic(topic, workdir / "outputs", until, client=client)
        wall = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
        sent = len(server.requests)
        records = len((run_dir / "records.jsonl").read_bytes().splitlines())
        start = time.perf_counter()
        search_topic(topic, workdir / "outputs", until, client=client)
        replay = time.perf_counter() - start
        replay_sent = len(server.requests) - sent
        bound = sent / RATE
        print(f"harvest: {records:,} records (of {RECORDS:,}) in a window of "
              f"{(until - dt.date(2024, 1, 1)).days + 1} Entrez days, batch size "
              f"{topic['search']['pubmed']['batch_size']}")
        print(f"  requests sent            {sent}")
        print(f"  wall time                {wall:.2f} s")
        print(f"  bound (requests / {RATE}/s)  {bound:.2f} s")
        print(f"  wall / bound             {wall / bound:.3f}   (target <= 1.2)")
        print(f"  429s received            {server.status_count(429)}   (target 0)")
        print(f"  busiest 1-s window       {server.max_requests_in_window(1.0)} requests "
              f"(limit {RATE})")
        print(f"  records per second       {records / wall:,.0f}")
        print(f"  CPU of this process      {cpu:.2f} s (client, parser and the local server; "
              f"{os.cpu_count()} cores, load average {load_before:.1f} before the run)")
        print(f"replay of the same run: {replay_sent} requests, {replay:.2f} s")


def parse_benchmark() -> None:
    path = REPO / "bench" / "parse.py"
    if not path.exists():
        print("bench/parse.py not found; parse benchmark skipped")
        return
    spec = importlib.util.spec_from_file_location("bench_parse", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    print()
    module.main()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-parse", action="store_true",
                        help="harvest only; skip the (long) parse benchmark")
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"shared data not found at {DATA}: the benchmark clones real PubMed "
                 "records from ../shared/data next to the repository")
    with tempfile.TemporaryDirectory(prefix="cmosynth-bench-search-") as tmp:
        harvest(Path(tmp))
    if not args.no_parse:
        parse_benchmark()


if __name__ == "__main__":
    main()
