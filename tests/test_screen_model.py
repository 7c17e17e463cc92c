"""Prioritisation features: the default model's latent semantic topics (real SYNERGY
Sep_2021 abstracts, read in place)."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from cmosynth.screen.model import (DEFAULT_MODEL, MODELS, get_model, inclusion_scores,
                                   record_text, similarity_scores, text_features)
from conftest import shared_path

PROFILE = ["noradrenaline memory consolidation amygdala", "stress hormone learning"]


@pytest.fixture(scope="module")
def review() -> tuple[list[str], np.ndarray]:
    source = shared_path("benchmarks", "screening", "synergy_Sep_2021", "Sep_2021.csv")
    with open(source, newline="", encoding="utf-8") as handle:
        rows = [row for _, row in zip(range(200), csv.DictReader(handle))]
    texts = [record_text(r["title"], r["abstract"]) for r in rows]
    return texts, np.array([int(r["label_included"]) for r in rows])


def test_default_model_adds_semantic_topics_and_repeats_them_exactly(review):
    texts, _ = review
    kind = get_model(DEFAULT_MODEL).features
    first, _ = text_features(texts, kind=kind)
    plain, _ = text_features(texts, kind="bigrams")
    assert first.shape[1] > plain.shape[1]  # topics appended to the TF-IDF columns
    again, _ = text_features(texts, kind=kind)
    assert (first != again).nnz == 0


def test_semantic_topics_leave_the_cold_start_ranking_unchanged(review):
    texts, _ = review
    with_topics = similarity_scores(*text_features(texts, PROFILE, kind="bigrams+topics"))
    plain = similarity_scores(*text_features(texts, PROFILE, kind="bigrams"))
    # The cold-start score is the similarity over the highest one: the same with topics.
    assert np.allclose(with_topics / with_topics.max(), plain / plain.max())


def test_every_model_ranks_a_handful_of_records(review):
    texts, labels = review
    few = [int(np.flatnonzero(labels == 1)[0]), *np.flatnonzero(labels == 0)[:3].tolist()]
    for model in MODELS.values():
        features, _ = text_features([texts[i] for i in few], kind=model.features)
        scores = inclusion_scores(model, features, np.array([0, 1]), labels[few[:2]])
        assert scores.shape == (len(few),) and np.all((scores >= 0) & (scores <= 1))
        assert scores[0] == scores.max()  # the included training record scores highest
