"""Prioritisation: text features and the classifiers that rank records for screening.

Records are turned into TF-IDF vectors of title + abstract once (the default model hashes
the terms, so no vocabulary grows with the corpus); a classifier is then retrained on the
decisions known so far, the latest weighing most, and scores every record by how likely
it is to be included (certainty-based, "max" querying: the highest score is screened
next).
The comparison that chose the default model is in docs/screening.md (bench/screen.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import (HashingVectorizer, TfidfTransformer,
                                             TfidfVectorizer)
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import MultinomialNB
from sklearn.preprocessing import normalize
from sklearn.svm import LinearSVC

#: The model used when the topic or command line names none (see docs/screening.md).
DEFAULT_MODEL = "svm-balanced-recent"


@dataclass(frozen=True)
class RankingModel:
    """One prioritisation model: a classifier, its parameters and how classes are weighted.

    `balance` is `none`, `balanced` (each excluded record weighted down so that the
    included class weighs `ratio` times the excluded one in all, as ASReview's "balanced"
    balancer does) or
    `double` (ASReview 1's dynamic "double" balance formulas, applied as sample weights
    instead of resampling so that runs are deterministic).
    """

    name: str
    classifier: str
    params: dict = field(default_factory=dict)
    balance: str = "none"
    ratio: float = 1.0
    description: str = ""
    features: str = "bigrams"
    #: How the next record is picked: "max" (highest score), or "max+uncertainty"
    #: (every `UNCERTAINTY_EVERY`th pick the record the model is least sure of).
    query: str = "max"
    #: Training weight ramp by screening order: the last record screened weighs
    #: 1 + recency/2, the first 1 - recency/2 (0: all alike).
    recency: float = 0.0

    def describe(self) -> dict:
        """Name and parameters as written to summary.json."""
        return {"name": self.name, "classifier": self.classifier, "params": dict(self.params),
                "balance": self.balance, "ratio": self.ratio,
                "features": FEATURES[self.features][0], "description": self.description}


MODELS: dict[str, RankingModel] = {m.name: m for m in (
    RankingModel("nb", "nb", {"alpha": 3.822}, "none",
                 description="multinomial naive Bayes (ASReview 1's classifier), no balancing"),
    RankingModel("nb-double", "nb", {"alpha": 3.822}, "double",
                 description="naive Bayes with ASReview 1's double balance (its old default)"),
    RankingModel("logistic", "logistic", {"C": 1.0}, "none",
                 description="logistic regression, no balancing"),
    RankingModel("logistic-balanced", "logistic", {"C": 1.0}, "balanced", 1.0,
                 description="logistic regression, classes weighted equally"),
    RankingModel("svm", "svm", {"C": 0.11}, "none",
                 description="linear SVM (squared hinge), no balancing"),
    RankingModel("svm-balanced", "svm", {"C": 0.11}, "balanced", 9.8,
                 description="linear SVM, C=0.11, excluded records weighted down so that the "
                             "included class weighs 9.8 times the excluded one, on TF-IDF "
                             "with 100 latent semantic topics of the records appended",
                 features="bigrams+topics"),
    RankingModel("svm-balanced-tfidf", "svm", {"C": 0.11}, "balanced", 9.8,
                 description="svm-balanced on TF-IDF alone: ASReview LAB 3's default "
                             "(ELAS u4) recipe"),
    RankingModel("svm-balanced-shared-terms", "svm", {"C": 0.11}, "balanced", 9.8,
                 description="svm-balanced-tfidf on terms found in at least two records",
                 features="shared-bigrams"),
    RankingModel("svm-balanced-words", "svm", {"C": 0.11}, "balanced", 9.8,
                 description="svm-balanced on single words without English stop words",
                 features="words"),
    RankingModel("nb-double-words", "nb", {"alpha": 3.822}, "double",
                 description="ASReview 1's default model: naive Bayes, double balance, single "
                             "words without English stop words", features="words"),
    RankingModel("svm-balanced-hashed", "svm", {"C": 0.11}, "balanced", 9.8,
                 description="svm-balanced-tfidf on hashed terms (no vocabulary)",
                 features="hashed-bigrams"),
    RankingModel("svm-balanced-hashed-topics", "svm", {"C": 0.11}, "balanced", 9.8,
                 description="svm-balanced-hashed with 100 latent semantic topics at weight "
                             "0.25", features="hashed-bigrams+topics"),
    RankingModel("svm-balanced-hashed-recent", "svm", {"C": 0.11}, "balanced", 9.8,
                 description="svm-balanced-hashed, the records screened last weighing up to "
                             "three times the first", features="hashed-bigrams", recency=1.0),
    RankingModel("svm-balanced-hashed-recent-half", "svm", {"C": 0.11}, "balanced", 9.8,
                 description="svm-balanced-hashed, the records screened last weighing up to "
                             "five thirds of the first", features="hashed-bigrams",
                 recency=0.5),
    RankingModel("svm-balanced-recent", "svm", {"C": 0.11}, "balanced", 9.8,
                 description="linear SVM, C=0.11, excluded records weighted down so that the "
                             "included class weighs 9.8 times the excluded one (ASReview LAB "
                             "3's ELAS u4), on hashed TF-IDF of words and bigrams, the records "
                             "screened last weighing up to seven times the first",
                 features="hashed-bigrams", recency=1.5),
    RankingModel("svm-balanced-hashed-topics-recent", "svm", {"C": 0.11}, "balanced", 9.8,
                 description="svm-balanced-hashed-topics, the records screened last weighing "
                             "up to three times the first", features="hashed-bigrams+topics",
                 recency=1.0),
    RankingModel("svm-balanced-hashed-mixed", "svm", {"C": 0.11}, "balanced", 9.8,
                 description="svm-balanced-hashed, one pick in 20 the least certain record",
                 features="hashed-bigrams", query="max+uncertainty"),
    RankingModel("svm+logistic-hashed", "svm+logistic", {"C": 0.11, "logistic_C": 1.0},
                 "balanced", 9.8,
                 description="linear SVM and logistic regression on hashed terms, balanced as "
                             "svm-balanced, standardised margins averaged",
                 features="hashed-bigrams"),
)}

#: The models bench/screen.py chooses the default from, by leaving one review out.
CANDIDATES = ("svm-balanced", "svm-balanced-tfidf", "svm-balanced-hashed",
              "svm-balanced-hashed-topics", "svm+logistic-hashed", "svm-balanced-hashed-recent",
              "svm-balanced-hashed-mixed", "svm-balanced-hashed-recent-half",
              "svm-balanced-recent", "svm-balanced-hashed-topics-recent")

#: Text features by name: (description, TfidfVectorizer settings).
FEATURES: dict[str, tuple[str, dict]] = {
    "bigrams": ("TF-IDF of words and word bigrams of title + abstract, sublinear tf, terms "
                "in more than 95 % of records dropped",
                {"ngram_range": (1, 2), "sublinear_tf": True, "max_df": 0.95}),
    # A term in a single record cannot link it to any other record, yet it takes a share
    # of that record's length normalisation and lets the SVM fit the training records by
    # their idiosyncrasies; most are one-off bigrams.
    "shared-bigrams": ("TF-IDF of words and word bigrams of title + abstract found in at "
                       "least two records, sublinear tf, terms in more than 95 % of "
                       "records dropped",
                       {"ngram_range": (1, 2), "sublinear_tf": True, "min_df": 2,
                        "max_df": 0.95}),
    "bigrams+topics": ("TF-IDF of words and word bigrams of title + abstract (as `bigrams`) "
                       "with 100 latent semantic topics of the records (TruncatedSVD of "
                       "that TF-IDF) appended at weight 0.5",
                       {"ngram_range": (1, 2), "sublinear_tf": True, "max_df": 0.95,
                        "lsa": {"components": 100, "weight": 0.5}}),
    "words": ("TF-IDF of single words of title + abstract, English stop words dropped",
              {"stop_words": "english"}),
    # Hashed terms need no vocabulary: memory grows with the records, not with the
    # millions of distinct bigrams a large corpus holds (bench/screen.py --scale).
    "hashed-bigrams": ("TF-IDF of words and word bigrams of title + abstract hashed into "
                       "2^23 columns, sublinear tf, terms in more than 95 % of records "
                       "dropped", {"hashed": True, "ngram_range": (1, 2),
                                   "sublinear_tf": True, "max_df": 0.95}),
    "hashed-bigrams+topics": ("hashed-bigrams with 100 latent semantic topics of the "
                              "records appended at weight 0.25",
                              {"hashed": True, "ngram_range": (1, 2), "sublinear_tf": True,
                               "max_df": 0.95, "lsa": {"components": 100, "weight": 0.25}}),
}

#: Columns of the hashed feature space: with 2^23, two of a review's terms share a column
#: about once per 500 terms at 100,000 distinct terms (the birthday bound).
HASHED_FEATURES = 2 ** 23

# ASReview 1's double-balance constants (asreview/balance_strategies/double.py).
_DOUBLE_A, _DOUBLE_ALPHA, _DOUBLE_B, _DOUBLE_BETA = 2.155, 0.94, 0.789, 1.0


def get_model(name: str | None) -> RankingModel:
    """The model registered as `name` (the default when None); ValueError lists the names."""
    name = name or DEFAULT_MODEL
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown screening model {name!r}; choose one of "
                         f"{', '.join(sorted(MODELS))}") from None


def record_text(title: str | None, abstract: str | None) -> str:
    """The text a model reads: title and abstract joined."""
    return f"{title or ''} {abstract or ''}".strip()


def text_features(texts: Sequence[str], extra: Iterable[str] = (), kind: str = "bigrams"
                  ) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
    """TF-IDF matrix of `texts`, and of `extra` documents in the same vocabulary.

    The vocabulary and idf are fitted on the records themselves, as in ASReview; `extra`
    (e.g. the topic profile for the cold start) is only projected into that space. Kinds
    with `lsa` settings append the records' latent semantic topics (below).
    """
    texts, extra = list(texts), list(extra)
    settings = dict(FEATURES[kind][1])
    lsa = settings.pop("lsa", None)
    if settings.pop("hashed", False):
        matrix, projected = hashed_tfidf(texts, extra, **settings)
        if lsa:
            matrix, projected = with_semantic_topics(matrix, projected, **lsa)
        return matrix.tocsr(), projected.tocsr()
    # If the settings prune every term (tiny, few or near-identical texts), keep every word.
    for tfidf in (settings, {"token_pattern": r"(?u)\b\w+\b"}):
        vectorizer = TfidfVectorizer(dtype=np.float64, **tfidf)
        try:
            matrix = vectorizer.fit_transform(texts)
        except ValueError:
            continue
        projected = (vectorizer.transform(extra) if extra
                     else sparse.csr_matrix((0, matrix.shape[1])))
        if lsa:
            matrix, projected = with_semantic_topics(matrix, projected, **lsa)
        return matrix.tocsr(), projected.tocsr()
    return sparse.csr_matrix((len(texts), 1)), sparse.csr_matrix((len(extra), 1))


def hashed_tfidf(texts: list[str], extra: list[str], ngram_range=(1, 2), sublinear_tf=True,
                 max_df: float = 1.0) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
    """TF-IDF of hashed terms: the same weighting as TfidfVectorizer (smooth idf fitted on
    the records, sublinear tf, L2 rows, terms in more than `max_df` of records dropped)
    without a vocabulary. Hash collisions merge a few rare terms; 2^23 columns keep them
    rare. Unused columns are dropped, so `extra` is projected on the records' terms."""
    hasher = HashingVectorizer(ngram_range=ngram_range, n_features=HASHED_FEATURES,
                               alternate_sign=False, norm=None, dtype=np.float64)
    counts = hasher.transform(texts).tocsc()
    document_frequency = np.diff(counts.indptr)
    # Only the columns some record uses, and not those in more than max_df of records:
    # the classifier then works on as many columns as a vocabulary would give.
    used = np.flatnonzero((document_frequency > 0)
                          & (document_frequency <= max_df * max(counts.shape[0], 1)))
    if not len(used):  # a handful of near-identical records: keep every term, as above
        used = np.flatnonzero(document_frequency > 0)
    if not len(used):  # no words at all
        return sparse.csr_matrix((len(texts), 1)), sparse.csr_matrix((len(extra), 1))
    counts = counts[:, used].tocsr()
    transformer = TfidfTransformer(sublinear_tf=sublinear_tf).fit(counts)
    projected = (transformer.transform(hasher.transform(extra).tocsc()[:, used].tocsr())
                 if extra else sparse.csr_matrix((0, len(used))))
    return transformer.transform(counts), projected


def with_semantic_topics(matrix: sparse.csr_matrix, extra: sparse.csr_matrix,
                         components: int, weight: float
                         ) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
    """Append latent semantic analysis (TruncatedSVD of the records' own TF-IDF) to it.

    Unsupervised and fitted on the records being screened (no labels), the topics let
    the classifier rank a record that shares themes, not exact terms, with the includes
    found so far. Each part is L2-normalised, the topics weighted by `weight`, and rows
    L2-normalised again so dot products stay cosines. Seeded: runs repeat.
    """
    k = min(components, matrix.shape[0] - 1, matrix.shape[1] - 1)
    if k < 1:
        return matrix, extra
    svd = TruncatedSVD(n_components=k, random_state=0).fit(matrix)
    topics = weight * sparse.csr_matrix(normalize(svd.transform(matrix)))
    records = normalize(sparse.hstack([matrix, topics]).tocsr())
    # Extra documents (the cold-start topic profile: a query and short definitions) get
    # no topics: their similarity to a record is then the TF-IDF cosine times a constant,
    # so the cold-start ranking and its include threshold stay those of plain TF-IDF.
    extra = sparse.hstack([extra, sparse.csr_matrix((extra.shape[0], k))]).tocsr()
    return records, extra


#: With query "max+uncertainty", one pick in this many is the least certain record.
UNCERTAINTY_EVERY = 20


def sample_weights(model: RankingModel, labels: np.ndarray) -> np.ndarray | None:
    """Per-record training weights that counter the rarity of included records (and, with
    `recency`, favour the records screened last: `labels` come in screening order)."""
    n_one = int(labels.sum())
    n_zero = int(len(labels) - n_one)
    if model.balance == "none" or n_one == 0 or n_zero == 0:
        return None
    ramp = 1.0
    if model.recency and len(labels) > 1:
        ramp = 1.0 + model.recency * (np.arange(len(labels)) / (len(labels) - 1) - 0.5)
    if model.balance == "balanced":
        weights = np.where(labels == 1, 1.0, n_one / (model.ratio * n_zero))
    elif model.balance == "double":
        one = _DOUBLE_A * (n_one / n_zero) ** (-_DOUBLE_ALPHA)
        zero = 1 - (1 - _DOUBLE_B) * (1 + math.log(len(labels))) ** (-_DOUBLE_BETA)
        weights = np.where(labels == 1, one * n_zero / n_one, zero)
    else:
        raise ValueError(f"unknown balance {model.balance!r}")
    weights = weights * ramp
    return weights * (len(labels) / weights.sum())


def _classifier(model: RankingModel, seed: int):
    if model.classifier == "svm+logistic":
        raise ValueError("an ensemble has no single classifier")
    if model.classifier == "nb":
        return MultinomialNB(**model.params)
    if model.classifier == "logistic":
        return LogisticRegression(solver="liblinear", dual=True, random_state=seed,
                                  **model.params)
    if model.classifier == "svm":
        return LinearSVC(random_state=seed, **model.params)
    raise ValueError(f"unknown classifier {model.classifier!r}")


def inclusion_scores(model: RankingModel, features: sparse.csr_matrix, train: np.ndarray,
                     labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """Train on the rows `train` with 0/1 `labels`; score every row (higher: screen sooner).

    Scores are probabilities of inclusion for naive Bayes and logistic regression (the
    logistic function of its margin) and the logistic function of the SVM's margin:
    comparable within a run, in 0..1.
    """
    if model.classifier == "svm+logistic":
        # Two linear models on the same features, their margins standardised over the
        # records and averaged: where one is confidently wrong the other tempers it.
        parts = [_margin(RankingModel(model.name, name, params, model.balance, model.ratio),
                         features, train, labels, seed)
                 for name, params in (("svm", {"C": model.params.get("C", 0.11)}),
                                      ("logistic", {"C": model.params.get("logistic_C", 1.0)}))]
        margin = sum((m - m.mean()) / (m.std() or 1.0) for m in parts) / len(parts)
        return 1.0 / (1.0 + np.exp(-margin))
    if model.classifier == "nb":
        classifier = _classifier(model, seed)
        classifier.fit(features[train], labels, sample_weight=sample_weights(model, labels))
        return classifier.predict_proba(features)[:, 1]
    return 1.0 / (1.0 + np.exp(-_margin(model, features, train, labels, seed)))


def _margin(model: RankingModel, features: sparse.csr_matrix, train: np.ndarray,
            labels: np.ndarray, seed: int) -> np.ndarray:
    """The linear model's margin on every row, trained on the rows `train`."""
    classifier = _classifier(model, seed)
    classifier.fit(features[train], labels, sample_weight=sample_weights(model, labels))
    # The margin straight from the coefficients: scikit-learn's input checks on every
    # call cost more than the product itself when a simulation retrains hundreds of times.
    return np.asarray(features @ classifier.coef_.ravel()).ravel() + classifier.intercept_[0]


def similarity_scores(features: sparse.csr_matrix, profile: sparse.csr_matrix) -> np.ndarray:
    """Cold start: cosine similarity of each record to the closest topic-profile document.

    TF-IDF rows are L2-normalised, so the dot product is the cosine.
    """
    if profile.shape[0] == 0 or features.shape[0] == 0:
        return np.zeros(features.shape[0])
    return np.asarray((features @ profile.T).max(axis=1).todense()).ravel()
