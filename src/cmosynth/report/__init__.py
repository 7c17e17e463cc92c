"""The report stage: PRISMA 2020 flow (CSV and SVG), a RAMESES-ordered HTML report,
a workbook of every table, and the included records as RIS.

Everything is read from the files earlier stages wrote (their contracts), so the report
can be rebuilt at any time without rerunning a stage.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
from collections import Counter
from pathlib import Path

import jinja2

from cmosynth import __version__
from cmosynth.config import holds_nothing
from cmosynth.dedup.match import RULE_DESCRIPTIONS
from cmosynth.errors import InputError
from cmosynth.extract.codebook import Codebook, load_codebook
from cmosynth.extract.coding import CONFLICT_METHOD, REVIEWER_METHOD
from cmosynth.files import atomic_write, read_csv_rows
from cmosynth.records import read_records
from cmosynth.report.evidence import ROWS_SHOWN, heatmap, labels, theory_tables, write_cmoc_table
from cmosynth.report.flow_svg import render_flow_svg
from cmosynth.report.prisma import (PrismaCounts, new_in_latest_run, prisma_counts,
                                    read_search_logs, write_counts_json, write_prisma_csv)
from cmosynth.report.workbook import write_review_workbook

log = logging.getLogger("cmosynth.report")

REPORT_FILES = ("index.html", "prisma.svg", "PRISMA.csv", "prisma_counts.json", "review.xlsx",
                "new_records.csv", "cmoc_table.csv", "included.ris")


def report_topic(topic: dict, outputs: Path) -> Path:
    """Write every report file for `topic` under `<outputs>/<name>/report/`."""
    topic_dir = Path(outputs) / topic["name"]
    report_dir = topic_dir / "report"
    counts = prisma_counts(topic_dir)
    write_prisma_csv(counts, report_dir / "PRISMA.csv")
    write_counts_json(counts, report_dir / "prisma_counts.json")
    flow_svg = render_flow_svg(counts)
    with atomic_write(report_dir / "prisma.svg") as handle:
        handle.write(flow_svg)

    included = list(read_records(topic_dir / "screen" / "included.jsonl"))
    _write_included_ris(included, report_dir / "included.ris")
    write_new_records(topic_dir, report_dir / "new_records.csv")
    context = _report_context(topic, topic_dir, counts, included, flow_svg)
    write_cmoc_table(report_dir / "cmoc_table.csv", context["theories"], context["tables"])
    with atomic_write(report_dir / "index.html") as handle:
        handle.write(_environment().get_template("index.html.j2").render(**context))
    write_review_workbook(topic_dir, counts, report_dir / "review.xlsx")
    write_manifest(topic, topic_dir, counts)
    log.info("report written to %s (%d included, %d CMOCs)", report_dir, counts.included,
             context["n_cmocs"])
    return report_dir


#: The libraries whose versions decide what a run produces.
MANIFEST_PACKAGES = ("cmosynth", "snakemake", "requests", "lxml", "biopython", "rapidfuzz",
                     "numpy", "scipy", "scikit-learn", "pandas", "jsonschema", "pyyaml",
                     "jinja2", "xlsxwriter", "onnxruntime", "tokenizers")


def _sha256(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def _role_model() -> dict | None:
    """The shipped sentence-role model: its method and the hash of its weights."""
    from cmosynth.extract.encoder import MODEL_DIR

    path = MODEL_DIR / "meta.json"
    if not path.exists():
        return None
    meta = json.loads(path.read_text("utf-8"))
    return {"method": meta.get("method"), "sha256": (meta.get("onnx") or {}).get("sha256")}


def write_manifest(topic: dict, topic_dir: Path, counts: PrismaCounts) -> Path:
    """outputs/<topic>/manifest.json: what it takes to reproduce this review elsewhere:
    the topic and codebook (with hashes), the package and dependency versions, every
    search run, the shipped role model and the counts."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    topic_path, codebook = Path(topic.get("_path", "")), Path(topic["codebook"])
    manifest = {
        "topic": {"name": topic["name"], "file": str(topic_path),
                  "sha256": _sha256(topic_path) if topic.get("_path") else None},
        "codebook": {"file": str(codebook), "sha256": _sha256(codebook)},
        "versions": {name: installed(name) for name in MANIFEST_PACKAGES},
        "role_model": _role_model(),
        "search_runs": [{"run": folder.name, "window": entry.get("window"),
                         "query_hash": entry.get("query_hash"), "count": entry.get("count"),
                         "retrieved": entry.get("records_retrieved"),
                         "finished": entry.get("finished"), "version": entry.get("version")}
                        for folder, entry in read_search_logs(topic_dir)],
        "imports": [{"file": str(p), "sha256": _sha256(Path(p))}
                    for p in topic["search"].get("imports", [])],
        "counts": json.loads((topic_dir / "report" / "prisma_counts.json").read_text("utf-8"))
        if (topic_dir / "report" / "prisma_counts.json").exists() else None,
    }
    path = topic_dir / "manifest.json"
    with atomic_write(path) as handle:
        json.dump(manifest, handle, indent=2, sort_keys=True)
        handle.write("\n")
    return path


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("cmosynth.report", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters["thousands"] = lambda n: f"{int(n or 0):,}"
    return env


def _write_included_ris(records: list[dict], path: Path) -> None:
    from cmosynth.imports import write_records_file

    write_records_file(path, records, format="ris")



def _search_runs(topic_dir: Path) -> list[dict]:
    runs = []
    for folder, entry in read_search_logs(topic_dir):
        window = entry.get("window") or {}
        runs.append({
            "name": folder.name,
            "database": entry.get("database", "PubMed"),
            "query": entry.get("query", ""),
            "query_translation": entry.get("query_translation", ""),
            "date_type": entry.get("date_field") or entry.get("date_type", "edat"),
            "window": f"{window.get('mindate', '?')} to {window.get('maxdate', '?')}",
            "count": entry.get("count", 0),
            "retrieved": entry.get("records_retrieved", 0),
            "slices": len(entry.get("slices") or []),
            "run_at": entry.get("finished", ""),
            "version": entry.get("version", ""),
        })
    return runs


def _new_in_latest_run(topic_dir: Path, included: list[dict]) -> dict | None:
    """What the latest search run added to a living review: records whose PMID no earlier
    run of the same query retrieved, and which of them were included. None for a first run."""
    update = new_in_latest_run(topic_dir)
    if update is None:
        return None
    entry, new = update
    included_new = sorted((r for r in included if r.get("pmid") in new),
                          key=lambda r: r["record_id"])
    return {"run": entry["run"], "until": entry["window"]["maxdate"], "new_records": len(new),
            "refreshed": (entry.get("revisions") or {}).get("refreshed", 0),
            "included": [{"title": r.get("title") or "", "cite": _cite(r, r["record_id"])}
                         for r in included_new]}


NEW_RECORD_COLUMNS = ("record_id", "pmid", "title", "year", "journal", "decision",
                      "decided_by", "exclusion_reason")


def write_new_records(topic_dir: Path, path: Path) -> int:
    """report/new_records.csv: the records the latest run of a living review added, with
    what screening decided (header only after a first run)."""
    update = new_in_latest_run(topic_dir)
    new = update[1] if update else set()
    screening = {row["record_id"]: row for row in read_csv_rows(topic_dir / "screen" / "screening.csv")}
    rows = []
    for record in read_records(topic_dir / "dedup" / "records.jsonl"):
        if record.get("pmid") in new and record["record_id"] in screening:
            row = screening[record["record_id"]]
            rows.append({"record_id": record["record_id"], "pmid": record["pmid"],
                         "title": record.get("title") or "", "year": record.get("year") or "",
                         "journal": record.get("journal") or "", "decision": row["decision"],
                         "decided_by": row["decided_by"],
                         "exclusion_reason": row["exclusion_reason"]})
    with atomic_write(path, newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=NEW_RECORD_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(sorted(rows, key=lambda r: r["record_id"]))
    return len(rows)


def _screen_summary(topic_dir: Path) -> dict:
    """What the report says about screening, from screen/summary.json."""
    path = topic_dir / "screen" / "summary.json"
    summary = json.loads(path.read_text("utf-8")) if path.exists() else {}
    stopping = summary.get("stopping_rule") or {}
    agreement = summary.get("agreement") or {}
    kappas = [f"{' and '.join(pair['reviewers'])}: {pair['cohen_kappa']:.2f}"
              for pair in agreement.get("pairs", []) if pair.get("cohen_kappa") is not None]
    return {
        "machine_made": bool(summary.get("machine_made")),
        "machine_made_note": summary.get("machine_made_statement") or "",
        "model": (summary.get("model") or {}).get("name"),
        "reviewers": summary.get("reviewers") or [],
        "kappa": "; ".join(kappas),
        "conflicts": agreement.get("conflicts", 0),
        "stopping": stopping.get("sentence", ""),
    }


def _dedup_summary(topic_dir: Path) -> dict:
    """Duplicates linked by each rule, and the pairs left for a reviewer, so that a
    reviewer sees which rule merged what and can check a sample of each."""
    by_rule: Counter[str] = Counter()
    for record in read_records(topic_dir / "dedup" / "records.jsonl"):
        if record.get("duplicate_of"):
            by_rule[record.get("dup_rule") or "linked"] += 1
    review = topic_dir / "dedup" / "pairs_to_review.csv"
    return {"by_rule": [(rule, RULE_DESCRIPTIONS.get(rule, ""), n)
                        for rule, n in sorted(by_rule.items(), key=lambda x: (-x[1], x[0]))],
            "pairs_to_review": len(read_csv_rows(review)) if review.exists() else 0}


def _codebook(topic: dict) -> Codebook | None:
    path = Path(topic["codebook"])
    return load_codebook(path) if path.exists() else None


def _characteristics(included: list[dict]) -> dict:
    years = sorted(r["year"] for r in included if r.get("year"))
    designs = Counter(t for r in included for t in (r.get("publication_types") or []))
    journals = Counter(r["journal"] for r in included if r.get("journal"))
    return {
        "years": f"{years[0]}-{years[-1]} (median {years[len(years) // 2]})" if years else "",
        "designs": sorted(designs.items(), key=lambda kv: (-kv[1], kv[0]))[:12],
        "journals": sorted(journals.items(), key=lambda kv: (-kv[1], kv[0]))[:10],
    }


def _theories(topic_dir: Path, codebook: Codebook | None) -> list[dict]:
    """Each theory's status row with its statement, the concepts that refine it by label,
    and its counts in words."""
    statements = {t.id: t.statement for t in codebook.theories} if codebook else {}
    theories = []
    for row in read_csv_rows(topic_dir / "synthesis" / "theory_status.csv"):
        set_aside = [r for r in (row.get("set_aside_records") or "").split(";") if r]
        theories.append({
            **row,
            "statement": statements.get(row["theory_id"], ""),
            "refinements": labels(row.get("refining_concepts") or "", codebook),
            "contesting": [r for r in row["contesting_records"].split(";") if r],
            "machine_cmocs": int(row.get("machine_cmocs") or 0),
            "reviewer_cmocs": int(row.get("reviewer_cmocs") or 0),
            "set_aside": set_aside,
            "reasons_list": [r for r in row["reasons"].split(" / ") if r],
        })
    return theories


def _coder_in_words(cmo_rows: list[dict], sentences: list[dict]) -> str:
    """How sentences got their roles, in plain words, with the coder's held-out figure."""
    methods = {r.get("method", "") for r in sentences} | {r.get("method", "") for r in cmo_rows}
    parts = {part for method in methods for part in method.split("+") if part}
    if any(p.startswith("minilm-onnx") for p in parts):
        from cmosynth.extract.encoder import MODEL_DIR

        meta = json.loads((MODEL_DIR / "meta.json").read_text("utf-8"))
        blend = next((v for k, v in meta.get("figures", {}).items() if k.startswith("blend")), {})
        test = blend.get("test", {})
        held_out = (" Trained without one kind of text and scored on it, in turn for four "
                    "kinds (implementation science, feasibility studies, digital health, "
                    "autism and services research), it reaches sentence-role macro F1 "
                    f"{sum(test.values()) / len(test):.2f} on average (the model card shipped "
                    "with cmosynth gives the figures)." if test else "")
        trained = meta.get("trained_on", {})
        return (f"Each sentence's realist roles were coded by a transformer "
                f"({meta.get('base_model', 'all-MiniLM-L6-v2')}, fine-tuned on "
                f"{trained.get('sentences', 0):,} sentences of {trained.get('abstracts', 0)} "
                "abstracts labelled under a written realist guideline) blended with a lexical "
                f"model and cue rules.{held_out}")
    if "model-v3" in parts:
        return ("Each sentence's realist roles were coded by a lexical model (logistic "
                "regressions over words and word pieces) blended with cue rules.")
    if parts & {"rules-v1"}:
        return "Each sentence's realist roles were coded by cue rules alone."
    return "No sentence was coded."


def _topic_relative(path: str | None, topic: dict) -> str:
    """A path as the topic names it: relative to the topic file's folder where possible."""
    if not path:
        return ""
    base = Path(topic["_path"]).resolve().parent if topic.get("_path") else Path.cwd()
    try:
        return os.path.relpath(Path(path).resolve(), base)
    except ValueError:          # another drive
        return Path(path).name


def _coding_summary(topic_dir: Path) -> dict | None:
    """How many sentences reviewers coded (extract.coding), of how many, in how many
    records, and how reviewers who coded the same sentences agree
    (extract/coding_agreement.json); None without a sentence table."""
    sentences = read_csv_rows(topic_dir / "extract" / "sentences.csv")
    if not sentences:
        return None
    reviewed = [r for r in sentences if r.get("method") in (REVIEWER_METHOD, CONFLICT_METHOD)]
    path = topic_dir / "extract" / "coding_agreement.json"
    agreement = json.loads(path.read_text("utf-8")) if path.exists() else {}
    pairs = [f"{' and '.join(pair['reviewers'])}: macro F1 {_two_places(pair['macro_f1'])} "
             f"over {pair['sentences_both_coded']} sentences (Cohen's kappa "
             + ", ".join(f"{role} {_two_places(kappa)}"
                         for role, kappa in pair["cohen_kappa"].items()) + ")"
             for pair in agreement.get("pairs", [])]
    coder = agreement.get("coder")
    interval = (coder or {}).get("macro_f1_95")
    estimate = (f"macro F1 {_two_places(coder['macro_f1'])}"
                + (f" (95 % interval {interval[0]:.2f} to {interval[1]:.2f}, resampling "
                   "records)" if interval else "")
                + f" on the {coder['sentences']} sentences of {coder['records']} records "
                "reviewers coded; per role F1 "
                + ", ".join(f"{role} {_two_places(f1)}" for role, f1 in coder["f1"].items())
                ) if coder else ""
    conflicts = agreement.get("conflicts", 0)
    settled = agreement.get("conflicts_settled_by_consensus", 0)
    return {"sentences": len(sentences), "reviewed": len(reviewed),
            "records": len({r["record_id"] for r in sentences}),
            "reviewed_records": len({r["record_id"] for r in reviewed}),
            "reviewers": agreement.get("reviewers", []), "agreement": "; ".join(pairs),
            "coder": estimate,
            "conflicts": conflicts, "settled": settled, "open_conflicts": conflicts - settled}


def _two_places(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.2f}"


def _cite(record: dict | None, record_id: str) -> str:
    if not record:
        return record_id
    first = (record.get("authors") or ["Anonymous"])[0].split(",")[0]
    ident = f"PMID {record['pmid']}" if record.get("pmid") else (
        f"doi:{record['doi']}" if record.get("doi") else record_id)
    return f"{first} {record.get('year') or 'n.d.'}, {ident}"


def _report_context(topic: dict, topic_dir: Path, counts: PrismaCounts, included: list[dict],
                    flow_svg: str) -> dict:
    codebook = _codebook(topic)
    cmo_rows = read_csv_rows(topic_dir / "extract" / "cmo.csv")
    records = {r["record_id"]: r for r in included}
    theories = _theories(topic_dir, codebook)
    tables = theory_tables(topic_dir, codebook, records, _cite)
    return {
        "topic": topic, "version": __version__, "topic_file": Path(topic["_path"]).name if topic.get("_path") else "",
        "counts": counts, "flow_svg": flow_svg,
        "search_runs": _search_runs(topic_dir),
        "new_in_latest_run": _new_in_latest_run(topic_dir, included),
        "imports": [(Path(p).name, holds_nothing(Path(p)))
                    for p in topic["search"].get("imports", [])],
        "screen": _screen_summary(topic_dir),
        "dedup": _dedup_summary(topic_dir),
        "codebook_path": _topic_relative(topic["codebook"], topic),
        "codebook_title": f"{codebook.title} (version {codebook.version})" if codebook else "",
        "coder_in_words": _coder_in_words(
            cmo_rows, read_csv_rows(topic_dir / "extract" / "sentences.csv")),
        "tables": tables, "rows_shown": ROWS_SHOWN,
        "heatmap": heatmap(topic_dir, codebook),
        "codebook_sources": codebook.sources if codebook else (),
        "n_cmocs": len(cmo_rows),
        "n_cmoc_records": len({r["record_id"] for r in cmo_rows}),
        "coding": _coding_summary(topic_dir),
        "characteristics": _characteristics(included),
        "theories": theories,
        "status_counts": dict(sorted(Counter(t["status"] for t in theories).items())),
    }


__all__ = ["REPORT_FILES", "InputError", "report_topic"]
