"""Reviewer coding: corrected sentence roles override the coder and teach the role model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import read_csv, write_csv
from cmosynth.cli import main
from cmosynth.errors import InputError
from cmosynth.extract import SENTENCE_COLUMNS
from cmosynth.extract.codebook import load_codebook
from cmosynth.extract.coding import (CodedByReviewer, SentenceCoding, cross_fitted_agreement,
                                     read_coding_file, role_agreement)
from cmosynth.extract.roles import LABELS_PATH, RoleCoder, abstract_evidence
from cmosynth.files import write_jsonl
from cmosynth.records import new_record

TITLE = "Co-producing a clinic"
ABSTRACT = ("BACKGROUND: Services for autistic adults are fragmented and waiting lists are long. "
            "METHODS: We interviewed 20 staff. RESULTS: Protected time for joint meetings built "
            "trust, which led to better communication between the organisations.")
OTHER = ("Mixed teams of patients and clinicians met monthly. Shared decisions improved "
         "the uptake of the new service.")


@pytest.fixture()
def extracted(tmp_path):
    """Two records extracted once, as a reviewer finds them: (input, sentence rows)."""
    records = tmp_path / "included.jsonl"
    write_jsonl(records, [new_record("test", source_id="1", title=TITLE, abstract=ABSTRACT),
                          new_record("test", source_id="2", title="Mixed teams", abstract=OTHER)])
    assert main(["extract", str(records), "-o", str(tmp_path / "cmo.csv"),
                 "--sentences", str(tmp_path / "sentences.csv")]) == 0
    return records, read_csv(tmp_path / "sentences.csv")


def extract_with(tmp_path, records, *coding: Path) -> tuple[list[dict], list[dict]]:
    arguments = ["extract", str(records), "-o", str(tmp_path / "cmo2.csv"),
                 "--sentences", str(tmp_path / "sentences2.csv")]
    for path in coding:
        arguments += ["--coding", str(path)]
    assert main(arguments) == 0
    return read_csv(tmp_path / "sentences2.csv"), read_csv(tmp_path / "cmo2.csv")


def test_reviewer_roles_replace_the_coders_and_are_marked_reviewer(tmp_path, extracted):
    records, rows = extracted
    first = [dict(r) for r in rows if r["record_id"] == "test:1"]
    assert first[2]["text"] == "We interviewed 20 staff." and first[2]["roles"] == ""
    first[1]["roles"] = ""                       # the background: the reviewer says none
    first[2]["roles"] = "context"                # the method sentence: the sample is context
    first[3]["roles"] = "mechanism; outcome"     # spaces after ';' are fine
    sentences, table = extract_with(tmp_path, records,
                                    write_csv(tmp_path / "mine.csv", first, SENTENCE_COLUMNS))

    coded = [r for r in sentences if r["record_id"] == "test:1"]
    assert [r["roles"] for r in coded[1:]] == ["", "context", "mechanism;outcome"]
    assert {r["method"] for r in coded} == {"reviewer"}
    assert coded[2]["context_confidence"] == "1.000" and coded[2]["outcome_confidence"] == ""
    others = {r["method"] for r in sentences if r["record_id"] == "test:2"}
    assert others == {"rules-v1+model-v3+minilm-onnx-v1+reviewer-trained(4)"}, \
        "the model learnt from 4 rows"

    mine = [r for r in table if r["record_id"] == "test:1"]
    assert mine and {r["method"] for r in mine} == {"reviewer"}
    assert any(r["context_quote"] == "We interviewed 20 staff." for r in mine)
    assert not any("fragmented" in r["context_quote"] for r in mine)


def test_the_role_model_learns_from_the_reviewers_coding():
    if not LABELS_PATH.exists():
        pytest.skip("the project's labelled sentences are not in this checkout")
    codebook = load_codebook()
    sentences = [("Waiting lists for the autism clinic grew to two years.", None),
                 ("Referrals doubled after the new pathway opened.", None)]
    evidence = abstract_evidence(sentences, codebook, "A new pathway")
    before = RoleCoder(codebook).model.probabilities(evidence)
    after = RoleCoder(codebook, reviewed=[(evidence[0], {"context"}), (evidence[1], {"outcome"})]
                      ).model.probabilities(evidence)
    assert after[0]["context"] > before[0]["context"]
    assert after[1]["outcome"] > before[1]["outcome"]


def test_the_shipped_encoder_never_learns_at_run_time():
    """The reviewer's coding teaches the lexical model; the transformer keeps the weights it
    shipped with (it was fine-tuned at development time)."""
    if not LABELS_PATH.exists():
        pytest.skip("the project's labelled sentences are not in this checkout")

    class Encoder:
        """Stands for the shipped encoder: fails if anything tries to train it."""
        method = "encoder"
        meta = {"blend": {"transformer_share": 0.5, "threshold": 0.4}}

        def fit(self, evidence, labels):
            raise AssertionError("the shipped encoder is trained at development time only")

        def probabilities(self, evidence):
            return [dict.fromkeys(("context", "mechanism", "outcome"), 0.0) for _ in evidence]

    codebook = load_codebook()
    evidence = abstract_evidence([("Waiting lists grew to two years.", None)], codebook)
    coder = RoleCoder(codebook, fine_tuned=Encoder(), reviewed=[(evidence[0], {"context"})])
    assert coder.method == "rules-v1+model-v3+encoder+reviewer-trained(1)"
    assert coder.code(evidence)


def test_a_row_whose_sentence_changed_is_left_out_with_a_warning(tmp_path, extracted, capsys):
    records, rows = extracted
    stale = dict(rows[2], roles="outcome", text="We interviewed 12 staff.")
    unknown = dict(rows[2], record_id="test:9")
    capsys.readouterr()
    sentences, _ = extract_with(tmp_path, records, write_csv(tmp_path / "mine.csv",
                                                             [stale, unknown], SENTENCE_COLUMNS))
    assert sentences[2]["roles"] == rows[2]["roles"] and sentences[2]["method"] != "reviewer"
    log = capsys.readouterr().err
    assert "mine.csv:2: sentence 3 of test:1 now reads 'We interviewed 20 staff.'" in log
    assert "1 coded sentence(s) are not among the records extracted (e.g." in log


def test_a_reviewers_later_rows_and_files_win_and_text_is_optional(tmp_path, extracted):
    records, rows = extracted
    columns = ("record_id", "sentence", "roles", "reviewer")
    early = write_csv(tmp_path / "a.csv", [dict(rows[2], roles="outcome", reviewer="ann")],
                      columns)
    late = write_csv(tmp_path / "b.csv", [dict(rows[2], roles="none", reviewer="ann"),
                                          dict(rows[2], roles="context", reviewer="ann")], columns)
    sentences, _ = extract_with(tmp_path, records, early, late)
    assert sentences[2]["roles"] == "context" and sentences[2]["method"] == "reviewer"


def double_coded(tmp_path, rows, *settled: dict) -> list[Path]:
    """Two reviewers' files (named by file, no reviewer column): they agree on sentence 2
    of test:1, and on sentence 3 one says context, the other context and mechanism; and
    a consensus file with the `settled` rows."""
    ann = write_csv(tmp_path / "ann.csv", [dict(rows[1], roles="context"),
                                           dict(rows[2], roles="context")], SENTENCE_COLUMNS)
    bob = write_csv(tmp_path / "bob.csv", [dict(rows[1], roles="context"),
                                           dict(rows[2], roles="mechanism;context")],
                    SENTENCE_COLUMNS)
    if not settled:
        return [ann, bob]
    return [ann, bob, write_csv(tmp_path / "consensus.csv", settled, settled[0].keys())]


def extract_double(tmp_path, records, coding) -> tuple[list[dict], dict, list[dict]]:
    arguments = ["extract", str(records), "-o", str(tmp_path / "cmo2.csv"),
                 "--sentences", str(tmp_path / "sentences2.csv"),
                 "--agreement", str(tmp_path / "agreement.json"),
                 "--conflicts", str(tmp_path / "conflicts.csv")]
    for path in coding:
        arguments += ["--coding", str(path)]
    assert main(arguments) == 0
    return (read_csv(tmp_path / "sentences2.csv"),
            json.loads((tmp_path / "agreement.json").read_text("utf-8")),
            read_csv(tmp_path / "conflicts.csv"))


def test_double_coding_measures_agreement_and_lists_conflicts_to_settle(tmp_path, extracted):
    records, rows = extracted
    sentences, agreement, conflicts = extract_double(tmp_path, records,
                                                     double_coded(tmp_path, rows))

    assert sentences[1]["roles"] == "context" and sentences[1]["method"] == "reviewer"
    disputed = sentences[2]
    assert disputed["roles"] == "context;mechanism" and disputed["method"] == "reviewers-disagree"
    assert (disputed["context_confidence"], disputed["mechanism_confidence"]) == ("1.000", "0.500")

    assert agreement["reviewers"] == ["ann", "bob"] and agreement["sentences_coded"] == 2
    assert agreement["conflicts"] == 1 and agreement["conflicts_settled_by_consensus"] == 0
    [pair] = agreement["pairs"]
    assert pair["sentences_both_coded"] == 2 and pair["identical"] == 0.5
    assert pair["f1"] == {"context": 1.0, "mechanism": 0.0, "outcome": None}, "none gave outcome"
    assert pair["cohen_kappa"] == {"context": None, "mechanism": 0.0, "outcome": None}
    assert pair["macro_f1"] == 0.5, "over the roles either reviewer gave"

    [conflict] = conflicts
    assert conflict["record_id"] == "test:1" and conflict["sentence"] == "3"
    assert conflict["reviewer"] == "consensus" and conflict["roles"] == "?", "to be decided"
    assert conflict["text"] == "We interviewed 20 staff."
    assert conflict["coded_by"] == ("ann: context (ann.csv:3); "
                                    "bob: context;mechanism (bob.csv:3)")


def test_a_consensus_row_settles_a_conflict(tmp_path, extracted):
    records, rows = extracted
    _, _, [conflict] = extract_double(tmp_path, records, double_coded(tmp_path, rows))
    conflict["roles"] = "mechanism"                       # the team's decision
    sentences, agreement, conflicts = extract_double(
        tmp_path, records, double_coded(tmp_path, rows, conflict))

    assert sentences[2]["roles"] == "mechanism" and sentences[2]["method"] == "reviewer"
    assert sentences[2]["mechanism_confidence"] == "1.000"
    assert conflicts == []
    assert agreement["conflicts"] == 1 and agreement["conflicts_settled_by_consensus"] == 1
    assert agreement["by_consensus"] == 1 and agreement["reviewers"] == ["ann", "bob"]


def test_a_conflict_copied_but_not_decided_is_not_settled(tmp_path, extracted):
    records, rows = extracted
    _, _, [conflict] = extract_double(tmp_path, records, double_coded(tmp_path, rows))
    sentences, agreement, conflicts = extract_double(
        tmp_path, records, double_coded(tmp_path, rows, conflict))     # roles still '?'
    assert sentences[2]["method"] == "reviewers-disagree" and len(conflicts) == 1
    assert agreement["conflicts_settled_by_consensus"] == 0


def test_a_coding_sheet_draws_the_same_records_for_each_reviewer(tmp_path, extracted):
    records, rows = extracted
    sentences = tmp_path / "sentences.csv"
    sheet = ["coding-sheet", str(sentences), "--records", "1", "--seed", "7"]
    assert main(sheet + ["-o", str(tmp_path / "ann.csv"), "--reviewer", "ann"]) == 0
    assert main(sheet + ["-o", str(tmp_path / "bob.csv"), "--blind"]) == 0
    ann, bob = read_csv(tmp_path / "ann.csv"), read_csv(tmp_path / "bob.csv")
    drawn = {r["record_id"] for r in ann}
    assert len(drawn) == 1 and [r["record_id"] for r in rows].count(drawn.pop()) == len(ann)
    assert [(r["record_id"], r["sentence"], r["text"]) for r in ann] == \
        [(r["record_id"], r["sentence"], r["text"]) for r in bob]
    coder = {(r["record_id"], r["sentence"]): r["roles"] for r in rows}
    assert [r["roles"] for r in ann] == [coder[(r["record_id"], r["sentence"])] for r in ann]
    assert {r["reviewer"] for r in ann} == {"ann"} and {r["reviewer"] for r in bob} == {""}
    assert {r["roles"] for r in bob} == {"?"}, "blind: nothing to anchor on"

    bob[0]["roles"] = "context"                  # bob has coded one sentence so far
    write_csv(tmp_path / "bob.csv", bob, list(bob[0]))
    sentences2, table = extract_with(tmp_path, records, tmp_path / "bob.csv")
    assert [r["method"] for r in sentences2].count("reviewer") == 1


def test_a_coding_sheet_never_overwrites_a_file(tmp_path, extracted, capsys):
    mine = tmp_path / "mine.csv"
    mine.write_text("record_id,sentence,roles\ntest:1,2,context\n", encoding="utf-8")
    assert main(["coding-sheet", str(tmp_path / "sentences.csv"), "-o", str(mine)]) == 2
    error = capsys.readouterr().err.strip()
    assert "mine.csv: already exists" in error and len(error.splitlines()) == 1
    assert mine.read_text(encoding="utf-8") == "record_id,sentence,roles\ntest:1,2,context\n"


def test_the_coder_is_scored_on_each_record_by_a_coder_that_never_saw_it():
    """Cross-fitting: sentence texts stand for evidence; a stub coder gives a sentence the
    roles it learnt for the same text, so any leak of a held-out record would score."""
    texts = ["a1", "a2", "b1", "c1", "c2", "d1", "e1"]
    records = ["a", "a", "b", "c", "c", "d", "e"]
    roles = [{"context"}, set(), {"outcome"}, {"mechanism"}, set(), {"context"}, {"outcome"}]
    row = lambda r: CodedByReviewer("x", 1, frozenset(r), None, "ann.csv", 2, "ann")  # noqa: E731
    codings = [SentenceCoding({"ann": row(r)}) for r in roles]
    codings[6] = SentenceCoding({"ann": row({"outcome"}), "bob": row(set())})   # unsettled
    seen = []

    class Stub:
        def __init__(self, reviewed):
            self.learnt = dict(reviewed)
            seen.append(set(self.learnt))

        def code(self, evidence):
            return [dict.fromkeys(self.learnt.get(e, ()), 1.0) for e in evidence]

    estimate = cross_fitted_agreement(texts, codings, records, Stub, folds=5)
    assert len(seen) == 5 and all(len(s) >= 4 for s in seen)
    for learnt in seen:      # a fold learns every record but the one(s) it scores
        held = {texts[k] for k in range(7) if texts[k] not in learnt}
        assert {records[texts.index(t)] for t in held}.isdisjoint(
            {records[texts.index(t)] for t in learnt})
    assert estimate["records"] == 5 and estimate["folds"] == 5
    assert estimate["sentences"] == 6, "the unsettled conflict is not scored"
    assert estimate["recall"] == {"context": 0.0, "mechanism": 0.0, "outcome": 0.0}
    assert cross_fitted_agreement(texts[:2], codings[:2], records[:2], Stub) is None


def test_extraction_estimates_its_coders_agreement_with_the_reviewers(tmp_path, extracted):
    records, rows = extracted
    mine = write_csv(tmp_path / "ann.csv", rows, SENTENCE_COLUMNS)   # ann checks everything
    _, agreement, _ = extract_double(tmp_path, records, [mine])
    coder = agreement["coder"]
    assert (coder["records"], coder["folds"], coder["sentences"]) == (2, 2, len(rows))
    assert 0 < coder["macro_f1"] <= 1 and set(coder["f1"]) == {"context", "mechanism", "outcome"}
    low, high = coder["macro_f1_95"]
    assert 0 <= low <= high <= 1


def test_role_agreement_is_the_projects_measure():
    first = [{"context"}, {"context", "outcome"}, set(), {"mechanism"}, set()]
    second = [{"context"}, {"outcome"}, {"context"}, {"mechanism"}, set()]
    agreed = role_agreement(first, second)
    context = agreed["roles"]["context"]
    assert (context["first"], context["second"], context["both"]) == (2, 2, 1)
    assert context["f1"] == pytest.approx(0.5)
    # observed 3/5 agree; by chance (2/5)(2/5) + (3/5)(3/5) = 13/25: kappa = (15-13)/(25-13)
    assert context["cohen_kappa"] == pytest.approx(2 / 12)
    assert agreed["roles"]["mechanism"]["cohen_kappa"] == pytest.approx(1.0)
    assert agreed["macro_f1"] == pytest.approx((0.5 + 1.0 + 1.0) / 3)
    assert agreed["identical"] == pytest.approx(3 / 5)


@pytest.mark.parametrize("content, line, words", [
    ("record_id,sentence,roles\ntest:1,3,context\ntest:1,4,contxt\n", 3, "role 'contxt' is not"),
    ("record_id,sentence,roles\ntest:1,three,context\n", 2, "must be the sentence's number"),
    ("record_id,roles\ntest:1,context\n", 1, "missing column(s) sentence"),
])
def test_coding_errors_name_file_and_line_and_exit_2(tmp_path, extracted, capsys, content,
                                                      line, words):
    records, _ = extracted
    coding = tmp_path / "coding.csv"
    coding.write_text(content, encoding="utf-8")
    with pytest.raises(InputError):
        read_coding_file(coding)
    assert main(["extract", str(records), "-o", str(tmp_path / "out.csv"),
                 "--coding", str(coding)]) == 2
    error = capsys.readouterr().err.strip()
    assert f"coding.csv:{line}: " in error and words in error and "Traceback" not in error
    assert len(error.splitlines()) == 1
    assert not (tmp_path / "out.csv").exists()


def test_a_missing_coding_file_names_the_topic_key(tmp_path, extracted, capsys):
    records, _ = extracted
    assert main(["extract", str(records), "-o", str(tmp_path / "out.csv"),
                 "--coding", str(tmp_path / "nowhere.csv")]) == 2
    assert "extract.coding" in capsys.readouterr().err
