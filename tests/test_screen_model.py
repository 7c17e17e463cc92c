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


def test_semantic_topics_are_appended_and_repeat_exactly(review):
    texts, _ = review
    first, _ = text_features(texts, kind="bigrams+topics")
    plain, _ = text_features(texts, kind="bigrams")
    assert first.shape[1] > plain.shape[1]  # topics appended to the TF-IDF columns
    again, _ = text_features(texts, kind="bigrams+topics")
    assert (first != again).nnz == 0


def test_hashed_terms_weigh_records_as_the_vocabulary_does(review):
    """Without a vocabulary the records are nearly the same vectors: only the few terms
    whose hashes collide are merged, so cosines between records, and to a profile
    document, barely move and rank alike."""
    texts, _ = review
    hashed, hashed_profile = text_features(texts, PROFILE, kind="hashed-bigrams")
    plain, plain_profile = text_features(texts, PROFILE, kind="bigrams")
    assert 0.97 * plain.shape[1] < hashed.shape[1] <= plain.shape[1]  # a few collisions
    difference = np.abs((hashed @ hashed.T).toarray() - (plain @ plain.T).toarray())
    assert np.median(difference) < 1e-3 and difference.max() < 0.05
    from scipy.stats import spearmanr
    assert spearmanr(similarity_scores(hashed, hashed_profile),
                     similarity_scores(plain, plain_profile)).statistic > 0.99


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


def test_the_topic_schema_offers_every_model_and_defaults_to_the_default():
    from cmosynth.config import read_yaml
    from conftest import REPO

    schema = read_yaml(REPO / "workflow" / "schemas" / "topic.schema.yaml")
    name = schema["properties"]["screen"]["properties"]["model"]["properties"]["name"]
    assert sorted(name["enum"]) == sorted(MODELS) and name["default"] == DEFAULT_MODEL


def test_the_default_weighs_the_decisions_made_last_most():
    """Two records with the same words but opposite labels: the model sides with the one
    the reviewer decided last, whichever came first in the file."""
    texts = ["community partnership health", "community partnership health",
             "knee surgery outcome", "community partnership care"]
    features, _ = text_features(texts, kind=get_model(DEFAULT_MODEL).features)
    model = get_model(DEFAULT_MODEL)
    include_last = inclusion_scores(model, features, np.array([2, 1, 0]), np.array([0, 0, 1]))
    exclude_last = inclusion_scores(model, features, np.array([2, 0, 1]), np.array([0, 1, 0]))
    assert include_last[3] > exclude_last[3]
    plain = get_model("svm-balanced-hashed")
    assert np.isclose(inclusion_scores(plain, features, np.array([2, 1, 0]), np.array([0, 0, 1]))[3],
                      inclusion_scores(plain, features, np.array([2, 0, 1]), np.array([0, 1, 0]))[3])
