"""A PubMed search of 12,000 records through a faulty network, against a clean run.

The local E-utilities server (tests/eutils_server.py) holds 12,000 clones of real PubMed
records (../shared/data), 40 a day, so the search is split into date slices and paged
in batches as a real one is. It is run once without faults, then with a share of the
requests failing at random (429, 500, 502, 503, connection resets, stalls past the
client's read timeout, slow answers, HTTP 200 with <ERROR>, expired WebEnvs, truncated
XML), seeded.

Prints, per fault rate: faults injected by kind, the client's retries, wall time
relative to the clean run (mean and worst of the seeded runs; target: at most 2x at
15 %), and records lost or changed
(target: 0, i.e. records.jsonl byte-identical to the clean run's).

The client runs with its defaults (exponential backoff from 1 s with full jitter, at
most 6 retries) except the read timeout, 5 s instead of 30 s so that a stall costs
5 s; the rate limit is raised to 50 requests/s, as in the tests (the server is local).

Run: `python bench/faults.py [--records 12000] [--rates 0.05,0.15,0.30] [--trials 5]`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO / "tests"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=12_000)
    parser.add_argument("--rates", default="0.05,0.15,0.30")
    parser.add_argument("--seed", type=int, default=0, help="first seed")
    parser.add_argument("--trials", type=int, default=5, help="seeded runs per fault rate")
    args = parser.parse_args()
    if not (DATA / "medline").exists():
        print(f"skipped: {DATA} is absent (the server clones real records from it)")
        return 0

    from cmosynth.config import load_topic
    from cmosynth.pubmed.client import EutilsClient
    from cmosynth.pubmed.run import search_topic
    from eutils_server import EutilsServer, clone_articles, load_real_articles

    articles = clone_articles(load_real_articles(DATA), args.records, per_day=40)
    until = articles[-1].entrez_date
    with tempfile.TemporaryDirectory() as temporary, EutilsServer(articles) as server:
        folder = Path(temporary)
        os.environ.update(NCBI_EUTILS_URL=server.url, NCBI_RATE_DIR=str(folder / "rate"),
                          CMOSYNTH_NCBI_RATE="50")
        topic_path = folder / "faults.yaml"
        topic_path.write_text(yaml.safe_dump({
            "name": "faults", "title": "Searching through faults",
            "search": {"pubmed": {"query": "co-production[tiab]", "mindate": "2024/01/01"}}}))
        topic = load_topic(topic_path)

        def search(name: str) -> tuple[float, bytes, EutilsClient]:
            client = EutilsClient(timeout=5.0)
            started = time.perf_counter()
            run = search_topic(topic, folder / name, until, client=client)
            return time.perf_counter() - started, (run / "records.jsonl").read_bytes(), client

        clean_seconds, clean_records, clean_client = search("clean")
        requests = clean_client.stats["requests"]
        print(f"PubMed search of {args.records:,} records ({requests} requests when clean): "
              f"clean run {clean_seconds:.1f} s")
        for rate in (float(r) for r in args.rates.split(",")):
            injected, retries, times, lost, identical = {}, 0, [], 0, 0
            for seed in range(args.seed, args.seed + args.trials):
                server.injected.clear()
                server.random_faults(rate, seed=seed, stall_seconds=6.0, slow_seconds=1.0)
                seconds, records, client = search(f"faults-{rate}-{seed}")
                server.clear_faults()
                for kind, n in server.injected.items():
                    injected[kind] = injected.get(kind, 0) + n
                retries += client.stats["retries"]
                times.append(seconds)
                lost += max(len(clean_records.splitlines()) - len(records.splitlines()), 0)
                identical += records == clean_records
            kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(injected.items()))
            mean = sum(times) / len(times)
            print(f"  {rate:.0%} of requests failing, {args.trials} seeded runs: "
                  f"{sum(injected.values())} faults ({kinds}); {retries} retries; "
                  f"mean {mean:.1f} s = {mean / clean_seconds:.2f}x the clean run, worst "
                  f"{max(times) / clean_seconds:.2f}x (target <= 2x at 15 %); records lost: "
                  f"{lost}; runs identical to the clean run: {identical} of {args.trials}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
