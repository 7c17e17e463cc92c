"""Inter-annotator agreement on the sentence-role set.

Compares the first annotation (abstracts.jsonl) with the independent second annotation
(abstracts_second.jsonl) on the abstracts both hold: all 61 of the first batch, and the 50
test abstracts of the second batch (its dev abstracts were labelled once). It checks that
those abstracts have the same sentences in the same order, then prints, per batch and
split and per role
(context, mechanism, outcome), precision, recall and F1 of annotator 2 against
annotator 1, Cohen's kappa, and the macro F1 over the three roles.

    python bench/extract_labels/agreement.py [first.jsonl] [second.jsonl]

Each sentence is a binary decision per role (the role is in its list or not). F1 is
symmetric in the two annotators; precision and recall swap if the files are swapped.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from cmosynth.extract.coding import role_agreement

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from check_labels import SOURCE_GROUPS, source_group  # noqa: E402
#: (batch, split) groups to report; "all" joins both splits of the batch.
GROUPS = (("batch1", "dev"), ("batch1", "test"), ("batch1", "all"), ("batch2", "test"),
          ("batch3", "test"))


def load(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def paired_sentences(first: list[dict], second: list[dict]) -> list[tuple[str, str, str, set, set]]:
    """(batch, split, source group, roles_1, roles_2) per sentence; exits if the two files
    do not align."""
    problems: list[str] = []
    twice = {d["id"] for d in second}
    first = [d for d in first if d["id"] in twice]
    if [d["id"] for d in first] != [d["id"] for d in second]:
        problems.append("abstract ids differ or are in a different order")
    pairs: list[tuple[str, str, set, set]] = []
    for a, b in zip(first, second):
        if a["id"] != b["id"]:
            continue
        if a["split"] != b["split"]:
            problems.append(f"{a['id']}: split {a['split']} vs {b['split']}")
        sa, sb = a["sentences"], b["sentences"]
        if len(sa) != len(sb):
            problems.append(f"{a['id']}: {len(sa)} vs {len(sb)} sentences")
            continue
        for i, (x, y) in enumerate(zip(sa, sb)):
            if x["text"] != y["text"] or x.get("section") != y.get("section"):
                problems.append(f"{a['id']} sentence {i}: text or section differs")
                continue
            batch = a.get("annotator", "batch1").partition("-")[0]
            pairs.append((batch, a["split"], source_group(a), set(x["roles"]), set(y["roles"])))
    if problems:
        print("The two annotation files do not have the same sentences:", file=sys.stderr)
        for p in problems:
            print("  " + p, file=sys.stderr)
        sys.exit(1)
    return pairs


def main(argv: list[str]) -> int:
    first_path = Path(argv[1]) if len(argv) > 1 else HERE / "abstracts.jsonl"
    second_path = Path(argv[2]) if len(argv) > 2 else HERE / "abstracts_second.jsonl"
    pairs = paired_sentences(load(first_path), load(second_path))
    print(f"annotator 1: {first_path.name}   annotator 2: {second_path.name}")
    print("P/R/F1 of annotator 2 against annotator 1; kappa = Cohen's kappa per role\n")
    groups = [(f"{batch} {split}", [p for p in pairs if p[0] == batch and split in ("all", p[1])])
              for batch, split in GROUPS]
    groups += [(f"batch3 test, {source}", [p for p in pairs if p[:3] == ("batch3", "test", source)])
               for source in SOURCE_GROUPS]
    for name, sub in groups:
        if not sub:
            continue
        any1 = sum(bool(r1) for *_, r1, _ in sub)
        any2 = sum(bool(r2) for *_, r2 in sub)
        print(f"[{name}] {len(sub)} sentences; any role: annotator 1 {any1}, "
              f"annotator 2 {any2}")
        print(f"  {'role':<10} {'n1':>4} {'n2':>4} {'both':>4} {'P':>6} {'R':>6} {'F1':>6} {'kappa':>6}")
        agreed = role_agreement([r1 for *_, r1, _ in sub], [r2 for *_, r2 in sub])
        for role, s in agreed["roles"].items():
            kappa, f1 = (float("nan") if s[k] is None else s[k] for k in ("cohen_kappa", "f1"))
            print(f"  {role:<10} {s['first']:>4} {s['second']:>4} {s['both']:>4} "
                  f"{s['precision']:>6.3f} {s['recall']:>6.3f} {f1:>6.3f} {kappa:>6.3f}")
        print(f"  macro F1 {agreed['macro_f1']:.3f}   identical role sets "
              f"{agreed['identical']:.3f}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
