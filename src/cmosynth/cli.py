"""Command line: a thin layer over the stage modules.

Every command turns arguments into one call of a stage function. Errors caused by
input (CmosynthError) print one line and exit with code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cmosynth import __version__
from cmosynth.console import setup_logging
from cmosynth.errors import CmosynthError

EXIT_INPUT_ERROR = 2


def _add_topic_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of every command that works on a topic's outputs folder."""
    p.add_argument("topic", type=Path, help="topic file (config/topics/<name>.yaml)")
    p.add_argument("--outputs", type=Path, default=Path("outputs"),
                   help="output folder (default: outputs)")


# --- search --------------------------------------------------------------------------
def _add_search(sub) -> None:
    p = sub.add_parser("search", help="search PubMed for a topic (one dated run)",
                       description="Run the topic's PubMed search over an Entrez-date window "
                       "and store raw responses, records.jsonl and search_log.json.")
    _add_topic_arguments(p)
    p.add_argument("--until", default=None,
                   help="last Entrez date of the window, YYYY-MM-DD (default: today)")
    p.set_defaults(run=_run_search)


def _run_search(args) -> int:
    from cmosynth.config import load_topic, parse_date
    from cmosynth.pubmed.run import search_topic

    topic = load_topic(args.topic)
    search_topic(topic, outputs=args.outputs, until=parse_date(args.until, "--until"))
    return 0


# --- convert -------------------------------------------------------------------------
def _add_convert(sub) -> None:
    p = sub.add_parser("convert", help="convert records between formats (RIS, CSV, JSONL)",
                       description="Read records in any supported format and write them as "
                       "RIS, CSV (ASReview and Rayyan import it) or JSONL, by the output's "
                       "extension.")
    p.add_argument("inputs", nargs="+", type=Path, help="input files in any supported format")
    p.add_argument("-o", "--output", type=Path, required=True, help="output .ris, .csv or .jsonl")
    p.set_defaults(run=_run_convert)


def _run_convert(args) -> int:
    from cmosynth.imports import convert_files

    convert_files(args.inputs, args.output)
    return 0


# --- dedup ---------------------------------------------------------------------------
def _add_dedup(sub) -> None:
    p = sub.add_parser("dedup", help="import and deduplicate records (link, never delete)",
                       description="Read records in any supported format, link duplicates "
                       "and write every input record with record_id, source_id, duplicate_of.")
    p.add_argument("inputs", nargs="+", type=Path,
                   help="RIS, .nbib/MEDLINE text, BibTeX, CSV, EndNote XML, PubMed XML or JSONL")
    p.add_argument("-o", "--output", type=Path, required=True, help="output JSONL")
    p.add_argument("--review-pairs", type=Path, default=None,
                   help="CSV of uncertain pairs for a reviewer to decide")
    p.add_argument("--overrides", type=Path, action="append", default=[], metavar="CSV",
                   help="a reviewer's CSV of pair decisions (duplicates / not_duplicates); "
                   "repeat for each reviewer")
    p.add_argument("--previous", type=Path, default=None,
                   help="an earlier deduplicated JSONL whose decisions are kept (incremental)")
    p.add_argument("--history", type=Path, default=None,
                   help="decision ledger: read if present (unless --previous is given) and "
                   "rewritten after the run, so scheduled reruns keep earlier decisions")
    p.set_defaults(run=_run_dedup)


def _run_dedup(args) -> int:
    from cmosynth.dedup import dedup_files

    dedup_files(args.inputs, args.output, review_pairs=args.review_pairs,
                overrides=args.overrides, previous=args.previous, history=args.history)
    return 0


# --- screen --------------------------------------------------------------------------
def _add_screen(sub) -> None:
    p = sub.add_parser("screen", help="screen a topic's deduplicated records "
                       "(or: cmosynth screen simulate ...)",
                       description="Apply the topic's criteria rules, rank records by "
                       "active learning, read reviewer decisions and write screen/.")
    _add_topic_arguments(p)
    p.set_defaults(run=_run_screen)


def _run_screen(args) -> int:
    from cmosynth.config import load_topic
    from cmosynth.screen import screen_topic

    screen_topic(load_topic(args.topic), outputs=args.outputs)
    return 0


def _add_screen_simulate(sub) -> None:
    p = sub.add_parser("screen-simulate", prog="cmosynth screen simulate",
                       help="replay a labelled dataset as ASReview's simulation mode does",
                       description="Start from the prior rows, then always screen the "
                       "top-ranked unlabelled record, retrain, reveal its label.")
    p.add_argument("data", type=Path, help="CSV with title, abstract and a label column")
    p.add_argument("--label-column", required=True, help="column holding 1/0 labels")
    p.add_argument("--prior-idx", type=int, nargs="+", default=None,
                   help="0-based rows known at the start (default: one included and one "
                        "excluded row drawn with the seed)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--model", default=None, help="ranking model (default: the shipped best)")
    p.add_argument("-o", "--output", type=Path, required=True, help="output CSV in screening order")
    p.set_defaults(run=_run_screen_simulate)


def _run_screen_simulate(args) -> int:
    from cmosynth.screen import simulate_file

    simulate_file(args.data, label_column=args.label_column, prior_idx=args.prior_idx,
                  seed=args.seed, model=args.model, output=args.output)
    return 0


# --- fulltext ------------------------------------------------------------------------
def _add_fulltext(sub) -> None:
    p = sub.add_parser("fulltext", help="fetch open-access JATS full texts from PMC",
                       description="For records with a PMC id, fetch the open-access full "
                       "text (efetch db=pmc) and keep each response as <DIR>/PMC<id>.xml.")
    p.add_argument("records", type=Path, help="records JSONL (e.g. screen/included.jsonl)")
    p.add_argument("-o", "--output-dir", type=Path, required=True, help="full-text folder")
    p.set_defaults(run=_run_fulltext)


def _run_fulltext(args) -> int:
    from cmosynth.extract.fulltext import fetch_full_texts

    fetch_full_texts(args.records, output_dir=args.output_dir)
    return 0


# --- extract -------------------------------------------------------------------------
def _add_extract(sub) -> None:
    p = sub.add_parser("extract", help="extract CMO configurations with verbatim quotes",
                       description="Extract context-mechanism-outcome configurations from "
                       "records (JSONL) against a codebook and write the CMO table (CSV, "
                       "sorted, byte-identical on rerun). Every quote is a verbatim "
                       "substring of the record's title, abstract or full text.")
    p.add_argument("input", type=Path, help="records JSONL (e.g. screen/included.jsonl)")
    p.add_argument("--codebook", type=Path, default=None,
                   help="codebook YAML (default: config/codebooks/coproduction.yaml of this "
                        "checkout, the default topic's)")
    p.add_argument("-o", "--output", type=Path, required=True, help="CMO table CSV")
    p.add_argument("--sentences", type=Path, default=None,
                   help="also write every sentence with the roles it was given and their "
                        "confidences (CSV): the coding audit trail")
    p.add_argument("--full-text", type=Path, default=None,
                   help="folder of JATS full texts (PMC<id>.xml) to extract from as well")
    p.add_argument("--coder", choices=("transformer", "lexical", "rules"),
                   default="transformer",
                   help="how sentences get their roles: the shipped fine-tuned transformer "
                        "blended with the lexical model (default), the lexical model, or the "
                        "rules alone")
    p.add_argument("--embeddings", action="store_true",
                   help="give sentences with a role but no cue phrase the concept whose "
                        "definition is closest (needs the `embeddings` extra: "
                        "pip install 'cmosynth[embeddings]')")
    p.add_argument("--llm", action="store_true",
                   help="add suggestions from an OpenAI-compatible chat endpoint "
                        "(CMOSYNTH_LLM_URL, CMOSYNTH_LLM_MODEL, CMOSYNTH_LLM_API_KEY)")
    p.add_argument("--coding", type=Path, action="append", default=[], metavar="CSV",
                   help="a reviewer's coding: rows of a sentence table with the roles "
                        "corrected (record_id, sentence, roles[, text, reviewer]). Those "
                        "sentences get those roles and the role model learns from them; "
                        "repeat for several files or reviewers (reviewer: the column, else "
                        "the file's name; a reviewer's later rows win; reviewer `consensus` "
                        "settles conflicts)")
    p.add_argument("--configurations", type=Path, action="append", default=[],
                   metavar="CSV",
                   help="CMOCs a reviewer linked by hand (record_id, cmoc, theory_id, "
                        "<role>_sentence, <role> concepts, summary); they replace the "
                        "coder's for their records; repeat for each reviewer")
    p.add_argument("--agreement", type=Path, default=None, metavar="JSON",
                   help="also write how the reviewers' coding agrees (per pair: Cohen's "
                        "kappa and F1 per role, macro F1) and how many conflicts remain")
    p.add_argument("--conflicts", type=Path, default=None, metavar="CSV",
                   help="also write the sentences reviewers coded differently, as rows to "
                        "settle in a consensus coding file")
    p.set_defaults(run=_run_extract)


def _run_extract(args) -> int:
    from cmosynth.extract import extract_file

    extract_file(args.input, output=args.output, codebook=args.codebook,
                 full_text_dir=args.full_text, embeddings=args.embeddings, llm=args.llm,
                 coder=args.coder,
                 sentences=args.sentences, coding=args.coding, agreement=args.agreement,
                 conflicts=args.conflicts, configurations=args.configurations)
    return 0


def _add_coding_sheet(sub) -> None:
    p = sub.add_parser("coding-sheet", help="draw records from a sentence table for a "
                       "reviewer to code", description="Write every sentence of records "
                       "drawn at random from a sentence table (extract/sentences.csv) as a "
                       "reviewer's coding file (extract.coding). From the same table, the "
                       "same --records and --seed draw the same records, so two reviewers "
                       "can code the same sample; --blind leaves every roles cell '?' (not "
                       "coded yet), so that the coder's roles do not anchor them. Never "
                       "overwrites a file.")
    p.add_argument("sentences", type=Path, help="sentence table (extract/sentences.csv)")
    p.add_argument("-o", "--output", type=Path, required=True,
                   help="the reviewer's coding file to create (CSV)")
    p.add_argument("--records", type=int, default=None,
                   help="how many records to draw (default: all)")
    p.add_argument("--seed", type=int, default=1, help="seed of the draw (default: 1)")
    p.add_argument("--blind", action="store_true",
                   help="roles cells '?' instead of the coder's roles")
    p.add_argument("--reviewer", default="",
                   help="fill the reviewer column (default: empty, the file's name counts)")
    p.set_defaults(run=_run_coding_sheet)


def _run_coding_sheet(args) -> int:
    from cmosynth.extract import write_coding_sheet

    if args.records is not None and args.records < 1:
        raise CmosynthError("--records must be 1 or more")
    write_coding_sheet(args.sentences, args.output, records=args.records, seed=args.seed,
                       blind=args.blind, reviewer=args.reviewer)
    return 0


# --- synthesize ----------------------------------------------------------------------
def _add_synthesize(sub) -> None:
    p = sub.add_parser("synthesize", help="synthesise CMOCs against programme theories",
                       description="Group CMOCs by theory and concept triple and judge each "
                       "programme theory; writes cmoc_summary.csv, matrix.csv, "
                       "theory_status.csv and programme_theories.md.")
    p.add_argument("cmo", type=Path, help="CMO table CSV from `cmosynth extract`")
    p.add_argument("--records", type=Path, required=True, help="records JSONL the CMOCs came from")
    p.add_argument("--codebook", type=Path, default=None,
                   help="codebook YAML (default: the topic's, else the default topic's)")
    p.add_argument("--topic", type=Path, default=None,
                   help="topic file whose `synthesis` settings apply (default: schema "
                        "defaults) and whose query says how relevant each record is")
    p.add_argument("--screening", type=Path, default=None,
                   help="screen/screening.csv: records a reviewer included count as relevant")
    p.add_argument("-o", "--output-dir", type=Path, required=True, help="synthesis folder")
    p.set_defaults(run=_run_synthesize)


def _run_synthesize(args) -> int:
    from cmosynth.config import load_topic
    from cmosynth.synthesis import synthesize_files

    topic = load_topic(args.topic) if args.topic else {}
    query = ((topic.get("search") or {}).get("pubmed") or {}).get("query")
    synthesize_files(args.cmo, records=args.records,
                     codebook=args.codebook or topic.get("codebook"),
                     output_dir=args.output_dir, settings=topic.get("synthesis"),
                     query=query, screening=args.screening)
    return 0


# --- report --------------------------------------------------------------------------
def _add_report(sub) -> None:
    p = sub.add_parser("report", help="PRISMA 2020 flow, RAMESES-ordered HTML report, tables",
                       description="Build report/ (index.html, prisma.svg, PRISMA.csv, "
                       "review.xlsx, included.ris) from the files earlier stages wrote.")
    _add_topic_arguments(p)
    p.set_defaults(run=_run_report)


def _run_report(args) -> int:
    from cmosynth.config import load_topic
    from cmosynth.report import report_topic

    report_topic(load_topic(args.topic), outputs=args.outputs)
    return 0


# --- topics --------------------------------------------------------------------------
def _add_validate(sub) -> None:
    p = sub.add_parser("validate", help="check topic files, their codebooks and every file "
                       "they name",
                       description="Check each topic file with everything a run would "
                       "reject: the schema (misspelt keys get the nearest key suggested), "
                       "dates, the query, unsafe names, the codebook and every file named. "
                       "One line per problem (file:line: key: what is wrong); exit 2 if any "
                       "is an error (an empty import file is one).")
    p.add_argument("topics", nargs="+", type=Path, help="topic files")
    p.set_defaults(run=_run_validate)


def _run_validate(args) -> int:
    from cmosynth.topics import ERROR, check_topic

    failed = False
    for path in args.topics:
        topic, problems = check_topic(path)
        for problem in problems:
            print(problem, file=sys.stderr)
        errors = sum(1 for p in problems if p.severity == ERROR)
        failed |= bool(errors)
        if not errors:
            print(f"{path}: valid (codebook {topic['codebook']})")
    return EXIT_INPUT_ERROR if failed else 0


def _add_new_topic(sub) -> None:
    p = sub.add_parser("new-topic", help="scaffold a topic file and its codebook",
                       description="Write DIR/topics/NAME.yaml and DIR/codebooks/NAME.yaml, "
                       "commented, from a template or as a copy of another topic and its "
                       "codebook. Never overwrites a file. Then edit them and run "
                       "`cmosynth validate DIR/topics/NAME.yaml`.")
    p.add_argument("name", help="machine name: lower-case letters, digits, - and _")
    p.add_argument("--from", dest="source", type=Path, default=None,
                   help="copy this topic file (and its codebook) instead of the template")
    p.add_argument("--dir", type=Path, default=Path("config"),
                   help="config folder to write into (default: config)")
    p.set_defaults(run=_run_new_topic)


def _run_new_topic(args) -> int:
    from cmosynth.topics import new_topic

    topic, codebook = new_topic(args.name, args.dir, args.source)
    print(f"wrote {topic} and {codebook}; edit them, then `cmosynth validate {topic}`")
    return 0


# --- run -----------------------------------------------------------------------------
def _add_workflow_arguments(p: argparse.ArgumentParser, until_help: str) -> None:
    """The arguments `run` and `update` share: the topic, until, cores and the lock wait."""
    _add_topic_arguments(p)
    p.add_argument("--until", default=None, help=until_help)
    p.add_argument("--cores", type=int, default=1, help="parallel jobs (default: 1)")
    p.add_argument("--wait", type=float, default=0.0,
                   help="seconds to wait for another run of the topic to end (default: 0)")


def _add_run(sub) -> None:
    p = sub.add_parser("run", help="run one topic's whole workflow and summarise it",
                       description="Check the topic, then run every stage for it through "
                       "Snakemake (search, dedup, screen, extract, synthesis, report; only "
                       "what changed reruns), showing each stage's progress, and end with a "
                       "summary. A failing step prints its own one-line error. Plain "
                       "`snakemake --cores N` still runs every topic in config/config.yaml.")
    _add_workflow_arguments(p, "last Entrez date of the search, YYYY-MM-DD (default: today)")
    p.add_argument("-n", "--dry-run", action="store_true", help="show what would run")
    p.set_defaults(run=_run_run)


def _add_update(sub) -> None:
    p = sub.add_parser("update", help="add a dated run to a living review and rerun what "
                       "changed",
                       description="Search PubMed from the last run's end (with a day's "
                       "overlap) to --until (default today) in a new dated run folder, "
                       "deduplicate the new records against the earlier clusters, keep every "
                       "reviewer decision and coding, and rerun only what changed. Earlier "
                       "runs are never rewritten; report/new_records.csv and the report list "
                       "what is new. Two updates of one topic never run at once.")
    _add_workflow_arguments(p, "last Entrez date of the new run, YYYY-MM-DD (default: today)")
    p.set_defaults(run=_run_update)


def _run_update(args) -> int:
    from cmosynth.runner import run_topic

    summary = run_topic(args.topic, args.outputs, args.until, args.cores, update=True,
                        wait=args.wait)
    _print_summary(summary)
    return 0


def _print_summary(summary: dict) -> None:
    width = max(len(name) for name in summary)
    print("\n".join(f"{name:<{width}}  {value}" for name, value in summary.items()
                    if name != "seconds") + f"\n{'time':<{width}}  {summary['seconds']} s")


def _run_run(args) -> int:
    from cmosynth.runner import run_topic

    summary = run_topic(args.topic, args.outputs, args.until, args.cores, args.dry_run,
                        wait=args.wait)
    if not args.dry_run:
        _print_summary(summary)
    return 0


def _add_lab(sub) -> None:
    p = sub.add_parser("lab", help="open the reviewer's workspace in the browser",
                       description="A local web workspace on the topic's outputs: screen "
                       "records one at a time in priority order, settle duplicate pairs, "
                       "code sentences and link CMOCs, resolve conflicts between reviewers, "
                       "and rerun the workflow. It writes only your reviewer files "
                       "(reviews/<topic>/... unless the topic names others).")
    _add_topic_arguments(p)
    p.add_argument("--reviewer", default=None,
                   help="your name, which names your files (default: your login name)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to serve on (default 127.0.0.1; any other needs the token "
                        "printed at start)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")
    p.set_defaults(run=_run_lab)


def _run_lab(args) -> int:
    from cmosynth.web import serve

    serve(args.topic, args.outputs, args.reviewer, args.host, args.port,
          open_browser=not args.no_browser)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cmosynth", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"cmosynth {__version__}")
    parser.add_argument("--log", type=Path, default=None, help="also append the log to this file")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_search, _add_convert, _add_dedup, _add_screen, _add_screen_simulate,
                _add_fulltext, _add_extract, _add_coding_sheet, _add_synthesize, _add_report,
                _add_validate, _add_new_topic, _add_run, _add_update, _add_lab):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # `cmosynth screen simulate ...` reads naturally; argparse cannot nest a subcommand
    # under a command that also takes a positional, so route it to `screen-simulate`.
    if "screen" in argv:
        at = argv.index("screen")
        if argv[at + 1:at + 2] == ["simulate"]:
            argv[at:at + 2] = ["screen-simulate"]
    args = build_parser().parse_args(argv)
    setup_logging(args.log, args.verbose)
    try:
        return args.run(args)
    except CmosynthError as exc:
        print(f"cmosynth: error: {exc}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except KeyboardInterrupt:
        print("cmosynth: interrupted; completed work is kept and the next run resumes",
              file=sys.stderr)
        return 130
