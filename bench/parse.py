"""Parse benchmark: throughput and peak memory of `parse_pubmed_xml` against Bio.Entrez.read.

Builds PubMed XML files of 10k and 100k records by repeating the real articles in
../shared/data (in a temporary folder, deleted afterwards), then parses each file in a
fresh process so that peak RSS belongs to that one parse. Bio.Entrez.read is timed on the
same bytes at the smaller size only: it holds the whole file as Python objects, so 100k
records would need several GB of memory. Prints the figures; asserts nothing.

    python bench/parse.py                  # 10,000 and 100,000 records
    python bench/parse.py --sizes 2000,20000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("CMOSYNTH_SHARED_DATA", REPO.parent / "shared" / "data"))
SOURCE_PATTERNS = ("medline/**/*.xml", "eutils/biopython/pubmed*.xml",
                   "eutils/biocommons_eutils/bodies/efetch_pubmed_*.xml")
DEFAULT_SIZES = (10_000, 100_000)
ENTREZ_MAX_RECORDS = 10_000
#: The DOCTYPE Bio.Entrez needs to find its bundled DTD (no network is used).
HEADER = (b'<?xml version="1.0" ?>\n<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD '
          b'PubMedArticle, 1st January 2025//EN" '
          b'"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">\n'
          b"<PubmedArticleSet>\n")
FOOTER = b"</PubmedArticleSet>\n"


def real_articles() -> list[bytes]:
    """Every PubmedArticle / PubmedBookArticle of the real samples, serialised."""
    from lxml import etree

    if not SHARED_DATA.is_dir():
        sys.exit(f"shared data not found at {SHARED_DATA}: the parse benchmark repeats the "
                 "real PubMed samples there (set CMOSYNTH_SHARED_DATA)")
    paths = sorted({p for pattern in SOURCE_PATTERNS for p in SHARED_DATA.glob(pattern)})
    articles = []
    for path in paths:
        for element in etree.parse(str(path)).getroot():
            if element.tag in ("PubmedArticle", "PubmedBookArticle"):
                element.tail = None
                articles.append(etree.tostring(element))
    return articles


def write_repeated(path: Path, articles: Sequence[bytes], records: int) -> None:
    """A PubmedArticleSet of `records` articles, cycling through the real ones."""
    with open(path, "wb") as out:
        out.write(HEADER)
        for index in range(records):
            out.write(articles[index % len(articles)])
            out.write(b"\n")
        out.write(FOOTER)


def run_worker(parser: str, path: Path) -> dict:
    """Parse `path` in a fresh interpreter; returns records, seconds and peak RSS."""
    done = subprocess.run([sys.executable, __file__, "--worker", parser, str(path)],
                          check=True, capture_output=True, text=True)
    return json.loads(done.stdout)


def worker(parser: str, path: str) -> None:
    """Runs inside the fresh interpreter: parse once, print the figures as JSON.

    Throughput is taken from CPU time, which other jobs on a shared machine do not
    inflate the way they inflate wall time; both are reported.
    """
    start, start_cpu = time.perf_counter(), time.process_time()
    if parser == "cmosynth":
        from cmosynth.pubmed.parser import parse_pubmed_xml

        records = sum(1 for _ in parse_pubmed_xml(path))
    elif parser == "cmosynth-count":
        from cmosynth.pubmed.parser import count_articles

        records = count_articles(path)
    else:
        from Bio import Entrez

        with open(path, "rb") as handle:
            result = Entrez.read(handle)
        records = len(result["PubmedArticle"]) + len(result["PubmedBookArticle"])
    cpu_seconds = time.process_time() - start_cpu
    wall_seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"records": records, "cpu_seconds": cpu_seconds,
                      "wall_seconds": wall_seconds, "peak_rss_kib": peak_kib}))


def row(size: int, file_mb: float, parser: str, figures: dict) -> str:
    rate = figures["records"] / figures["cpu_seconds"]
    return (f"{size:>9,} {file_mb:>9,.0f} {parser:<17} {rate:>11,.0f} "
            f"{figures['cpu_seconds']:>9.2f} {figures['wall_seconds']:>9.2f} "
            f"{figures['peak_rss_kib'] / 1024:>12,.1f}")


def main(argv: Sequence[str] | None = None) -> dict:
    """Run the benchmark and print its figures; `argv` as on the command line."""
    options = parse_args(list(argv or []))
    articles = real_articles()
    mean_kb = sum(map(len, articles)) / len(articles) / 1000
    print(f"parse benchmark: {len(articles)} real PubMed articles repeated "
          f"(mean {mean_kb:.1f} kB each); each parse in a fresh process")
    print(f"{'records':>9} {'file MB':>9} {'parser':<17} {'records/s':>11} "
          f"{'CPU s':>9} {'wall s':>9} {'peak RSS MB':>12}")
    results: dict[tuple[int, str], dict] = {}
    with tempfile.TemporaryDirectory(prefix="cmosynth-parse-bench-") as folder:
        for size in options.sizes:
            path = Path(folder) / f"pubmed_{size}.xml"
            write_repeated(path, articles, size)
            file_mb = path.stat().st_size / 1e6
            parsers = ["cmosynth", "cmosynth-count"]
            if size <= ENTREZ_MAX_RECORDS:
                parsers.append("Bio.Entrez.read")
            for parser in parsers:
                figures = run_worker(parser, path)
                if figures["records"] != size:
                    raise SystemExit(f"{parser} read {figures['records']} of {size} records")
                results[(size, parser)] = figures
                print(row(size, file_mb, parser, figures), flush=True)
            path.unlink()
    summary = summarise(results, options.sizes)
    for line in summary["lines"]:
        print(line)
    return summary


def summarise(results: dict[tuple[int, str], dict], sizes: Sequence[int]) -> dict:
    """The two headline ratios: speed against Bio.Entrez and memory growth with size."""
    lines, summary = [], {}
    compared = [s for s in sizes if (s, "Bio.Entrez.read") in results]
    if compared:
        size = max(compared)
        ours, theirs = results[(size, "cmosynth")], results[(size, "Bio.Entrez.read")]
        speedup = theirs["cpu_seconds"] / ours["cpu_seconds"]
        summary["speedup_vs_entrez"] = speedup
        lines.append(f"throughput parse_pubmed_xml / Bio.Entrez.read at {size:,} records: "
                     f"{speedup:.2f}x in CPU time (target >= 3x)")
    if len(sizes) >= 2:
        small, large = min(sizes), max(sizes)
        ratio = (results[(large, "cmosynth")]["peak_rss_kib"]
                 / results[(small, "cmosynth")]["peak_rss_kib"])
        summary["peak_rss_ratio"] = ratio
        lines.append(f"peak RSS of parse_pubmed_xml, {large:,} / {small:,} records: "
                     f"{ratio:.2f} (target: flat, close to 1)")
    if max(sizes) > ENTREZ_MAX_RECORDS:
        lines.append(f"Bio.Entrez.read not run above {ENTREZ_MAX_RECORDS:,} records: "
                     "it keeps the whole result in memory")
    summary["lines"] = lines
    return summary


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)),
                        type=lambda text: sorted(int(s) for s in text.split(",")),
                        help="comma-separated record counts (default: %(default)s)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3])
    else:
        main(sys.argv[1:])
