"""`cmosynth screen simulate`: replays a real labelled review (the first 150 rows of the
SYNERGY Sep_2021 set, read in place and written to a temporary CSV)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from cmosynth.cli import main
from conftest import shared_path

ROWS = 150


@pytest.fixture(scope="module")
def small_review(tmp_path_factory) -> Path:
    source = shared_path("benchmarks", "screening", "synergy_Sep_2021", "Sep_2021.csv")
    with open(source, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows = [row for _, row in zip(range(ROWS), reader)]
    path = tmp_path_factory.mktemp("simulate") / "sep_150.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        # Upper-case headers: text columns are found case-insensitively.
        writer = csv.DictWriter(handle, fieldnames=["DOI", "Title", "Abstract", "label_included"])
        writer.writeheader()
        for row in rows:
            writer.writerow({"DOI": row["doi"], "Title": row["title"],
                             "Abstract": row["abstract"], "label_included": row["label_included"]})
    return path


def simulate(data: Path, output: Path, *extra: str) -> list[dict]:
    code = main(["screen", "simulate", str(data), "--label-column", "label_included",
                 "-o", str(output), *extra])
    assert code == 0
    with open(output, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def labels_of(data: Path) -> list[str]:
    with open(data, newline="", encoding="utf-8") as handle:
        return [row["label_included"] for row in csv.DictReader(handle)]


def test_simulation_screens_every_row_once_and_repeats_for_a_seed(small_review, tmp_path):
    first = simulate(small_review, tmp_path / "a.csv", "--seed", "3")
    again = simulate(small_review, tmp_path / "b.csv", "--seed", "3")
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert sorted(int(r["row"]) for r in first) == list(range(ROWS))
    assert [int(r["order"]) for r in first] == list(range(ROWS))
    truth = labels_of(small_review)
    assert all(r["label"] == truth[int(r["row"])] for r in first)
    # Without --prior-idx: one included and one excluded prior, which carry no score.
    assert sorted(r["label"] for r in first[:2]) == ["0", "1"]
    assert [r["score"] for r in first[:2]] == ["", ""]
    assert all(r["score"] for r in first[2:])
    assert again == first


def test_simulation_starts_from_the_given_priors_and_finds_relevant_records_early(
        small_review, tmp_path):
    truth = labels_of(small_review)
    included = [i for i, label in enumerate(truth) if label == "1"]
    excluded = [i for i, label in enumerate(truth) if label == "0"]
    priors = [included[-1], excluded[0], excluded[-1]]
    order = simulate(small_review, tmp_path / "o.csv", "--prior-idx", *map(str, priors),
                     "--model", "nb-double")
    assert [int(r["row"]) for r in order[:3]] == priors
    # The ranking should find relevant records faster than screening in file order would:
    # half of them within fewer records than random screening needs on average.
    found_at = [i for i, r in enumerate(order[3:]) if r["label"] == "1"]
    half = found_at[len(found_at) // 2]
    assert half < (ROWS - 3) / 2


def test_simulate_with_a_missing_label_column_exits_2(small_review, tmp_path, capsys):
    code = main(["screen", "simulate", str(small_review), "--label-column", "included",
                 "-o", str(tmp_path / "o.csv")])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{small_review}: no column 'included'" in err and "Traceback" not in err
    assert not (tmp_path / "o.csv").exists()
