"""Sentence-role benchmark of the CMO extractor on the project's labelled abstracts.

Reads bench/extract_labels/abstracts.jsonl and, for each approach, prints sentence-level
precision, recall and F1 per role (context, mechanism, outcome) and the macro F1 over the
three roles, on the dev split and on the test split separately. Supervised approaches are
scored on dev by 5-fold cross-validation grouped by abstract, and on test after training on
all of dev; the test split is never used to choose anything. Also prints how often the
extractor's own sentence splitter agrees with the annotators' sentences, and the
throughput of whole-record extraction on the real BibTeX corpus (../shared/data), rules
alone as the baseline against the shipped default.

    python bench/extract.py [--labels bench/extract_labels/abstracts.jsonl]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from cmosynth.extract import roles as R
from cmosynth.extract.codebook import ROLES, load_codebook
from cmosynth.extract.sentences import split_sentences

REPO = Path(__file__).resolve().parent.parent
LABELS = REPO / "bench" / "extract_labels" / "abstracts.jsonl"


def load_labels(path: Path) -> list[dict]:
    if not path.exists():
        sys.exit(f"labelled sentences not found: {path} (see bench/extract_labels/README.md)")
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def scores(gold: list[set[str]], predicted: list[set[str]]) -> dict[str, tuple[float, float, float]]:
    out = {}
    for role in ROLES:
        tp = sum(role in g and role in p for g, p in zip(gold, predicted))
        fp = sum(role not in g and role in p for g, p in zip(gold, predicted))
        fn = sum(role in g and role not in p for g, p in zip(gold, predicted))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[role] = (precision, recall, f1)
    return out


def macro_f1(result: dict) -> float:
    return sum(result[r][2] for r in ROLES) / len(ROLES)


def rule_predictions(evidence, weights) -> list[set[str]]:
    return [set(R.rule_roles(e, weights)) for e in evidence]


def cross_validated(groups: list[list], labels: list[list[set[str]]], make_model, folds: int = 5):
    """Predictions for every dev sentence from a model that never saw its abstract."""
    predicted: list[list[set[str]]] = [None] * len(groups)
    for fold in range(folds):
        train = [i for i in range(len(groups)) if i % folds != fold]
        model = make_model().fit([e for i in train for e in groups[i]],
                                 [lab for i in train for lab in labels[i]])
        for i in range(fold, len(groups), folds):
            predicted[i] = [set(p) for p in model.predict(groups[i])]
    return [p for group in predicted for p in group]


def combined(model_roles: list[set[str]], rule_roles: list[set[str]]) -> list[set[str]]:
    return [m | r for m, r in zip(model_roles, rule_roles)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=Path, default=LABELS)
    args = parser.parse_args()
    abstracts = load_labels(args.labels)
    codebook = load_codebook()
    split = {name: [a for a in abstracts if a["split"] == name] for name in ("dev", "test")}
    evidence, gold = {}, {}
    for name in split:
        evidence[name], gold[name] = R.labelled_examples(args.labels, codebook, name)
    flat = lambda groups: [x for g in groups for x in g]  # noqa: E731

    results: dict[str, dict[str, dict]] = {}
    start = time.perf_counter()
    for name, switches in R.APPROACHES.items():
        results[name] = {s: scores(flat(gold[s]), rule_predictions(flat(evidence[s]), switches))
                         for s in split}
    make_model = R.RoleModel
    rules_sw = R.APPROACHES["rules"]
    results["model"] = {}
    results["model+rules"] = {}
    if split["dev"]:
        cv = cross_validated(evidence["dev"], gold["dev"], make_model)
        results["model"]["dev"] = scores(flat(gold["dev"]), cv)
        results["model+rules"]["dev"] = scores(
            flat(gold["dev"]), combined(cv, rule_predictions(flat(evidence["dev"]), rules_sw)))
        trained = make_model().fit(flat(evidence["dev"]), flat(gold["dev"]))
        test_model = [set(p) for p in trained.predict(flat(evidence["test"]))]
        results["model"]["test"] = scores(flat(gold["test"]), test_model)
        results["model+rules"]["test"] = scores(
            flat(gold["test"]), combined(test_model, rule_predictions(flat(evidence["test"]), rules_sw)))
    elapsed = time.perf_counter() - start

    print_counts(split, gold)
    print_table(results)
    default = R.DEFAULT_APPROACH
    best_dev = max(results, key=lambda a: macro_f1(results[a]["dev"]) if "dev" in results[a] and split["dev"] else -1)
    print("model rows: dev = 5-fold cross-validation grouped by abstract; test = trained on "
          "all of dev (the test split is never used for tuning)")
    print(f"\nshipped default: {default}   best on dev: {best_dev}")
    print(f"evaluation time: {elapsed:.1f} s")
    print_segmentation_agreement(abstracts)
    print_throughput(codebook)


def print_counts(split, gold) -> None:
    for name, rows in split.items():
        sentences = [g for groups in gold[name] for g in groups]
        per_role = {r: sum(r in g for g in sentences) for r in ROLES}
        none = sum(not g for g in sentences)
        print(f"{name}: {len(rows)} abstracts, {len(sentences)} sentences; "
              + ", ".join(f"{r} {n}" for r, n in per_role.items()) + f", none {none}")


def print_table(results) -> None:
    header = f"\n{'approach':<14} {'split':<5} " + " ".join(
        f"{r[:4] + ' P/R/F1':<20}" for r in ROLES) + " macro-F1"
    print(header)
    print("-" * len(header))
    for approach, by_split in results.items():
        for name, result in by_split.items():
            cells = " ".join(f"{p:.2f}/{r:.2f}/{f:.2f}      " for p, r, f in
                             (result[role] for role in ROLES))
            print(f"{approach:<14} {name:<5} {cells} {macro_f1(result):.3f}")


def print_segmentation_agreement(abstracts) -> None:
    """Share of annotated sentences that the extractor's splitter produces exactly."""
    same = total = 0
    for abstract in abstracts:
        gold = [s["text"] for s in abstract["sentences"]]
        ours = set(split_sentences(" ".join(gold)))
        total += len(gold)
        same += sum(g in ours for g in gold)
    if total:
        print(f"sentence splitter: {same}/{total} annotated sentences reproduced exactly "
              f"({same / total:.1%}; labels removed from the text, so this is a lower bound)")


def print_throughput(codebook) -> None:
    """Records per second of extract_records on the real corpus: rules vs shipped default."""
    corpus = REPO.parent / "shared" / "data" / "corpus" / "autistic-participatory-metrics" \
        / "corpus_autism_research.bib"
    if not corpus.exists():
        print(f"throughput: skipped, real corpus not found at {corpus}")
        return
    from cmosynth.extract import ExtractOptions, extract_records
    from cmosynth.imports import read_records_file

    records = [r for r in read_records_file(corpus, format="bibtex") if r.get("abstract")]
    timings = {}
    for approach in ("rules", R.DEFAULT_APPROACH):
        start = time.perf_counter()
        rows = extract_records(records, codebook, ExtractOptions(approach=approach))
        timings[approach] = time.perf_counter() - start
        with_theory = sum(bool(r["theory_id"]) for r in rows)
        print(f"throughput {approach:<12} {len(records) / timings[approach]:7.1f} records/s "
              f"({len(records)} records, {len(rows)} CMOCs, {with_theory} mapped to a theory, "
              f"{len({r['record_id'] for r in rows})} records with a CMOC)")
    print(f"shipped default takes {timings[R.DEFAULT_APPROACH] / timings['rules']:.2f}x the "
          "time of rules alone (model training on the dev labels included)")


if __name__ == "__main__":
    main()
